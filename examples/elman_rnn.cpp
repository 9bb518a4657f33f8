// An Elman RNN written directly with xgrad's primitives, learning to recall the bit it saw
// `delay` steps earlier. Plain SGD, a hand-written loop: the whole autograd stack in one file.
//
//   h_t = tanh(x_t W_xh + h_{t-1} W_hh + b_h)        logits_t = h_t W_hy + b_y
//   loss = mean over t >= delay of cross-entropy(logits_t, x_{t - delay})
//
// Usage: elman_rnn [--steps N] [--delay D] [--hidden H] [--batch B] [--time T] [--lr LR] [--seed S]
//                  [--quick | --tiny]   (--help: every flag and its default)
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

/// A parameter: uniform in [-1/sqrt(fan), 1/sqrt(fan)], as PyTorch initialises RNNs.
Tensor parameter(const Shape& shape, std::int64_t fan) {
  double bound = 1.0 / std::sqrt(static_cast<double>(fan));
  return uniform(shape, -bound, bound).requires_grad_();
}

}  // namespace

int main(int argc, char** argv) try {
  examples::Cli cli("elman_rnn",
                    "An Elman RNN written with xgrad's primitives and plain SGD, learning to recall the bit it saw "
                    "--delay steps earlier.",
                    examples::Shared::sizes, /*seed=*/7);
  struct {
    std::int64_t steps = 0, delay = 8, hidden = 32, batch = 32, time = 20;
    double lr = 0.5;
  } o;
  cli.add("--steps", o.steps, {800, 400, 150}, "SGD steps")->check(examples::positive);
  cli.add("--delay", o.delay, "recall the bit seen this many steps earlier")->check(examples::nonnegative);
  cli.add("--hidden", o.hidden, "hidden units")->check(examples::positive);
  cli.add("--batch", o.batch, "sequences per step")->check(examples::positive);
  cli.add("--time", o.time, "steps per sequence (more than --delay)")->check(examples::positive);
  cli.add("--lr", o.lr, "SGD's learning rate")->check(examples::positive);
  if (auto done = cli.parse(argc, argv)) return *done;
  check(o.delay < o.time, "elman_rnn: --delay {} leaves nothing to recall in sequences of --time {}", o.delay, o.time);
  manual_seed(cli.seed());
  const std::int64_t H = o.hidden;
  Tensor W_xh = parameter({2, H}, H), W_hh = parameter({H, H}, H), b_h = parameter({H}, H);
  Tensor W_hy = parameter({H, 2}, H), b_y = parameter({2}, H);
  std::vector<Tensor> params{W_xh, W_hh, b_h, W_hy, b_y};

  fmt::print("Elman RNN (hidden {}) recalling the bit seen {} steps earlier; chance: loss {:.3f}, accuracy 50%\n", H,
             o.delay, std::log(2.0));
  const auto start = std::chrono::steady_clock::now();
  double first_loss = 0, loss_value = 0, accuracy = 0;
  for (std::int64_t step = 1; step <= o.steps; ++step) {
    Tensor bits = randint(0, 2, {o.batch, o.time});  // [B, T] i64
    Tensor x = eq(unsqueeze(bits, -1), arange(2, i64)).to(f32);  // one-hot, [B, T, 2]

    Tensor h = zeros({o.batch, H});
    std::vector<Tensor> losses;
    std::int64_t correct = 0, counted = 0;
    for (std::int64_t t = 0; t < o.time; ++t) {
      Tensor x_t = squeeze(slice(x, 1, t, t + 1), 1);  // [B, 2]
      h = tanh(matmul(x_t, W_xh) + matmul(h, W_hh) + b_h);
      if (t < o.delay) continue;
      Tensor logits = matmul(h, W_hy) + b_y;               // [B, 2]
      Tensor target = slice(bits, 1, t - o.delay, t - o.delay + 1);  // [B, 1]
      losses.push_back(-mean(gather(log_softmax(logits, 1), 1, target)));
      auto predicted = max(logits, 1).indices.to_vector<std::int64_t>();
      auto truth = target.to_vector<std::int64_t>();
      for (std::size_t b = 0; b < truth.size(); ++b) correct += predicted[b] == truth[b];
      counted += static_cast<std::int64_t>(truth.size());
    }
    Tensor loss = mean(stack(losses, 0));
    for (auto& p : params) p.zero_grad();
    loss.backward();
    {
      autograd::NoGradGuard no_grad;
      for (auto& p : params) p.copy_(p - o.lr * p.grad());
    }
    loss_value = loss.item();
    accuracy = 100.0 * static_cast<double>(correct) / static_cast<double>(counted);
    if (step == 1) first_loss = loss_value;
    if (step == 1 || step % 100 == 0) fmt::print("step {:4d}  loss {:.4f}  accuracy {:5.1f}%\n", step, loss_value, accuracy);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("loss {:.4f} -> {:.4f}, final batch accuracy {:.1f}% (chance 50%), {} steps in {:.1f} s\n", first_loss,
             loss_value, accuracy, o.steps, seconds);
  return loss_value < first_loss ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
