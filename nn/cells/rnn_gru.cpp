// Elman RNN, the two GRU forms and the minimal gated unit.
#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/cells.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

SimpleRNNCell::SimpleRNNCell(std::int64_t input_size, std::int64_t hidden_size, Nonlinearity nonlinearity, bool bias)
    : Cell(input_size, hidden_size), nonlinearity_(nonlinearity) {
  register_gate_weights(1, 1, bias);
}

// h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)
State SimpleRNNCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  Tensor a = x + hidden_gates(state[0]);
  return {nonlinearity_ == Nonlinearity::tanh ? tanh(a) : relu(a)};
}

GRUCell::GRUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias) : Cell(input_size, hidden_size) {
  register_gate_weights(3, 3, bias);
}

// r_x, z_x, n_x = x W_ih^T + b_ih;  r_h, z_h, n_h = h W_hh^T + b_hh
// r = sigmoid(r_x + r_h);  z = sigmoid(z_x + z_h);  n = tanh(n_x + r * n_h)
// h' = (1 - z) * n + z * h, computed as n + z * (h - n)
State GRUCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const Tensor& h = state[0];
  auto gx = chunk(x, 3, -1);
  auto gh = chunk(hidden_gates(h), 3, -1);
  Tensor r = sigmoid(gx[0] + gh[0]);
  Tensor z = sigmoid(gx[1] + gh[1]);
  Tensor n = tanh(gx[2] + r * gh[2]);
  return {n + z * (h - n)};
}

GRUResetBeforeCell::GRUResetBeforeCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : Cell(input_size, hidden_size) {
  register_gate_weights(3, 3, bias);
}

// r, z as in GRUCell;  n = tanh(n_x + (r * h) W_hn^T + b_hn);  h' = (1 - z) * n + z * h = n + z * (h - n)
State GRUResetBeforeCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const Tensor& h = state[0];
  const std::int64_t H = hidden_size();
  auto gx = chunk(x, 3, -1);
  auto rz = chunk(hidden_block(h, 0, 2 * H), 2, -1);  // [W_hr; W_hz] h + [b_hr; b_hz]
  Tensor r = sigmoid(gx[0] + rz[0]);
  Tensor z = sigmoid(gx[1] + rz[1]);
  Tensor n = tanh(gx[2] + hidden_block(r * h, 2 * H, H));
  return {n + z * (h - n)};
}

MGUCell::MGUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias) : Cell(input_size, hidden_size) {
  register_gate_weights(2, 2, bias);
}

// f_x, n_x = x W_ih^T + b_ih;  [W_hf; W_hn] = W_hh
// f = sigmoid(f_x + h W_hf^T + b_hf);  n = tanh(n_x + (f * h) W_hn^T + b_hn);  h' = (1 - f) * h + f * n = h + f * (n - h)
State MGUCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const Tensor& h = state[0];
  const std::int64_t H = hidden_size();
  auto gx = chunk(x, 2, -1);
  Tensor f = sigmoid(gx[0] + hidden_block(h, 0, H));
  Tensor n = tanh(gx[1] + hidden_block(f * h, H, H));
  return {h + f * (n - h)};
}

}  // namespace xgrad::nn
