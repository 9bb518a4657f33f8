// One long sequence in bounded memory (issue 17): a 2-layer LSTM train step at T = 4000 with and
// without activation checkpointing. Run it once per setting: each process reports its own peak.
//   long_sequence [--steps T] [--checkpoint-every K] [--batch B] [--input I] [--hidden H] [--repeats N]
//                 [--loss all|last]
// --loss all: the mean square of the outputs at every step (a loss that reads the whole
// sequence); last: a 10-class cross-entropy on the last step's h (a classifier of long sequences).
// Prints one JSON line: the median step time, the peak of tensor memory (memory_stats(): the
// buffers of live tensors) and the process's peak resident set size (with the buffer pool's
// freed buffers kept for reuse, and the program itself).
#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include <xgrad/xgrad.hpp>

#include "timing.hpp"

using namespace xgrad;

int main(int argc, char** argv) try {
  std::int64_t T = 4000, k = 0, B = 16, I = 64, H = 256, repeats = 3;
  std::string loss_kind = "all";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--loss") {
      loss_kind = argv[i + 1];
      if (loss_kind != "all" && loss_kind != "last") fail("long_sequence: --loss is all or last, got '{}'", loss_kind);
      continue;
    }
    const std::int64_t value = std::stoll(argv[i + 1]);
    if (flag == "--steps") T = value;
    else if (flag == "--checkpoint-every") k = value;
    else if (flag == "--batch") B = value;
    else if (flag == "--input") I = value;
    else if (flag == "--hidden") H = value;
    else if (flag == "--repeats") repeats = value;
    else fail("long_sequence: unknown flag '{}'", flag);
  }
  if (argc % 2 == 0) fail("long_sequence: flags come with a value (see the header of bench/long_sequence.cpp)");
  manual_seed(0);
  const bool last = loss_kind == "last";
  nn::LSTM rnn(I, H, {.num_layers = 2, .return_sequences = !last, .checkpoint_every = k});
  nn::Linear head(H, 10);
  std::vector<Tensor> params = rnn.parameters();
  for (const auto& p : head.parameters()) params.push_back(p);
  optim::SGD sgd(params, {.lr = 0.01});
  Tensor x = randn({B, T, I}), labels = randint(0, 10, {B});
  std::vector<double> ms;
  double loss = 0;
  for (std::int64_t r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    sgd.zero_grad();
    Tensor l = last ? nn::cross_entropy(head(rnn(x)), labels) : mean(square(rnn(x)));
    l.backward();
    sgd.step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    loss = l.item<double>();
  }
  std::sort(ms.begin(), ms.end());
  nlohmann::json row{{"workload", "long_sequence"}, {"T", T},  {"B", B},
                     {"I", I},                      {"H", H},  {"layers", 2},
                     {"checkpoint_every", k}, {"loss", loss_kind},       {"step_ms_median", ms[ms.size() / 2]},
                     {"peak_tensor_mib", static_cast<double>(memory_stats().peak) / (1 << 20)},
                     {"peak_rss_mib", bench::peak_rss_mib()}, {"last_loss", loss}};
  fmt::print("{}\n", row.dump());
  return 0;
} catch (const std::exception& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
