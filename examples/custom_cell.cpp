// A new recurrent cell in one screen, proven with one call, then trained.
//
// The minimal gated unit (Zhou et al. 2016) has a single forget gate:
//   f  = sigmoid(x W_f^T + h U_f^T + b_f)
//   h~ = tanh(x W_h^T + (f * h) U_h^T + b_h)
//   h' = (1 - f) * h + f * h~
// The generic driver gives it sequences, masking, stacking, bidirectionality and dropout.
// nn::check_cell proves its gradients (float64 gradcheck and gradgradcheck through a few steps
// with respect to the input, the state and every parameter), its state shapes, determinism and
// state_dict round trip. Then it is trained on the adding problem (Hochreiter & Schmidhuber 1997):
// of T numbers in [0, 1), two are marked (one in each half) and the target is their sum; always
// predicting the mean sum 1.0 scores an MSE of about 0.167. Adam with gradient clipping, a linear
// head on the last hidden state.
//
// Usage: custom_cell [--steps N] [--length T] [--hidden H] [--seed S] [--quick] [--tiny]
#include <cmath>
#include <memory>
#include <string>

#include <fmt/core.h>

#include "common/report.hpp"
#include "common/adding.hpp"
#include "xgrad.hpp"

using namespace xgrad;

namespace {

class MGUCell : public nn::Cell {
 public:
  MGUCell(std::int64_t input_size, std::int64_t hidden_size) : Cell(input_size, hidden_size) {
    register_gate_weights(2, 2, /*bias=*/true);  // weight_ih [2H, I]: W_f, W_h; weight_hh [2H, H]: U_f, U_h
  }
  std::string type_name() const override { return "MGUCell"; }
  Tensor project_input(const Tensor& x) override { return input_gates(x); }  // x W^T + b, all steps at once
  nn::State step(const Tensor& x, const nn::State& state) override {
    const Tensor& h = state[0];
    auto x_parts = chunk(x, 2, -1);
    auto U = chunk(weight_hh, 2, 0);
    auto b = chunk(bias_hh, 2, 0);
    Tensor f = sigmoid(x_parts[0] + nn::linear(recurrent(h), U[0], b[0]));
    Tensor candidate = tanh(x_parts[1] + nn::linear(recurrent(f * h), U[1], b[1]));
    return {(1.0 - f) * h + f * candidate};
  }
};

using examples::Adding;
using examples::adding_problem;

/// The MGU layer and a linear head on its last hidden state.
struct Regressor : nn::Module {
  std::shared_ptr<nn::Recurrent> rnn;
  std::shared_ptr<nn::Linear> head;
  explicit Regressor(std::int64_t hidden)
      : rnn(register_module("rnn", std::make_shared<nn::Recurrent>(
                                       [=](std::int64_t, std::int64_t in) { return std::make_shared<MGUCell>(in, hidden); },
                                       2))),
        head(register_module("head", std::make_shared<nn::Linear>(hidden, 1))) {}
  Tensor operator()(const Tensor& x) { return (*head)(rnn->run(x).states[0][0]); }  // [B, T, 2] -> [B, 1]
};

}  // namespace

int main(int argc, char** argv) try {
  examples::Flags flags(argc, argv, {"steps", "length", "hidden", "batch", "lr", "seed", "quick", "tiny"});
  const bool quick = flags.has("quick"), tiny = flags.has("tiny");
  const std::int64_t T = flags.integer("length", tiny ? 20 : 50);
  const std::int64_t steps = flags.integer("steps", tiny ? 30 : quick ? 400 : 1000);
  const std::int64_t H = flags.integer("hidden", tiny ? 8 : 32);
  const std::int64_t B = flags.integer("batch", 64);
  const double lr = flags.number("lr", 1e-2);
  const auto seed = static_cast<std::uint64_t>(flags.integer("seed", 1));
  manual_seed(seed);

  // 1. Prove it: float64 gradcheck and gradgradcheck through 3 steps w.r.t. the input, the state
  //    and every parameter; state shapes; determinism; state_dict round trip.
  MGUCell probe(3, 4);
  fmt::print("{}\n\n", nn::check_cell(probe));

  // 2. Train it on the adding problem, against always predicting 1 on a fixed test set.
  Generator data_gen(seed), test_gen(20250117);
  const Adding test = adding_problem(tiny ? 200 : 1000, T, test_gen);
  const double baseline = mean(square(test.y - 1.0)).item();
  Regressor model(H);
  auto test_mse = [&] {
    autograd::NoGradGuard no_grad;
    return nn::mse_loss(model(test.x), test.y).item();
  };
  const double untrained = test_mse();
  fmt::print("Adding problem, T = {}: MGU with {} hidden units ({} parameters), {} steps of batch {}, Adam lr {}\n", T, H,
             model.parameter_count(), steps, B, lr);

  optim::Adam adam(model.parameters(), {.lr = lr});
  optim::ProgressBar bar(steps);
  double running = 0;
  for (std::int64_t step = 1; step <= steps; ++step) {
    Adding batch = adding_problem(B, T, data_gen);
    adam.zero_grad();
    Tensor loss = nn::mse_loss(model(batch.x), batch.y);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    running = step == 1 ? loss.item() : 0.95 * running + 0.05 * loss.item();  // smoothed for display
    bar.update(step, {{"loss", running}});
  }
  bar.finish({{"loss", running}});

  const double mse = test_mse();
  fmt::print("test MSE {:.4f} (untrained {:.4f}); always predicting 1: {:.4f}\n", mse, untrained, baseline);
  examples::report({.example = "custom_cell",
                    .task = fmt::format("adding problem, T = {}", T),
                    .model = "MGU (custom cell)",
                    .metric = "test MSE",
                    .value = mse,
                    .baseline = baseline});
  if (tiny) return std::isfinite(mse) && mse < untrained ? 0 : 1;
  return mse < baseline ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
