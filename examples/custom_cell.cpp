// A new recurrent cell in one screen, proven with one call, then trained.
//
// The minimal gated unit (Zhou et al. 2016) has a single forget gate:
//   f  = sigmoid(x W_f^T + h U_f^T + b_f)
//   h~ = tanh(x W_h^T + (f * h) U_h^T + b_h)
//   h' = (1 - f) * h + f * h~
// The generic driver gives it sequences, masking, stacking, bidirectionality and dropout.
//
// Usage: custom_cell [--steps N] [--seed S]
#include <cstdlib>
#include <string>

#include <fmt/core.h>

#include "xgrad.hpp"

using namespace xgrad;

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

int main(int argc, char** argv) try {
  int steps = 400;
  std::uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--steps") steps = std::atoi(argv[i + 1]);
    else if (flag == "--seed") seed = std::strtoull(argv[i + 1], nullptr, 10);
    else fail("custom_cell: unknown flag {}", flag);
  }
  manual_seed(seed);

  // 1. Prove it: float64 gradcheck and gradgradcheck through 3 steps w.r.t. the input, the state
  //    and every parameter; state shapes; determinism; state_dict round trip.
  MGUCell probe(3, 4);
  fmt::print("{}\n", nn::check_cell(probe));

  // 2. Train it on the adding problem (Hochreiter & Schmidhuber): two marked numbers among T
  //    to be summed. Always predicting the mean sum (1.0) scores an MSE of about 0.167.
  const std::int64_t B = 32, T = 30, H = 16;
  nn::Recurrent rnn([&](std::int64_t, std::int64_t in) { return std::make_shared<MGUCell>(in, H); }, 2,
                    {.return_sequences = false});
  nn::Linear head(H, 1);
  std::vector<Tensor> params = rnn.parameters();
  for (auto& p : head.parameters()) params.push_back(p);
  auto batch = [&] {
    Tensor values = uniform({B, T, 1});
    Tensor first = randint(0, T / 2, {B, 1}), second = randint(T / 2, T, {B, 1});
    Tensor t = arange(static_cast<double>(T), i64);
    Tensor marks = (eq(t, first) + eq(t, second)).to(f32);  // [B, T]
    Tensor x = concat({values, unsqueeze(marks, -1)}, -1);   // [B, T, 2]
    Tensor y = sum(squeeze(values, -1) * marks, 1, true);     // [B, 1]
    return std::pair{x, y};
  };
  double first_loss = 0, loss_value = 0;
  for (int step = 1; step <= steps; ++step) {
    auto [x, y] = batch();
    Tensor loss = mean(square(head(rnn(x)) - y));
    for (auto& p : params) p.zero_grad();
    loss.backward();
    autograd::NoGradGuard no_grad;
    for (auto& p : params) p.copy_(p - 0.2 * p.grad());
    loss_value = loss.item();
    if (step == 1) first_loss = loss_value;
    if (step % 100 == 0) fmt::print("step {:4d}  mse {:.4f}\n", step, loss_value);
  }
  fmt::print("adding problem, T = {}: mse {:.4f} -> {:.4f} (predicting 1.0 always: ~0.167)\n", T, first_loss, loss_value);
  return loss_value < first_loss ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
