#pragma once
// Pictures where people would rather look than read: training curves and heat maps, written as
// PNG files. Members have default initialisers, so designated initialisers may name any subset.
// The optional target xgrad::viz (viz/CMakeLists.txt, -DXGRAD_BUILD_VIZ); the library
// xgrad::xgrad never depends on it. Drawn by MathGL (Debian libmgl-dev); why MathGL: viz/CMakeLists.txt.
//
//   viz::training_curves(history, "plots/curves.png", {.title = "CNN-GRU on Mackey-Glass"});
//   viz::heat_map({.values = attention, .title = "attention", .x_label = "source", .y_label = "output",
//                  .col_labels = source_chars, .row_labels = output_chars}, "plots/attention.png");
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "xgrad/core/tensor.hpp"
#include "xgrad/optim/fit.hpp"

namespace xgrad::viz {

/// The size and title of a whole picture.
struct Figure {
  int width = 1000, height = 600;  ///< pixels
  std::string title = {};          ///< across the top; empty: none
};

/// One heat map: a matrix drawn cell by cell, row 0 at the top, column 0 at the left.
struct HeatMap {
  Tensor values = {};                                         ///< [rows, cols], any dtype
  std::string title = {};                                     ///< above the panel
  std::string x_label = {}, y_label = {};                     ///< what the columns and the rows are
  std::vector<std::string> col_labels = {}, row_labels = {};  ///< one per column / row (empty: numbered from 0)
  std::string value_label = {};                               ///< beside the colour bar
  /// The colour scale's ends; NaN: the data's (for `diverging`, symmetric around 0).
  double min = std::numeric_limits<double>::quiet_NaN(), max = std::numeric_limits<double>::quiet_NaN();
  /// Signed data (weights, embeddings): blue below 0, white at 0, red above. Otherwise a
  /// sequential scale from white (min) through yellow and red to black (max).
  bool diverging = false;
};

/// Writes one heat map as a PNG of figure.width x figure.height pixels.
void heat_map(const HeatMap& map, const std::string& path, const Figure& figure = {});

/// Writes several heat maps in one PNG, one above the other (e.g. a head's write and read
/// weightings over the same time steps), each with its own colour bar.
void heat_maps(const std::vector<HeatMap>& maps, const std::string& path, const Figure& figure = {});

/// Training curves from fit()'s History: one panel per quantity (the loss, then each metric,
/// then the learning rate when it changed), epochs across from 1. The training value is a solid
/// line, the validation value (the `val_` key) a dashed one. A positive quantity whose largest
/// value is more than 20 times its smallest is drawn on a log scale.
void training_curves(const optim::History& history, const std::string& path, const Figure& figure = {});

/// A History read back from a CSVLogger file (header `epoch,loss,...`; an empty cell is NaN).
optim::History read_csv_log(const std::string& path);

}  // namespace xgrad::viz
