// xgrad's side of the benchmark (../shared/bench/README.md): one JSON line per measurement.
//   xgrad_bench [--workloads a,b] [--threads N] [--quick] [--cores near|far]
// --cores fixes what the pool assumes of its cores' distance instead of probing it (see
// core/parallel.hpp), to measure either policy whatever the machine does at the moment.
//   xgrad_bench --sweep [--cells lstm,gru] [--axes T,H,B] [--points v,w] [--interleave R] [--threads N] [--quick]
// --sweep and the `decode` workload are issue 17's scaling and latency measurements; their
// libtorch twin is bench/torch_twin, and bench/scaling.py runs both sides.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

#include "timing.hpp"

using namespace xgrad;
using bench::peak_rss_mib;
using bench::sample_ms;

namespace {

struct Args {
  std::vector<std::string> workloads;
  int threads = 2;
  bool quick = false;
  bool sweep = false;
  std::vector<std::string> cells{"lstm", "gru"}, axes{"T", "H", "B"};
  std::vector<std::int64_t> points;  // --points: these values of each swept axis instead of its grid
  int interleave = 0;                // --interleave R: the points of an axis timed together, R rounds
};

double round3(double v) { return std::round(v * 1000) / 1000; }

void emit(nlohmann::json row) {
  fmt::print("{}\n", row.dump());
  std::fflush(stdout);
}

/// Times `fn` in batches of 20 000 calls (5 000 with --quick) for about 1.5 s (0.3 s), as long as a
/// training workload's steps take, and prints the median and the fastest batch's us per call. Five
/// batches (60 ms in all at 0.6 us per call) moved with every short slow spell of the shared host:
/// eight back-to-back runs gave medians of 0.58 to 1.08 us.
void time_op(const char* impl, const Args& a, const std::function<void()>& fn) {
  const int iters = a.quick ? 5000 : 20000;
  const std::vector<double> ms = sample_ms([&] { for (int i = 0; i < iters; ++i) fn(); }, 1, a.quick ? 3 : 5, a.quick ? 0.3 : 1.5);
  const double us_per_ms = 1000.0 / iters;
  emit({{"workload", "tiny_op"}, {"impl", impl}, {"us_median", round3(ms[ms.size() / 2] * us_per_ms)},
        {"us_min", round3(ms[0] * us_per_ms)}, {"framework", "xgrad"}, {"threads", a.threads}, {"batches", ms.size()}});
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

// --- training-step workloads ---------------------------------------------------------------------------
// Each is the ordinary user-level model of ../shared/bench/torch_anchor.py, trained one step at a
// time: zero grads, forward, backward, SGD with lr 0.1.

/// Times `step` (3 warm-up steps, then about 5 s, or 1 s with --quick) and prints the contract line,
/// with the share of the pool's probes meanwhile that found the cores far apart (null: none answered).
void time_steps(const char* workload, const Args& a, double items, const char* item, const std::function<void()>& step) {
  const detail::CoreProbes before = detail::core_probes();
  const std::vector<double> ms = sample_ms(step, 3, 5, a.quick ? 1.0 : 5.0);
  const detail::CoreProbes after = detail::core_probes();
  const double median = ms[ms.size() / 2];
  nlohmann::json cores_far;
  if (after.answered > before.answered)
    cores_far = round3(double(after.far - before.far) / double(after.answered - before.answered));
  emit({{"workload", workload}, {"impl", "xgrad"}, {"step_ms_median", round3(median)}, {"step_ms_min", round3(ms[0])},
        {"items_per_s", round3(items / (median / 1000))}, {"item", item}, {"threads", a.threads}, {"steps", ms.size()},
        {"cores_far", cores_far}});
}

/// A model's training step: the loss from `loss`, then backward and SGD over `params`.
void train(const char* workload, const Args& a, double items, const char* item, const std::vector<Tensor>& params,
           const std::function<Tensor()>& loss) {
  optim::SGD sgd(params, {.lr = 0.1});
  time_steps(workload, a, items, item, [&] {
    sgd.zero_grad();
    loss().backward();
    sgd.step();
  });
}

std::vector<Tensor> params_of(std::initializer_list<const nn::Module*> modules) {
  std::vector<Tensor> out;
  for (const auto* m : modules)
    for (auto& p : m->parameters()) out.push_back(p);
  return out;
}

void lstm_lm(const Args& a) {
  nn::Embedding emb(10000, 256);
  nn::LSTM rnn(256, 256);
  nn::Linear out(256, 10000);
  Tensor tokens = randint(0, 10000, {32, 35}), targets = randint(0, 10000, {32, 35});
  train("lstm_lm", a, 32 * 35, "tokens", params_of({&emb, &rnn, &out}),
        [&] { return nn::cross_entropy(out(rnn(emb(tokens))), targets); });
}

void small_lstm(const Args& a) {
  nn::LSTM rnn(32, 64);
  nn::Linear fc(64, 10);
  Tensor x = randn({8, 50, 32}), y = randint(0, 10, {8});
  train("small_lstm", a, 8, "sequences", params_of({&rnn, &fc}),
        [&] { return nn::cross_entropy(fc(rnn.run(x).states[0][0]), y); });
}

void gru_imdb(const Args& a) {
  nn::Embedding emb(10000, 32);
  nn::GRU rnn(32, 32, {.return_sequences = false});  // the model reads the last h only
  nn::Linear fc(32, 1);
  Tensor tokens = randint(0, 10000, {32, 500}), y = randint(0, 2, {32}).to(f32);
  train("gru_imdb", a, 32, "sequences", params_of({&emb, &rnn, &fc}),
        [&] { return nn::bce_with_logits(squeeze(fc(rnn(emb(tokens))), 1), y); });
}

void cnn_gru(const Args& a) {
  nn::Conv1D conv1(14, 32, 5), conv2(32, 32, 5);
  nn::MaxPool1D pool(3);
  nn::GRU rnn(32, 32, {.return_sequences = false});
  nn::Linear fc(32, 1);
  Tensor x = randn({32, 240, 14}), y = randn({32});
  train("cnn_gru", a, 32, "sequences", params_of({&conv1, &conv2, &rnn, &fc}), [&] {
    Tensor z = relu(conv2(pool(relu(conv1(x)))));  // [B, 74, 32]
    return nn::l1_loss(squeeze(fc(rnn(z)), 1), y);
  });
}

void bilstm_tagger(const Args& a) {
  nn::Embedding emb(20000, 128);
  nn::LSTM rnn(128, 128, {.bidirectional = true});
  nn::Linear fc(256, 50);
  Tensor tokens = randint(0, 20000, {32, 40}), tags = randint(0, 50, {32, 40});
  train("bilstm_tagger", a, 32 * 40, "tokens", params_of({&emb, &rnn, &fc}),
        [&] { return nn::cross_entropy(fc(rnn(emb(tokens))), tags); });
}

void dglstm(const Args& a) {
  nn::DepthGatedLSTM rnn(128, 128, {.num_layers = 2, .return_sequences = false});
  nn::Linear fc(128, 10);
  Tensor x = randn({32, 50, 128}), y = randint(0, 10, {32});
  train("dglstm", a, 32, "sequences", params_of({&rnn, &fc}), [&] { return nn::cross_entropy(fc(rnn(x)), y); });
}

void mha(const Args& a) {
  nn::MultiheadAttention attention(256, 4);
  nn::Linear fc(256, 10);
  Tensor x = randn({16, 128, 256}), y = randint(0, 10, {16});
  train("mha", a, 16, "sequences", params_of({&attention, &fc}),
        [&] { return nn::cross_entropy(fc(mean(attention.forward(x, x, x).context, 1)), y); });
}

// --- issue 17: scaling sweep and decoding latency (twins in bench/torch_twin/torch_twin.cpp) ------------

/// One sweep point: x [B, T, H] -> 1-layer LSTM or GRU (H -> H, every step's output) -> mean(y^2),
/// trained like the workloads above (zero grads, forward, backward, SGD lr 0.1). Items are tokens (B * T).
struct SweepPoint {
  std::string cell, axis;
  std::int64_t T, H, B;
  std::unique_ptr<nn::Recurrent> rnn;
  Tensor x;
  std::unique_ptr<optim::SGD> sgd;

  SweepPoint(std::string cell_, std::string axis_, std::int64_t v)
      : cell(std::move(cell_)), axis(std::move(axis_)), T(axis == "T" ? v : 100), H(axis == "H" ? v : 128),
        B(axis == "B" ? v : 32) {
    if (cell == "lstm") rnn = std::make_unique<nn::LSTM>(H, H);
    else rnn = std::make_unique<nn::GRU>(H, H);
    x = randn({B, T, H});
    sgd = std::make_unique<optim::SGD>(rnn->parameters(), optim::SGDOptions{.lr = 0.1});
  }
  void step() {
    sgd->zero_grad();
    Tensor y = (*rnn)(x);  // [B, T, H]
    mean(y * y).backward();
    sgd->step();
  }
  /// The JSON line for a median step of `ms_median` milliseconds.
  nlohmann::json row(const Args& a, double ms_median) const {
    return {{"workload", "sweep"}, {"cell", cell},   {"axis", axis}, {"T", T}, {"H", H}, {"B", B},
            {"step_ms_median", round3(ms_median)}, {"items_per_s", round3(static_cast<double>(B * T) / (ms_median / 1000))},
            {"item", "tokens"}, {"framework", "xgrad"}, {"threads", a.threads}};
  }
};

/// The sweep: one axis varied at a time around T = 100, H = 128, B = 32. bench/scaling.py holds
/// the same grid and runs each point in a fresh process. Each point is timed with
/// bench::sweep_sample_ms, or with --interleave R all the points of an axis (one cell) in one
/// process, R rounds of bench::interleaved_ms, each row then listing its milliseconds per step in
/// every round. The twin (bench/torch_twin) does the same.
void sweep(const Args& a) {
  const std::map<std::string, std::vector<std::int64_t>> grid{
      {"T", {25, 50, 100, 200, 400, 800}}, {"H", {32, 64, 128, 256, 512, 1024}}, {"B", {1, 2, 4, 8, 16, 32, 64, 128}}};
  bool first = true;
  for (const auto& axis : a.axes)
    for (const auto& cell : a.cells) {
      const std::vector<std::int64_t>& values = a.points.empty() ? grid.at(axis) : a.points;
      if (a.interleave > 0) {
        std::vector<std::unique_ptr<SweepPoint>> points;
        std::vector<std::function<void()>> steps;
        for (std::int64_t v : values) {
          points.push_back(std::make_unique<SweepPoint>(cell, axis, v));
          steps.emplace_back([&p = *points.back()] { p.step(); });
        }
        const auto ms = bench::interleaved_ms(steps, a.interleave);
        for (std::size_t i = 0; i < points.size(); ++i) {
          nlohmann::json row = points[i]->row(a, bench::median(ms[i]));
          row["interleaved"] = true;
          row["step_ms_rounds"] = ms[i];
          emit(row);
        }
        continue;
      }
      for (std::int64_t v : values) {
        SweepPoint p(cell, axis, v);
        const std::vector<double> ms = bench::sweep_sample_ms([&] { p.step(); }, a.quick);
        nlohmann::json row = p.row(a, ms[ms.size() / 2]);
        row["step_ms_min"] = round3(ms[0]);
        row["steps"] = ms.size();
        // The process's peak is this point's own only while it is the first (scaling.py runs each alone).
        if (first) row["peak_rss_mib"] = std::round(peak_rss_mib() * 10) / 10;
        first = false;
        emit(row);
      }
    }
}

/// Batch-1 greedy generation from a character LM like examples/char_lm.cpp's: vocab 96,
/// Embedding(96, 32), 2-layer LSTM(H), Linear(H, 96), eval mode, no graph; each step feeds back the
/// argmax. Microseconds per generated token over runs of 200 tokens, for H = 128, 256, 512, two
/// ways a user would write it: nn::generate with a DecoderStep (impl "generate"), and a hand loop
/// under NoGradGuard that keeps the layers' states and takes argmax itself (impl "loop").
void decode(const Args& a) {
  constexpr std::int64_t V = 96, E = 32, steps = 200;
  for (std::int64_t H : {128, 256, 512}) {
    nn::Embedding embed(V, E);
    nn::LSTM rnn(E, H, {.num_layers = 2});
    nn::Linear head(H, V);
    embed.eval(), rnn.eval(), head.eval();
    const Tensor start = full({1, 1}, 1, i64);  // token 1 starts every run

    // generate() carries one flat state {h0, c0, h1, c1}; the layer wants one {h, c} per layer
    nn::DecoderStep step = [&](const Tensor& tokens, const nn::State& flat) {
      std::vector<nn::State> states;
      if (!flat.empty()) states = {{flat[0], flat[1]}, {flat[2], flat[3]}};
      nn::RecurrentResult r = rnn.run(embed(unsqueeze(tokens, 1)), {}, states);
      return std::pair{squeeze(head(r.output), 1), nn::State{r.h(0), r.c(0), r.h(1), r.c(1)}};
    };
    auto with_generate = [&] { nn::generate(step, start, {}, steps); };
    auto with_loop = [&] {
      autograd::NoGradGuard no_grad;
      Tensor token = start;  // [1, 1]
      std::vector<nn::State> states;
      for (std::int64_t t = 0; t < steps; ++t) {
        nn::RecurrentResult r = rnn.run(embed(token), {}, states);
        states = std::move(r.states);
        token = argmax(head(r.output), 2);  // [1, 1]
      }
    };
    const std::vector<std::pair<const char*, std::function<void()>>> impls{{"generate", with_generate},
                                                                           {"loop", with_loop}};
    for (const auto& [impl, run] : impls) {
      const std::vector<double> ms = sample_ms(run, 2, 5, a.quick ? 0.3 : 1.0);
      const double us = 1000.0 / steps;  // ms per run -> us per token
      emit({{"workload", "decode"}, {"impl", impl}, {"H", H}, {"layers", 2}, {"vocab", V}, {"tokens", steps},
            {"us_per_token_median", round3(ms[ms.size() / 2] * us)}, {"us_per_token_min", round3(ms[0] * us)},
            {"framework", "xgrad"}, {"threads", a.threads}, {"runs", ms.size()}});
    }
  }
}

const std::map<std::string, std::function<void(const Args&)>>& workloads() {
  static const std::map<std::string, std::function<void(const Args&)>> all{
      {"tiny_op", tiny_op},   {"lstm_lm", lstm_lm},       {"small_lstm", small_lstm}, {"gru_imdb", gru_imdb},
      {"cnn_gru", cnn_gru},   {"bilstm_tagger", bilstm_tagger}, {"dglstm", dglstm}, {"mha", mha},
      {"decode", decode}};
  return all;
}

/// Workloads that run only when named: not part of the shared contract that `make bench` runs.
const std::set<std::string> on_request{"decode"};

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
  const char* usage = "flags: --workloads a,b --threads N --quick --cores near|far, or --sweep [--cells lstm,gru] [--axes T,H,B] [--points v,w] [--interleave R]";
  auto positive = [](const std::string& flag, const std::string& value) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(value, &used);
    } catch (const std::exception&) {
    }
    if (used != value.size() || v < 1) fail("xgrad_bench: {} wants positive integers, got '{}'", flag, value);
    return static_cast<std::int64_t>(v);
  };
  bool sweep_filter = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    const bool has_value = i + 1 < argc;
    if (flag == "--quick") a.quick = true;
    else if (flag == "--sweep") a.sweep = true;
    else if (flag == "--workloads" && has_value) a.workloads = split_commas(argv[++i]);
    else if (flag == "--threads" && has_value) a.threads = static_cast<int>(positive(flag, argv[++i]));
    else if (flag == "--cores" && has_value) {
      const std::string cores = argv[++i];
      if (cores != "near" && cores != "far") fail("xgrad_bench: --cores takes near or far, got '{}'", cores);
      detail::assume_cores_far_apart(cores == "far");
    }
    else if (flag == "--cells" && has_value) a.cells = split_commas(argv[++i]), sweep_filter = true;
    else if (flag == "--axes" && has_value) a.axes = split_commas(argv[++i]), sweep_filter = true;
    else if (flag == "--interleave" && has_value) a.interleave = static_cast<int>(positive(flag, argv[++i])), sweep_filter = true;
    else if (flag == "--points" && has_value) {
      a.points.clear();
      for (const auto& v : split_commas(argv[++i])) a.points.push_back(positive(flag, v));
      sweep_filter = true;
    } else fail("xgrad_bench: unknown argument '{}' or missing value ({})", flag, usage);
  }
  for (const auto& c : a.cells)
    if (c != "lstm" && c != "gru") fail("xgrad_bench: unknown --cells entry '{}' (lstm, gru)", c);
  for (const auto& x : a.axes)
    if (x != "T" && x != "H" && x != "B") fail("xgrad_bench: unknown --axes entry '{}' (T, H, B)", x);
  if (sweep_filter && !a.sweep) fail("xgrad_bench: --cells, --axes and --points go with --sweep ({})", usage);
  if (a.sweep && !a.workloads.empty()) fail("xgrad_bench: --sweep and --workloads are separate runs ({})", usage);
  set_num_threads(a.threads);
  if (a.sweep) {
    sweep(a);
    return 0;
  }
  if (a.workloads.empty())
    for (const auto& [name, run] : workloads())
      if (!on_request.contains(name)) a.workloads.push_back(name);
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
