#include "xgrad/optim/progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "xgrad/core/error.hpp"

namespace xgrad::optim {

namespace {

/// A value as Keras shows it: 4 decimals, or scientific notation when tiny.
std::string format_value(double value) {
  const bool tiny = value != 0 && std::isfinite(value) && std::abs(value) < 1e-3;
  return tiny ? fmt::format("{:.4e}", value) : fmt::format("{:.4f}", value);
}

/// "[======>.....]": `done` of `total` steps, Keras' rounding (the arrow marks the head).
std::string bar(std::int64_t done, std::int64_t total) {
  const auto filled = total > 0 ? static_cast<int>(ProgressBar::kWidth * done / total) : ProgressBar::kWidth;
  std::string text = "[";
  if (filled > 0) text += std::string(filled - 1, '=') + (done < total ? '>' : '=');
  text += std::string(ProgressBar::kWidth - filled, '.');
  return text + "]";
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 10) return fmt::format("{:.1f}s", seconds);
  const auto whole = static_cast<std::int64_t>(std::llround(seconds));
  if (whole < 60) return fmt::format("{}s", whole);
  if (whole < 3600) return fmt::format("{}:{:02}", whole / 60, whole % 60);
  return fmt::format("{}:{:02}:{:02}", whole / 3600, whole / 60 % 60, whole % 60);
}

ProgressBar::ProgressBar(std::int64_t total, std::FILE* out, std::optional<bool> force_terminal,
                         std::chrono::milliseconds redraw_interval)
    : total_(total),
      out_(out),
      terminal_(force_terminal.value_or(out != nullptr && ::isatty(::fileno(out)) == 1)),
      redraw_interval_(redraw_interval),
      start_(Clock::now()) {
  check(total >= 0, "ProgressBar: total must be >= 0, got {}", total);
  check(out != nullptr, "ProgressBar: the output stream is null");
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(Clock::now() - start_).count();
}

void ProgressBar::update(std::int64_t step, const Metrics& values) {
  check(step >= 0 && step <= total_, "ProgressBar: step {} is outside [0, {}]", step, total_);
  step_ = step;
  if (terminal_) {
    const auto now = Clock::now();
    if (drawn_ && step < total_ && now - last_draw_ < redraw_interval_) return;
    last_draw_ = now;
    redraw(line(values, false), false);
    return;
  }
  // Plain lines: one per tenth of the way, the last one left to finish().
  const std::int64_t tenths = total_ > 0 ? step * 10 / total_ : 10;
  if (step >= total_ || tenths <= tenths_printed_) return;
  tenths_printed_ = tenths;
  redraw(line(values, false), true);
}

void ProgressBar::finish(const Metrics& values) {
  if (finished_) return;
  finished_ = true;
  redraw(line(values, true), true);
}

std::string ProgressBar::line(const Metrics& values, bool final) const {
  const double elapsed = elapsed_seconds();
  const auto digits = static_cast<int>(std::to_string(total_).size());
  std::string text = fmt::format("{:>{}}/{} {}", step_, digits, total_, bar(step_, total_));
  if (final) text += " - " + format_duration(elapsed);
  else if (step_ > 0) text += " - ETA: " + format_duration(elapsed / step_ * (total_ - step_));
  for (const auto& [name, value] : values) text += fmt::format(" - {}: {}", name, format_value(value));
  if (step_ > 0 && elapsed > 0) {
    const double rate = step_ / elapsed;
    text += rate >= 1 ? fmt::format(" - {:.1f} it/s", rate) : fmt::format(" - {:.2f} s/it", 1 / rate);
  }
  return text;
}

void ProgressBar::redraw(const std::string& text, bool end_line) {
  if (terminal_) {
    // Pad with spaces so a shorter line fully covers the previous one.
    const std::size_t padding = drawn_length_ > text.size() ? drawn_length_ - text.size() : 0;
    fmt::print(out_, "\r{}{}", text, std::string(padding, ' '));
    drawn_length_ = text.size();
    drawn_ = true;
  } else {
    fmt::print(out_, "{}", text);
  }
  if (end_line) fmt::print(out_, "\n");
  std::fflush(out_);
}

}  // namespace xgrad::optim
