// torch_twin.cpp - the libtorch twin of xgrad_bench's issue-17 measurements (bench/xgrad_bench.cpp):
// the same JSON lines for the same points, with torch::nn::LSTM / GRU (the fused ATen loop).
//
//   torch_twin --sweep [--cells lstm,gru] [--axes T,H,B] [--points v,w] [--interleave R] [--threads N] [--env tuned|asis] [--quick]
//   torch_twin --workloads decode [--threads N] [--env tuned|asis] [--quick]
//
// --sweep: x [B, T, H] -> 1-layer LSTM or GRU (H -> H, batch-first, every step's output) -> mean(y^2);
//   a train step is: grads set to undefined (the anchor's zero_grad(set_to_none=True)), forward,
//   backward, SGD lr 0.1. One axis varied at a time around T = 100, H = 128, B = 32.
// decode: batch-1 greedy generation, vocab 96: Embedding(96, 32) -> 2-layer LSTM(H) -> Linear(H, 96),
//   eval mode, each step feeds back the argmax and carries (h, c); us per token over runs of 200
//   tokens, H = 128, 256, 512; impl "no_grad" (NoGradGuard, as the xgrad side) and "inference_mode"
//   (libtorch's faster inference guard; the best of the two is PyTorch's figure).
// --env tuned (default) re-executes the binary with OMP_WAIT_POLICY=passive and glibc's malloc
// thresholds raised, as ../shared/bench/torch_anchor.cpp does (see ../shared/bench/README.md).
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "../timing.hpp"

namespace nn = torch::nn;
using bench::Clock;
using bench::peak_rss_mib;
using bench::sample_ms;

struct Args {
  bool sweep = false, quick = false;
  std::string workloads, env = "tuned";
  int threads = 2;
  std::vector<std::string> cells{"lstm", "gru"}, axes{"T", "H", "B"};
  std::vector<int64_t> points;
  int interleave = 0;  // --interleave R: the points of an axis timed together, R rounds
};

[[noreturn]] static void fail(const std::string& msg) {
  fprintf(stderr, "torch_twin: %s\n", msg.c_str());
  exit(2);
}

static std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string t; std::getline(ss, t, ',');)
    if (!t.empty()) out.push_back(t);
  return out;
}

static int64_t positive(const std::string& flag, const std::string& value) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
  }
  if (used != value.size() || v < 1) fail(flag + " wants positive integers, got '" + value + "'");
  return v;
}

/// One sweep point, the twin of xgrad_bench's SweepPoint.
struct SweepPoint {
  std::string cell, axis;
  int64_t T, H, B;
  nn::LSTM lstm{nullptr};
  nn::GRU gru{nullptr};
  std::vector<torch::Tensor> params;
  torch::Tensor x;
  std::unique_ptr<torch::optim::SGD> sgd;

  SweepPoint(std::string cell_, std::string axis_, int64_t v)
      : cell(std::move(cell_)), axis(std::move(axis_)), T(axis == "T" ? v : 100), H(axis == "H" ? v : 128),
        B(axis == "B" ? v : 32) {
    torch::manual_seed(0);
    if (cell == "lstm") lstm = nn::LSTM(nn::LSTMOptions(H, H).batch_first(true)), params = lstm->parameters();
    else gru = nn::GRU(nn::GRUOptions(H, H).batch_first(true)), params = gru->parameters();
    x = torch::randn({B, T, H});
    sgd = std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(0.1));
  }
  void step() {
    for (auto& p : params) p.mutable_grad() = torch::Tensor();
    torch::Tensor y = lstm ? std::get<0>(lstm->forward(x)) : std::get<0>(gru->forward(x));  // [B, T, H]
    (y * y).mean().backward();
    sgd->step();
  }
  /// The JSON line for a median step of `median` ms, `extra` appended (", \"key\": value" pieces).
  void print(const Args& a, double median, const std::string& extra) const {
    printf("{\"workload\": \"sweep\", \"cell\": \"%s\", \"axis\": \"%s\", \"T\": %ld, \"H\": %ld, \"B\": %ld, "
           "\"step_ms_median\": %.3f, \"items_per_s\": %.3f, \"item\": \"tokens\", "
           "\"framework\": \"libtorch-cpp\", \"impl\": \"fused\", \"env\": \"%s\", \"threads\": %d%s}\n",
           cell.c_str(), axis.c_str(), (long)T, (long)H, (long)B, median, (double)(B * T) / (median / 1000),
           a.env.c_str(), at::get_num_threads(), extra.c_str());
    fflush(stdout);
  }
};

/// xgrad_bench's sweep, point by point (bench::sweep_sample_ms) or --interleave R (bench::interleaved_ms).
static void sweep(const Args& a) {
  const std::map<std::string, std::vector<int64_t>> grid{
      {"T", {25, 50, 100, 200, 400, 800}}, {"H", {32, 64, 128, 256, 512, 1024}}, {"B", {1, 2, 4, 8, 16, 32, 64, 128}}};
  bool first = true;
  for (const auto& axis : a.axes)
    for (const auto& cell : a.cells) {
      const std::vector<int64_t>& values = a.points.empty() ? grid.at(axis) : a.points;
      if (a.interleave > 0) {
        std::vector<std::unique_ptr<SweepPoint>> points;
        std::vector<std::function<void()>> steps;
        for (int64_t v : values) {
          points.push_back(std::make_unique<SweepPoint>(cell, axis, v));
          steps.emplace_back([&p = *points.back()] { p.step(); });
        }
        const auto ms = bench::interleaved_ms(steps, a.interleave);
        for (size_t i = 0; i < points.size(); ++i) {
          std::string rounds;
          for (double m : ms[i]) rounds += (rounds.empty() ? "" : ", ") + std::to_string(m);
          points[i]->print(a, bench::median(ms[i]), ", \"interleaved\": true, \"step_ms_rounds\": [" + rounds + "]");
        }
        continue;
      }
      for (int64_t v : values) {
        SweepPoint p(cell, axis, v);
        const std::vector<double> ms = bench::sweep_sample_ms([&] { p.step(); }, a.quick);  // xgrad_bench's schedule
        char extra[96];
        snprintf(extra, sizeof extra, ", \"step_ms_min\": %.3f, \"steps\": %zu", ms[0], ms.size());
        std::string more = extra;
        // The process's peak is this point's own only while it is the first (scaling.py runs each alone).
        if (first) snprintf(extra, sizeof extra, ", \"peak_rss_mib\": %.1f", peak_rss_mib()), more += extra;
        first = false;
        p.print(a, ms[ms.size() / 2], more);
      }
    }
}

static void decode(const Args& a) {
  constexpr int64_t V = 96, E = 32, steps = 200;
  for (int64_t H : {128, 256, 512}) {
    torch::manual_seed(0);
    nn::Embedding embed(V, E);
    nn::LSTM rnn(nn::LSTMOptions(E, H).num_layers(2).batch_first(true));
    nn::Linear head(H, V);
    embed->eval(), rnn->eval(), head->eval();
    auto run = [&] {
      torch::Tensor token = torch::full({1, 1}, 1, torch::kLong);  // token 1 starts every run
      torch::Tensor h = torch::zeros({2, 1, H}), c = torch::zeros({2, 1, H});  // [layers, B, H]
      for (int64_t t = 0; t < steps; ++t) {
        auto [y, state] = rnn->forward(embed(token), std::make_tuple(h, c));  // y: [1, 1, H]
        std::tie(h, c) = state;
        token = head(y).argmax(2);  // [1, 1]
      }
    };
    for (const char* impl : {"no_grad", "inference_mode"}) {
      std::vector<double> ms;
      if (std::string(impl) == "no_grad") {
        torch::NoGradGuard guard;
        ms = sample_ms(run, 2, 5, a.quick ? 0.3 : 1.0);
      } else {
        c10::InferenceMode guard;
        ms = sample_ms(run, 2, 5, a.quick ? 0.3 : 1.0);
      }
      const double us = 1000.0 / steps;  // ms per run -> us per token
      printf("{\"workload\": \"decode\", \"impl\": \"%s\", \"H\": %ld, \"layers\": 2, \"vocab\": %ld, \"tokens\": %ld, "
             "\"us_per_token_median\": %.3f, \"us_per_token_min\": %.3f, \"framework\": \"libtorch-cpp\", "
             "\"env\": \"%s\", \"threads\": %d, \"runs\": %zu}\n",
             impl, (long)H, (long)V, (long)steps, ms[ms.size() / 2] * us, ms[0] * us, a.env.c_str(),
             at::get_num_threads(), ms.size());
      fflush(stdout);
    }
  }
}

// Threads and environment must be in place before libgomp and OpenBLAS initialise (at load), so the
// binary sets them and re-executes itself once (torch_anchor.cpp does the same).
static void ensure_env(const Args& a, char** argv) {
  if (getenv("TORCH_TWIN_REEXEC")) return;
  setenv("TORCH_TWIN_REEXEC", "1", 1);
  setenv("OMP_NUM_THREADS", std::to_string(a.threads).c_str(), 1);
  setenv("OPENBLAS_NUM_THREADS", std::to_string(a.threads).c_str(), 1);
  if (a.env == "tuned") {
    setenv("OMP_WAIT_POLICY", "passive", 1);
    setenv("GLIBC_TUNABLES", "glibc.malloc.mmap_threshold=4294967295:glibc.malloc.trim_threshold=4294967295", 1);
  }
  execv("/proc/self/exe", argv);
  perror("execv");  // fall through and run in the current environment
}

int main(int argc, char** argv) {
  const std::string usage =
      "flags: --sweep [--cells lstm,gru] [--axes T,H,B] [--points v,w] [--interleave R], or --workloads decode; "
      "--threads N --env tuned|asis --quick";
  Args a;
  bool sweep_filter = false;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--sweep") a.sweep = true;
    else if (flag == "--quick") a.quick = true;
    else if (flag == "--workloads" && has_value) a.workloads = argv[++i];
    else if (flag == "--threads" && has_value) a.threads = (int)positive(flag, argv[++i]);
    else if (flag == "--env" && has_value) a.env = argv[++i];
    else if (flag == "--cells" && has_value) a.cells = split(argv[++i]), sweep_filter = true;
    else if (flag == "--axes" && has_value) a.axes = split(argv[++i]), sweep_filter = true;
    else if (flag == "--interleave" && has_value) a.interleave = (int)positive(flag, argv[++i]), sweep_filter = true;
    else if (flag == "--points" && has_value) {
      a.points.clear();
      for (const auto& v : split(argv[++i])) a.points.push_back(positive(flag, v));
      sweep_filter = true;
    } else fail("unknown argument '" + flag + "' or missing value (" + usage + ")");
  }
  for (const auto& c : a.cells)
    if (c != "lstm" && c != "gru") fail("unknown --cells entry '" + c + "' (lstm, gru)");
  for (const auto& x : a.axes)
    if (x != "T" && x != "H" && x != "B") fail("unknown --axes entry '" + x + "' (T, H, B)");
  if (a.env != "tuned" && a.env != "asis") fail("--env is tuned or asis, got '" + a.env + "'");
  if (sweep_filter && !a.sweep) fail("--cells, --axes and --points go with --sweep (" + usage + ")");
  if (a.sweep == !a.workloads.empty()) fail("one of --sweep or --workloads decode (" + usage + ")");
  if (!a.sweep && a.workloads != "decode") fail("unknown workload '" + a.workloads + "' (decode)");
  ensure_env(a, argv);
  at::set_num_threads(a.threads);
  if (a.sweep) sweep(a);
  else decode(a);
  return 0;
}
