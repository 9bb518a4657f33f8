// xgrad::viz: known matrices and curves, drawn and read back (libpng): the picture has the size
// asked for, is not blank, and shows the colours its scale and pens promise. The pictures stay in
// viz_test_output/ (in the build's viz/ folder) for a person to look at.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <png.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "xgrad/core/error.hpp"
#include "xgrad/viz/plot.hpp"

using namespace xgrad;

namespace {

struct Picture {
  std::uint32_t width = 0, height = 0;
  std::vector<std::uint8_t> rgb;  // height rows of width pixels, 3 bytes each

  /// Distinct colours, and pixels within `tolerance` (per channel) of 0xRRGGBB.
  std::size_t colours() const {
    std::set<std::uint32_t> seen;
    for (std::size_t i = 0; i < rgb.size(); i += 3) seen.insert(rgb[i] << 16 | rgb[i + 1] << 8 | rgb[i + 2]);
    return seen.size();
  }
  std::size_t near(std::uint32_t colour, int tolerance = 24) const {
    const int r = colour >> 16 & 0xFF, g = colour >> 8 & 0xFF, b = colour & 0xFF;
    std::size_t count = 0;
    for (std::size_t i = 0; i < rgb.size(); i += 3)
      count += std::abs(rgb[i] - r) <= tolerance && std::abs(rgb[i + 1] - g) <= tolerance &&
               std::abs(rgb[i + 2] - b) <= tolerance;
    return count;
  }
  double not_white() const { return 1.0 - static_cast<double>(near(0xFFFFFF, 8)) / (rgb.size() / 3.0); }
};

/// Decodes a PNG file into 8-bit RGB (libpng's simplified API); fails the test if it cannot.
Picture read_png(const std::string& path) {
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  REQUIRE_MESSAGE(png_image_begin_read_from_file(&image, path.c_str()) != 0, path, ": ", image.message);
  image.format = PNG_FORMAT_RGB;
  Picture picture{image.width, image.height, std::vector<std::uint8_t>(PNG_IMAGE_SIZE(image))};
  REQUIRE_MESSAGE(png_image_finish_read(&image, nullptr, picture.rgb.data(), 0, nullptr) != 0, path, ": ", image.message);
  return picture;
}

std::string output(const std::string& name) {
  std::filesystem::create_directories("viz_test_output");
  return (std::filesystem::path("viz_test_output") / name).string();
}

/// A history of `n` epochs: the loss falling, accuracy rising, validation a little worse.
optim::History history(int n) {
  optim::History h;
  for (int e = 0; e < n; ++e) {
    const double x = e;
    h.epochs.push_back({{"loss", 2 * std::exp(-0.3 * x) + 0.1},
                        {"val_loss", 2 * std::exp(-0.25 * x) + 0.2},
                        {"acc", 1 - 0.8 * std::exp(-0.3 * x)},
                        {"val_acc", 0.95 - 0.8 * std::exp(-0.25 * x)},
                        {"lr", e < n / 2 ? 1e-3 : 5e-4},
                        {"seconds", 1.5}});
  }
  return h;
}

}  // namespace

TEST_CASE("heat_map: a known matrix, the size asked for, every cell its own colour, the scale's ends") {
  const std::string path = output("heat_map.png");
  Tensor m = tensor({{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}});  // 3 x 4, min 0 .. max 11
  viz::heat_map({.values = m,
                 .title = "a known matrix",
                 .x_label = "column",
                 .y_label = "row",
                 .col_labels = {"a", "b", "c", "d"},
                 .row_labels = {"first", "second", "third"},
                 .value_label = "value"},
                path, {.width = 480, .height = 320});
  const Picture p = read_png(path);
  CHECK(p.width == 480);
  CHECK(p.height == 320);
  CHECK(p.colours() >= 12);           // twelve cells, white paper, black text
  CHECK(p.not_white() > 0.25);        // the cells cover a good part of it
  CHECK(p.near(0x0D0887) > 1500);     // the largest value's cell (and the colour bar's top): deep blue
  CHECK(p.near(0x000000, 60) > 100);  // text and the frame
}

TEST_CASE("heat_maps: signed values on a diverging scale, stacked panels") {
  const std::string path = output("heat_maps.png");
  Tensor a = tensor({{-1.0, -0.5, 0.0, 0.5, 1.0}, {1.0, 0.5, 0.0, -0.5, -1.0}});
  Tensor b = tensor({{0.1, 0.9}, {0.5, 0.5}, {0.9, 0.1}}, f64);
  viz::heat_maps({{.values = a, .title = "signed", .diverging = true}, {.values = b, .title = "weights", .min = 0, .max = 1}},
                 path, {.width = 400, .height = 500, .title = "two panels"});
  const Picture p = read_png(path);
  CHECK(p.width == 400);
  CHECK(p.height == 500);
  CHECK(p.near(0xB2182B) > 500);  // +1: red
  CHECK(p.near(0x2166AC) > 500);  // -1: blue
}

TEST_CASE("heat_map: a single row, a single column and a single cell are drawn too") {
  for (const auto& [name, m] : {std::pair{"row.png", tensor({{0.0, 0.5, 1.0}})}, std::pair{"column.png", tensor({{0.0}, {1.0}})},
                                std::pair{"cell.png", tensor({{1.0}})}}) {
    viz::heat_map({.values = m, .min = 0, .max = 1}, output(name), {.width = 300, .height = 200});
    CHECK_MESSAGE(read_png(output(name)).near(0x0D0887) > 500, name);  // the cell of value 1
  }
}

TEST_CASE("training_curves: a panel per quantity, training solid blue, validation dashed orange") {
  const std::string path = output("curves.png");
  viz::training_curves(history(12), path, {.width = 900, .height = 360, .title = "known curves"});
  const Picture p = read_png(path);
  CHECK(p.width == 900);
  CHECK(p.height == 360);
  CHECK(p.colours() > 10);
  CHECK(p.near(0x1F77B4, 40) > 300);  // training
  CHECK(p.near(0xFF7F0E, 40) > 200);  // validation
  // one epoch still draws (a point per series)
  viz::training_curves(history(1), output("one_epoch.png"), {.width = 300, .height = 200});
  CHECK(read_png(output("one_epoch.png")).width == 300);
}

TEST_CASE("read_csv_log: what CSVLogger writes comes back as the History") {
  const std::string path = output("log.csv");
  const optim::History written = history(5);
  {
    optim::CSVLogger logger(path);
    logger.on_train_begin();
    bool stop = false;
    for (std::size_t e = 0; e < written.epochs.size(); ++e) logger.on_epoch_end(static_cast<std::int64_t>(e), written.epochs[e], stop);
    logger.on_train_end();
  }
  const optim::History read = viz::read_csv_log(path);
  REQUIRE(read.epochs.size() == written.epochs.size());
  for (std::size_t e = 0; e < read.epochs.size(); ++e)
    for (const auto& [key, value] : written.epochs[e]) CHECK(read.epochs[e].at(key) == doctest::Approx(value).epsilon(1e-9));
  viz::training_curves(read, output("from_csv.png"), {.width = 600, .height = 300});
  CHECK(read_png(output("from_csv.png")).height == 300);
}

TEST_CASE("viz: mistakes are xgrad::Error with a message") {
  CHECK_THROWS_AS(viz::heat_map({.values = tensor({1.0, 2.0})}, output("x.png")), Error);
  CHECK_THROWS_AS(viz::heat_map({.values = tensor({{1.0, 2.0}}), .row_labels = {"a", "b"}}, output("x.png")), Error);
  CHECK_THROWS_AS(viz::heat_map({.values = tensor({{1.0}})}, "no/such/folder/x.png"), Error);
  CHECK_THROWS_AS(viz::heat_map({.values = tensor({{1.0}})}, output("x.png"), {.width = 10, .height = 10}), Error);
  CHECK_THROWS_AS(viz::training_curves(optim::History{}, output("x.png")), Error);
  CHECK_THROWS_AS(viz::read_csv_log(output("missing.csv")), Error);
}
