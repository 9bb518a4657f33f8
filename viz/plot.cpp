#include "xgrad/viz/plot.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <mgl2/mgl.h>

#include "xgrad/core/error.hpp"

namespace xgrad::viz {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Colour schemes (MathGL's {xRRGGBB} notation): white through yellow, orange and magenta to deep
// blue for values from min to max (zero weight reads as paper), and ColorBrewer's RdBu for signed values.
const char* const kSequential = "{xFFFFFF}{xFCE39A}{xF89540}{xCC4778}{x7E03A8}{x0D0887}";
const char* const kDiverging = "{x2166AC}{x67A9CF}{xF7F7F7}{xEF8A62}{xB2182B}";
constexpr double kPlotFactor = 1.55;  // MathGL's default: every InPlot is shrunk by it (see panel)
constexpr double kCapPixels = 10;  // the height of a capital letter in tick labels; titles are scaled from it
const char* const kTrainPen = "{x1F77B4}-2o";     // blue, solid, circles
const char* const kValidationPen = "{xFF7F0E}|2s";  // orange, dashed, squares

/// UTF-8 text as MathGL's wide characters, with MathGL's markup (\ _ ^ { } @) escaped.
std::wstring text(const std::string& utf8) {
  std::wstring out;
  for (std::size_t i = 0; i < utf8.size();) {
    const auto byte = static_cast<unsigned char>(utf8[i]);
    const int extra = byte < 0x80 ? 0 : byte >> 5 == 0x6 ? 1 : byte >> 4 == 0xE ? 2 : byte >> 3 == 0x1E ? 3 : -1;
    if (extra < 0 || i + static_cast<std::size_t>(extra) >= utf8.size()) {
      out += L'?';  // not UTF-8
      ++i;
      continue;
    }
    char32_t code = extra == 0 ? byte : byte & (0x3F >> extra);
    for (int k = 1; k <= extra; ++k) code = (code << 6) | (static_cast<unsigned char>(utf8[i + k]) & 0x3F);
    i += 1 + static_cast<std::size_t>(extra);
    if (code == U'\\' || code == U'_' || code == U'^' || code == U'{' || code == U'}' || code == U'@') out += L'\\';
    out += static_cast<wchar_t>(code);
  }
  return out;
}

/// How many characters `utf8` shows (its code points).
std::size_t shown_length(const std::string& utf8) {
  return static_cast<std::size_t>(std::count_if(utf8.begin(), utf8.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

/// Labels as one string, separated by newlines (what SetTicksVal takes).
std::wstring joined(const std::vector<std::string>& labels) {
  std::wstring out;
  for (std::size_t i = 0; i < labels.size(); ++i) out += (i ? L"\n" : L"") + text(labels[i]);
  return out;
}

/// A tick step of 1, 2 or 5 times a power of ten giving at most `most` ticks over `span`.
double tick_step(double span, int most) {
  const double raw = std::max(span / most, 1e-300);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * power >= raw) return m * power;
  return 10 * power;
}

/// Throws unless MathGL wrote a non-empty file at `path`.
void write(mglGraph& graph, const std::string& path) {
  const std::filesystem::path file(path);
  check(file.parent_path().empty() || std::filesystem::is_directory(file.parent_path()),
        "viz: cannot write '{}': no folder '{}'", path, file.parent_path().string());
  std::error_code ignored;
  std::filesystem::remove(file, ignored);
  graph.WritePNG(path.c_str(), "", /*alpha=*/false);
  check(std::filesystem::exists(file) && std::filesystem::file_size(file) > 0, "viz: MathGL could not write '{}'{}",
        path, graph.Message() && *graph.Message() ? std::string(": ") + graph.Message() : std::string());
}

/// Where a panel's plot lies in the picture, in pixels from the left and from the bottom.
struct Pixels {
  double x0, x1, y0, y1;
  double width() const { return x1 - x0; }
  double height() const { return y1 - y0; }
};

/// Puts what follows into the rectangle [x0, x1] x [y0, y1] of the picture (fractions, y up),
/// with text of the same size in pixels whatever the rectangle's size; returns it in pixels.
/// MathGL shrinks every InPlot by its plot factor (1.55, room for rotated 3D plots) around the
/// centre, so the rectangle asked of it is grown by as much (SetPlotFactor(1) instead leaves the
/// picture blank in MathGL 8.0). Its text scales with the smaller side of that rectangle: a
/// capital letter at font size f is f / 120 of it high (measured), whence the font size set here.
Pixels panel(mglGraph& graph, const Figure& figure, double x0, double x1, double y0, double y1) {
  const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, hx = (x1 - x0) / 2 * kPlotFactor, hy = (y1 - y0) / 2 * kPlotFactor;
  graph.InPlot(cx - hx, cx + hx, cy - hy, cy + hy, false);
  const double side = std::min(2 * hx * figure.width, 2 * hy * figure.height);
  graph.SetFontSize(120 * kCapPixels / std::max(side, 1.0));
  return {x0 * figure.width, x1 * figure.width, y0 * figure.height, y1 * figure.height};
}

/// A new white picture with the figure's title across the top; returns the fraction of the
/// height left below the title for the panels.
double start(mglGraph& graph, const Figure& figure) {
  check(figure.width >= 64 && figure.height >= 64 && figure.width <= 20000 && figure.height <= 20000,
        "viz: a picture of {} x {} pixels (each side from 64 to 20000)", figure.width, figure.height);
  graph.SetSize(figure.width, figure.height);
  graph.SetQuality(MGL_DRAW_NORM);
  graph.Clf('w');
  graph.SetTickLen(0.03);
  graph.SetRotatedText(false);  // tick labels upright, also along the y axis
  if (figure.title.empty()) return 1.0;
  const double strip = std::min(0.3, 34.0 / figure.height);  // 34 pixels
  panel(graph, figure, 0, 1, 0, 1);
  graph.SetRanges(0, 1, 0, 1);
  // 1.5 times the tick labels' size, smaller when the title would not fit across (a character
  // is about 10 pixels wide at that size)
  const std::wstring title = text(figure.title);
  const double across = std::min(1.0, 0.94 * figure.width / (10.0 * static_cast<double>(shown_length(figure.title))));
  graph.Putsw(mglPoint(0.5, 1 - 0.55 * strip), title.c_str(), ":C", -1.5 * across);
  return 1 - strip;
}

/// The rows x cols of a heat map's values, as doubles in row-major order.
std::vector<double> matrix_values(const HeatMap& map, std::int64_t& rows, std::int64_t& cols) {
  check(map.values.defined() && map.values.dim() == 2, "viz::heat_map: values must be a matrix [rows, cols], got {}",
        map.values.defined() ? fmt::format("a tensor of rank {}", map.values.dim()) : std::string("an undefined tensor"));
  rows = map.values.size(0);
  cols = map.values.size(1);
  check(rows > 0 && cols > 0, "viz::heat_map: an empty matrix [{}, {}]", rows, cols);
  check(map.row_labels.empty() || static_cast<std::int64_t>(map.row_labels.size()) == rows,
        "viz::heat_map: {} row labels for {} rows", map.row_labels.size(), rows);
  check(map.col_labels.empty() || static_cast<std::int64_t>(map.col_labels.size()) == cols,
        "viz::heat_map: {} column labels for {} columns", map.col_labels.size(), cols);
  return map.values.to_vector<double>();
}

/// Sets the ticks of axis `dir` (cells centred on 0 .. n-1): every label when `room` ticks fit,
/// else every 2nd, 5th, 10th...; numbers when there are no labels.
void cell_ticks(mglGraph& graph, char dir, std::int64_t n, const std::vector<std::string>& labels, double room) {
  auto fits = [&](std::int64_t step) { return static_cast<double>((n + step - 1) / step) <= std::max(room, 2.0); };
  std::int64_t step = 1;
  for (std::int64_t power = 1; !fits(step); power *= 10)
    for (std::int64_t m : {1, 2, 5})
      if (!fits(step)) step = m * power;
  std::vector<std::string> shown;
  std::vector<double> at;
  for (std::int64_t i = 0; i < n; i += step) {
    at.push_back(static_cast<double>(i));
    shown.push_back(labels.empty() ? std::to_string(i) : labels[static_cast<std::size_t>(i)]);
  }
  mglData positions(static_cast<long>(at.size()));
  for (std::size_t i = 0; i < at.size(); ++i) positions.a[i] = at[i];
  graph.SetTicksVal(dir, positions, joined(shown).c_str());
  graph.SetTickSkip(false);  // the step above already makes them fit; MathGL's own test drops too many
}

/// The colour scale of a panel: a bar 16 pixels wide, 14 right of the plot and as high, its
/// values on its right. (Drawn as a panel of its own: MathGL's Colorbar places its labels over
/// the plot when asked for a bar nearer than its default, a tenth of the plot's width away.)
void colour_bar(mglGraph& graph, const Figure& figure, const char* scheme, double low, double high, const Pixels& plot) {
  const double W = figure.width, H = figure.height;
  panel(graph, figure, (plot.x1 + 14) / W, (plot.x1 + 30) / W, plot.y0 / H, plot.y1 / H);
  graph.SetRanges(0, 1, low, high);
  graph.SetRange('c', low, high);
  constexpr long kSteps = 128;
  mglData xe(3), ye(kSteps + 1), flat(2, kSteps), colour(2, kSteps);
  for (long i = 0; i < 3; ++i) xe.a[i] = 0.5 * static_cast<double>(i);
  for (long i = 0; i <= kSteps; ++i) ye.a[i] = low + (high - low) * static_cast<double>(i) / kSteps;
  for (long i = 0; i < kSteps; ++i) colour.a[2 * i] = colour.a[2 * i + 1] = (ye.a[i] + ye.a[i + 1]) / 2;
  graph.Tile(xe, ye, flat, colour, scheme);
  graph.SetTicks('y');
  graph.SetTickTempl('y', "%.3g");
  graph.SetOrigin(1, mglNaN);  // the axis, and so its labels, on the bar's right
  graph.Axis("y", "k");
  graph.SetOrigin(mglNaN, mglNaN);
  graph.Box("k", false);
}

/// Draws one heat map into the rectangle [x0, x1] x [y0, y1] of the picture (fractions, y up).
void draw_heat_map(mglGraph& graph, const HeatMap& map, const Figure& figure, double x0, double x1, double y0, double y1) {
  std::int64_t rows = 0, cols = 0;
  const std::vector<double> v = matrix_values(map, rows, cols);
  double low = map.min, high = map.max;
  double data_low = kNaN, data_high = kNaN;
  for (double x : v) {
    if (!std::isfinite(x)) continue;
    data_low = std::isnan(data_low) ? x : std::min(data_low, x);
    data_high = std::isnan(data_high) ? x : std::max(data_high, x);
  }
  if (std::isnan(data_low)) data_low = data_high = 0;
  if (map.diverging && std::isnan(low) && std::isnan(high)) {
    high = std::max(std::abs(data_low), std::abs(data_high));
    low = -high;
  }
  if (std::isnan(low)) low = data_low;
  if (std::isnan(high)) high = data_high;
  if (!(high > low)) high = low + 1;  // a constant matrix still gets a scale

  // Values as MathGL's [nx = cols, ny = rows], clamped to the scale, in tiles edged at
  // i - 0.5 .. i + 0.5 lying flat at height 0 (Tile clips tiles outside the z range). Tile needs
  // two tiles each way: a single row or column is drawn as two halves of the same colour.
  const std::int64_t fr = rows < 2 ? 2 : 1, fc = cols < 2 ? 2 : 1, nr = rows * fr, nc = cols * fc;
  mglData colour(static_cast<long>(nc), static_cast<long>(nr)), flat(static_cast<long>(nc), static_cast<long>(nr));
  for (std::int64_t r = 0; r < nr; ++r)
    for (std::int64_t c = 0; c < nc; ++c) {
      const double x = v[static_cast<std::size_t>(r / fr * cols + c / fc)];
      colour.a[c + nc * r] = std::isnan(x) ? x : std::clamp(x, low, high);  // NaN: left blank
    }
  mglData xe(static_cast<long>(nc + 1)), ye(static_cast<long>(nr + 1));
  for (std::int64_t i = 0; i <= nc; ++i) xe.a[i] = static_cast<double>(i) / static_cast<double>(fc) - 0.5;
  for (std::int64_t i = 0; i <= nr; ++i) ye.a[i] = static_cast<double>(i) / static_cast<double>(fr) - 0.5;

  // Margins in pixels: the row labels on the left, the column labels and the x label below, the
  // title and the y label above, the colour bar and its labels on the right.
  std::size_t longest = std::to_string(rows - 1).size();
  for (const auto& label : map.row_labels) longest = std::max(longest, shown_length(label));
  const double W = figure.width, H = figure.height;
  const double left = 22 + 7.5 * static_cast<double>(longest), right = 80, bottom = map.x_label.empty() ? 30 : 50;
  const double top = (map.title.empty() ? 6 : 30) + (map.y_label.empty() ? 0 : 18);
  check((x1 - x0) * W > left + right + 20 && (y1 - y0) * H > top + bottom + 20,
        "viz::heat_map: {} x {} pixels leave no room for the cells of '{}'", figure.width, figure.height, map.title);
  const Pixels plot = panel(graph, figure, x0 + left / W, x1 - right / W, y0 + bottom / H, y1 - top / H);
  // a point dx pixels right of the plot's left edge and dy pixels above its top, in data coordinates
  auto at = [&](double dx, double dy) {
    return mglPoint(-0.5 + dx / plot.width() * static_cast<double>(cols), -0.5 - dy / plot.height() * static_cast<double>(rows));
  };
  graph.SetRanges(-0.5, static_cast<double>(cols) - 0.5, static_cast<double>(rows) - 0.5, -0.5);  // row 0 on top
  graph.SetRange('c', low, high);
  const char* scheme = map.diverging ? kDiverging : kSequential;
  graph.Tile(xe, ye, flat, colour, scheme);
  // a label per 6 + 7 pixels a character across, per 18 pixels down
  std::size_t widest = std::to_string(cols - 1).size();
  if (!map.col_labels.empty()) widest = 1;
  for (const auto& label : map.col_labels) widest = std::max(widest, shown_length(label));
  cell_ticks(graph, 'x', cols, map.col_labels, plot.width() / (6.0 + 7.0 * static_cast<double>(widest)));
  cell_ticks(graph, 'y', rows, map.row_labels, plot.height() / 18.0);
  graph.SetTicks('c');
  graph.Axis("xy", "k");
  graph.Box("k", false);
  if (!map.x_label.empty()) graph.Label('x', text(map.x_label).c_str(), 0, "size -0.8; value 0.06");
  if (!map.y_label.empty())  // above the row labels (beside them it would overlap them)
    graph.Putsw(at(4 - left, 9), (text(map.y_label) + L" \\downarrow").c_str(), ":L", -1.1);
  if (!map.title.empty()) graph.Putsw(at(plot.width() / 2, top - 14), text(map.title).c_str(), ":C", -1.25);
  colour_bar(graph, figure, scheme, low, high, plot);
  if (!map.value_label.empty()) {  // above the colour bar, in the bar's panel: x in [0, 1] across it
    graph.SetRanges(0, 1, low, high);
    graph.Putsw(mglPoint(0.5, high + 10 / plot.height() * (high - low)), text(map.value_label).c_str(), ":C", -0.9);
  }
}

}  // namespace

void heat_maps(const std::vector<HeatMap>& maps, const std::string& path, const Figure& figure) {
  check(!maps.empty(), "viz::heat_maps: no heat map to draw into '{}'", path);
  mglGraph graph(0, figure.width, figure.height);
  const double top = start(graph, figure);
  const double band = top / static_cast<double>(maps.size());
  for (std::size_t i = 0; i < maps.size(); ++i)
    draw_heat_map(graph, maps[i], figure, 0, 1, top - band * static_cast<double>(i + 1), top - band * static_cast<double>(i));
  write(graph, path);
}

void heat_map(const HeatMap& map, const std::string& path, const Figure& figure) { heat_maps({map}, path, figure); }

// --- training curves ---------------------------------------------------------------------

namespace {

/// One quantity over the epochs: the training and the validation values (NaN where missing).
struct Curve {
  std::string name;
  std::vector<double> train, validation;
};

/// The quantities of a History in the order CSVLogger writes them: loss, metrics, then lr if it changed.
std::vector<Curve> curves_of(const optim::History& history) {
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& logs : history.epochs)
    for (const auto& [key, value] : logs) {
      std::string name = key.starts_with("val_") ? key.substr(4) : key;
      if (name == "seconds" || seen.count(name)) continue;
      seen.insert(name);
      names.push_back(name);
    }
  auto rank = [](const std::string& name) { return name == "loss" ? 0 : name == "lr" ? 2 : 1; };
  std::stable_sort(names.begin(), names.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  std::vector<Curve> curves;
  for (const auto& name : names) {
    Curve curve{name, {}, {}};
    bool any_validation = false;
    for (const auto& logs : history.epochs) {
      auto train = logs.find(name), validation = logs.find("val_" + name);
      curve.train.push_back(train == logs.end() ? kNaN : train->second);
      curve.validation.push_back(validation == logs.end() ? kNaN : validation->second);
      any_validation = any_validation || validation != logs.end();
    }
    if (!any_validation) curve.validation.clear();
    if (name == "lr") {  // only a schedule is worth a panel
      const auto [lo, hi] = std::minmax_element(curve.train.begin(), curve.train.end());
      if (*lo == *hi) continue;
    }
    curves.push_back(std::move(curve));
  }
  return curves;
}

/// A panel's title: the log's key, spelled out for the usual abbreviations.
std::string pretty(const std::string& name) {
  if (name == "lr") return "learning rate";
  if (name == "acc") return "accuracy";
  if (name == "bpc") return "bits per character";
  return name;
}

void draw_curve_panel(mglGraph& graph, const Figure& figure, const Curve& curve, double x0, double x1, double y0,
                      double y1) {
  const auto n = static_cast<long>(curve.train.size());
  double low = kNaN, high = kNaN;
  for (const auto* values : {&curve.train, &curve.validation})
    for (double x : *values) {
      if (!std::isfinite(x)) continue;
      low = std::isnan(low) ? x : std::min(low, x);
      high = std::isnan(high) ? x : std::max(high, x);
    }
  if (std::isnan(low)) low = 0, high = 1;
  const bool log_scale = low > 0 && high / low > 20;
  if (log_scale) {
    low = std::pow(10.0, std::floor(std::log10(low) * 4) / 4);
    high = std::pow(10.0, std::ceil(std::log10(high) * 4) / 4);
  } else {
    const double pad = high > low ? 0.06 * (high - low) : std::max(0.05 * std::abs(high), 1e-3);
    low -= pad;
    high += pad;
  }
  const double W = figure.width, H = figure.height;  // margins in pixels: tick labels left, epochs below, title above
  check((x1 - x0) * W > 120 && (y1 - y0) * H > 110, "viz::training_curves: {} x {} pixels leave no room for {} panels",
        figure.width, figure.height, static_cast<int>(1 / (x1 - x0) + 0.5));
  const Pixels plot = panel(graph, figure, x0 + 66 / W, x1 - 14 / W, y0 + 46 / H, y1 - 30 / H);
  graph.SetFunc("", log_scale ? "lg(y)" : "");
  graph.SetRanges(n > 1 ? 1.0 : 0.5, n > 1 ? static_cast<double>(n) : 1.5, low, high);
  graph.SetOrigin(mglNaN, mglNaN);
  graph.SetTicks('x', std::max(1.0, tick_step(static_cast<double>(n - 1), 8)), 0, 0);  // whole epochs
  if (log_scale)
    graph.SetTicks('y');
  else
    graph.SetTicks('y', tick_step(high - low, 6), 0, 0);
  graph.SetTickTempl('y', "%.3g");
  graph.Grid("xy", "{xDDDDDD}");
  graph.Axis("xy", "k");
  graph.Box("k", false);
  mglData epochs(n), train(n), validation(n);
  for (long i = 0; i < n; ++i) {
    epochs.a[i] = static_cast<double>(i + 1);
    train.a[i] = curve.train[static_cast<std::size_t>(i)];
    validation.a[i] = curve.validation.empty() ? kNaN : curve.validation[static_cast<std::size_t>(i)];
  }
  graph.ClearLegend();
  graph.Plot(epochs, train, kTrainPen);
  graph.AddLegend(curve.name == "lr" ? L"per epoch" : L"training", kTrainPen);
  if (!curve.validation.empty()) {
    graph.Plot(epochs, validation, kValidationPen);
    graph.AddLegend(L"validation", kValidationPen);
  }
  const bool rising = std::isfinite(curve.train.front()) && std::isfinite(curve.train.back()) &&
                      curve.train.back() > curve.train.front();
  graph.Legend(rising ? 1 : 3, "#", "size -0.9");  // in the corner the curves leave free
  graph.Label('x', L"epoch", 0, "size -0.8; value 0.06");
  const double up = 14 / plot.height();  // 14 pixels above the plot, as a fraction of its height
  const double title_y = log_scale ? high * std::pow(high / low, up) : high + up * (high - low);
  graph.Putsw(mglPoint((epochs.a[0] + epochs.a[n - 1]) / 2, title_y),
              text(pretty(curve.name) + (log_scale ? " (log scale)" : "")).c_str(), ":C", -1.2);
  graph.SetFunc("", "");
}

}  // namespace

void training_curves(const optim::History& history, const std::string& path, const Figure& figure) {
  check(!history.epochs.empty(), "viz::training_curves: the history has no epochs (nothing to draw into '{}')", path);
  const std::vector<Curve> curves = curves_of(history);
  check(!curves.empty(), "viz::training_curves: the history logs no loss or metric");
  mglGraph graph(0, figure.width, figure.height);
  const double top = start(graph, figure);
  const auto count = static_cast<double>(curves.size());
  for (std::size_t i = 0; i < curves.size(); ++i)
    draw_curve_panel(graph, figure, curves[i], static_cast<double>(i) / count, static_cast<double>(i + 1) / count, 0, top);
  write(graph, path);
}

optim::History read_csv_log(const std::string& path) {
  std::ifstream in(path);
  check(in.good(), "viz::read_csv_log: cannot open '{}'", path);
  auto split = [](const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream s(line);
    for (std::string cell; std::getline(s, cell, ',');) cells.push_back(cell);
    if (!line.empty() && line.back() == ',') cells.emplace_back();
    return cells;
  };
  std::string line;
  check(static_cast<bool>(std::getline(in, line)), "viz::read_csv_log: '{}' is empty", path);
  const std::vector<std::string> header = split(line);
  check(!header.empty() && header[0] == "epoch", "viz::read_csv_log: '{}' does not start with an 'epoch,...' header",
        path);
  optim::History history;
  for (std::size_t row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    const std::vector<std::string> cells = split(line);
    check(cells.size() == header.size(), "viz::read_csv_log: '{}' line {} has {} cells, the header {}", path, row,
          cells.size(), header.size());
    optim::Logs logs;
    for (std::size_t k = 1; k < cells.size(); ++k) {
      if (cells[k].empty()) continue;
      std::size_t used = 0;
      double value = kNaN;
      try {
        value = std::stod(cells[k], &used);
      } catch (const std::exception&) {
        used = 0;
      }
      check(used == cells[k].size(), "viz::read_csv_log: '{}' line {}: '{}' is not a number", path, row, cells[k]);
      logs[header[k]] = value;
    }
    history.epochs.push_back(std::move(logs));
  }
  return history;
}

}  // namespace xgrad::viz
