#pragma once
// A Keras-style progress bar:
//   12/50 [======>.......................] - ETA: 3s - loss: 0.4321 - acc: 0.8100 - 120.5 it/s
// On a terminal the line is redrawn in place with '\r' (at most once per redraw interval, and
// always at the last step); otherwise plain lines are printed, one per tenth of the way, never a '\r'.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace xgrad::optim {

/// Named values shown after the bar ("loss", "acc"), in display order.
using Metrics = std::vector<std::pair<std::string, double>>;

/// A Keras-style progress bar: redrawn in place on a terminal, plain lines otherwise.
class ProgressBar {
 public:
  using Clock = std::chrono::steady_clock;

  /// A bar over `total` steps written to `out`; `force_terminal` overrides the isatty() test;
  /// on a terminal, redraws closer together than `redraw_interval` are skipped.
  explicit ProgressBar(std::int64_t total, std::FILE* out = stdout, std::optional<bool> force_terminal = std::nullopt,
                       std::chrono::milliseconds redraw_interval = std::chrono::milliseconds(50));

  /// Reports that `step` of the total steps are done (1-based), with the running values.
  void update(std::int64_t step, const Metrics& values = {});
  /// Prints the last line (the last step reported, elapsed time, values) and a newline.
  void finish(const Metrics& values = {});

  /// True when lines are redrawn in place.
  bool is_terminal() const { return terminal_; }
  /// Seconds since the bar was created.
  double elapsed_seconds() const;

  /// Characters between the brackets.
  static constexpr int kWidth = 30;

 private:
  /// The text of one line (no carriage return or newline): counter, bar, ETA or elapsed, values,
  /// rate.
  std::string line(const Metrics& values, bool final) const;
  /// Writes `text` in place of the previous line (terminal) and flushes.
  void redraw(const std::string& text, bool end_line);

  std::int64_t total_;
  std::FILE* out_;
  bool terminal_;
  std::chrono::milliseconds redraw_interval_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  std::int64_t step_ = 0;             ///< last step reported
  std::int64_t tenths_printed_ = 0;   ///< plain mode: tenths of the way already printed
  std::size_t drawn_length_ = 0;      ///< terminal mode: length of the line on screen
  bool drawn_ = false;
  bool finished_ = false;
};

/// A duration as Keras shows it: "0.4s", "12s", "3:05", "1:02:03".
std::string format_duration(double seconds);

}  // namespace xgrad::optim
