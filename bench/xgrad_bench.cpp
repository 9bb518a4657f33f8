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

#include <xgrad/xgrad.hpp>

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

// --- training-step workloads ---------------------------------------------------------------------------
// Each is the ordinary user-level model of ../shared/bench/torch_anchor.py, trained one step at a
// time: zero grads, forward, backward, SGD with lr 0.1.

/// Times `step` (3 warm-up steps, then about 5 s, or 1 s with --quick) and prints the contract line.
void time_steps(const char* workload, const Args& a, double items, const char* item, const std::function<void()>& step) {
  for (int i = 0; i < 3; ++i) step();
  std::vector<double> ms;
  const double budget = a.quick ? 1.0 : 5.0;
  const auto start = Clock::now();
  while (ms.size() < 5 || std::chrono::duration<double>(Clock::now() - start).count() < budget) {
    auto t0 = Clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
  emit({{"workload", workload}, {"impl", "xgrad"}, {"step_ms_median", round3(median)}, {"step_ms_min", round3(ms[0])},
        {"items_per_s", round3(items / (median / 1000))}, {"item", item}, {"threads", a.threads}, {"steps", ms.size()}});
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
  nn::GRU rnn(32, 32);
  nn::Linear fc(32, 1);
  Tensor tokens = randint(0, 10000, {32, 500}), y = randint(0, 2, {32}).to(f32);
  train("gru_imdb", a, 32, "sequences", params_of({&emb, &rnn, &fc}),
        [&] { return nn::bce_with_logits(squeeze(fc(rnn.run(emb(tokens)).states[0][0]), 1), y); });
}

void cnn_gru(const Args& a) {
  nn::Conv1D conv1(14, 32, 5), conv2(32, 32, 5);
  nn::MaxPool1D pool(3);
  nn::GRU rnn(32, 32);
  nn::Linear fc(32, 1);
  Tensor x = randn({32, 240, 14}), y = randn({32});
  train("cnn_gru", a, 32, "sequences", params_of({&conv1, &conv2, &rnn, &fc}), [&] {
    Tensor z = relu(conv2(pool(relu(conv1(x)))));  // [B, 74, 32]
    return nn::l1_loss(squeeze(fc(rnn.run(z).states[0][0]), 1), y);
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

const std::map<std::string, std::function<void(const Args&)>>& workloads() {
  static const std::map<std::string, std::function<void(const Args&)>> all{
      {"tiny_op", tiny_op},   {"lstm_lm", lstm_lm},       {"small_lstm", small_lstm}, {"gru_imdb", gru_imdb},
      {"cnn_gru", cnn_gru},   {"bilstm_tagger", bilstm_tagger}, {"dglstm", dglstm}, {"mha", mha}};
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
