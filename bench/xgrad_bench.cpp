// xgrad's side of the benchmark (../shared/bench/README.md): one JSON line per measurement.
//   xgrad_bench [--workloads a,b] [--threads N] [--quick]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "xgrad.hpp"

using namespace xgrad;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::vector<std::string> workloads;
  int threads = 2;
  bool quick = false;
};

void emit(nlohmann::json row) {
  fmt::print("{}\n", row.dump());
  std::fflush(stdout);
}

/// Microseconds per call of fn: `reps` samples of `iters` calls each, median and minimum.
void time_op(const char* impl, const Args& a, const std::function<void()>& fn) {
  const int reps = a.quick ? 3 : 5, iters = a.quick ? 5000 : 20000;
  std::vector<double> per;
  for (int r = 0; r < reps; ++r) {
    auto t0 = Clock::now();
    for (int i = 0; i < iters; ++i) fn();
    per.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count() / iters);
  }
  std::sort(per.begin(), per.end());
  auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
  emit({{"workload", "tiny_op"}, {"impl", impl}, {"us_median", round3(per[per.size() / 2])}, {"us_min", round3(per[0])},
        {"framework", "xgrad"}, {"threads", a.threads}});
}

/// a + b on two 1-element float32 tensors that require grad (the same definition as the anchor).
void tiny_op(const Args& a) {
  Tensor x = ones({1}).requires_grad_(), y = ones({1}).requires_grad_();
  {
    autograd::NoGradGuard no_grad;
    time_op("add_nograd", a, [&] { Tensor z = x + y; });
  }
  time_op("add_fwd", a, [&] { Tensor z = x + y; });
  time_op("add_fwd_bwd", a, [&] { (x + y).backward(); });
}

const std::map<std::string, std::function<void(const Args&)>>& workloads() {
  static const std::map<std::string, std::function<void(const Args&)>> all{{"tiny_op", tiny_op}};
  return all;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

int main(int argc, char** argv) try {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (flag == "--quick") a.quick = true;
    else if (flag == "--workloads" && i + 1 < argc) a.workloads = split_commas(argv[++i]);
    else if (flag == "--threads" && i + 1 < argc) a.threads = std::stoi(argv[++i]);
    else fail("xgrad_bench: unknown argument '{}' (flags: --workloads a,b --threads N --quick)", flag);
  }
  if (a.workloads.empty())
    for (const auto& [name, run] : workloads()) a.workloads.push_back(name);
  set_num_threads(a.threads);
  for (const auto& name : a.workloads) {
    auto it = workloads().find(name);
    if (it == workloads().end()) {
      std::string known;
      for (const auto& [n, run] : workloads()) known += (known.empty() ? "" : ", ") + n;
      fail("xgrad_bench: unknown workload '{}' (available: {})", name, known);
    }
    it->second(a);
  }
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
