#pragma once
// Timing and memory helpers shared by xgrad_bench and its libtorch twin (bench/torch_twin), so that
// both sides of a comparison measure the same way. Standard C++17 only: the twin is built apart.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace bench {

using Clock = std::chrono::steady_clock;

/// Milliseconds of each call of `step` after `warmup` untimed calls: at least `min_steps` calls
/// and at least `budget_s` seconds of them, sorted.
inline std::vector<double> sample_ms(const std::function<void()>& step, int warmup, std::size_t min_steps,
                                     double budget_s) {
  for (int i = 0; i < warmup; ++i) step();
  std::vector<double> ms;
  const auto start = Clock::now();
  while (ms.size() < min_steps || std::chrono::duration<double>(Clock::now() - start).count() < budget_s) {
    const auto t0 = Clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

/// The schedule of one sweep point: one probe step, then 2 warm-ups unless it took over 0.5 s, then
/// at least 10 steps and 2 s of them (3 steps for slow steps; 5 steps and 0.2 s with `quick`).
/// On the shared 2-core machine a median of 5 steps in 0.5 s moved by up to a third between two
/// runs of the same point, more than the 15 % that issue 17's flatness in T asks to resolve.
inline std::vector<double> sweep_sample_ms(const std::function<void()>& step, bool quick) {
  const auto t0 = Clock::now();
  step();
  const bool slow = std::chrono::duration<double>(Clock::now() - t0).count() > 0.5;
  return sample_ms(step, slow ? 0 : 2, slow ? 3 : quick ? 5 : 10, quick ? 0.2 : 2.0);
}

/// Paired timing of steps that do different amounts of work (the points of one sweep axis, for
/// issue 17's flatness in T): after two untimed calls of each step, every round runs each step as
/// many times in a row as make its block about as long as the slowest step's single call, the
/// starting step rotating from round to round. Returns the milliseconds per call of each step in
/// each round, [step][round]. A slow or fast spell of the shared machine then falls on all the
/// points of a round alike, and the points compare within a round (seconds apart) instead of across
/// separate processes (minutes apart).
inline std::vector<std::vector<double>> interleaved_ms(const std::vector<std::function<void()>>& steps, int rounds) {
  const std::size_t n = steps.size();
  if (n == 0 || rounds < 1) return std::vector<std::vector<double>>(n);
  std::vector<double> probe(n);
  for (std::size_t i = 0; i < n; ++i) {
    steps[i]();
    const auto t0 = Clock::now();
    steps[i]();
    probe[i] = std::max(1e-9, std::chrono::duration<double>(Clock::now() - t0).count());  // a clock tick at least
  }
  const double slowest = *std::max_element(probe.begin(), probe.end());
  std::vector<int> reps(n);
  for (std::size_t i = 0; i < n; ++i) reps[i] = std::max(1, static_cast<int>(std::lround(slowest / probe[i])));
  std::vector<std::vector<double>> ms(n, std::vector<double>(static_cast<std::size_t>(rounds)));
  for (std::size_t r = 0; r < ms[0].size(); ++r)
    for (std::size_t k = 0; k < n; ++k) {
      const std::size_t i = (k + r) % n;
      const auto t0 = Clock::now();
      for (int j = 0; j < reps[i]; ++j) steps[i]();
      ms[i][r] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count() / reps[i];
    }
  return ms;
}

/// The median of a sample (the upper one of an even count, as sample_ms's callers take it).
inline double median(std::vector<double> sample) {
  std::sort(sample.begin(), sample.end());
  return sample.empty() ? 0 : sample[sample.size() / 2];
}

/// Peak resident set size of this process so far (VmHWM), in MiB.
inline double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024;  // the kernel writes kB
  return 0;
}

}  // namespace bench
