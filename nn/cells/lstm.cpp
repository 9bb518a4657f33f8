// The LSTM family: LSTM, peephole, coupled input-forget, Gen 1, depth-gated.
#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/cells.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

namespace {
// The LSTM update from the summed pre-activations of i, f, g, o:
// c' = sigmoid(f) * c + sigmoid(i) * tanh(g);   h' = sigmoid(o) * tanh(c')
State lstm_update(const Tensor& preactivations, const Tensor& c) {
  auto gates = chunk(preactivations, 4, -1);
  Tensor i = sigmoid(gates[0]), f = sigmoid(gates[1]), g = tanh(gates[2]), o = sigmoid(gates[3]);
  Tensor c_next = f * c + i * g;
  return {o * tanh(c_next), c_next};
}
}  // namespace

LSTMCell::LSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias) : Cell(input_size, hidden_size, 2) {
  register_gate_weights(4, 4, bias);
}

// i, f, g, o = x W_ih^T + b_ih + h W_hh^T + b_hh, then the LSTM update
State LSTMCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  return lstm_update(x + hidden_gates(state[0]), state[1]);
}

PeepholeLSTMCell::PeepholeLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : Cell(input_size, hidden_size, 2) {
  register_gate_weights(4, 4, bias);
  weight_ci = cell_parameter("weight_ci", {hidden_size});
  weight_cf = cell_parameter("weight_cf", {hidden_size});
  weight_co = cell_parameter("weight_co", {hidden_size});
}

// i = sigmoid(i_xh + w_ci * c);  f = sigmoid(f_xh + w_cf * c);  g = tanh(g_xh)
// c' = f * c + i * g;  o = sigmoid(o_xh + w_co * c');  h' = o * tanh(c')
State PeepholeLSTMCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const Tensor &h = state[0], &c = state[1];
  auto gates = chunk(x + hidden_gates(h), 4, -1);
  Tensor i = sigmoid(gates[0] + weight_ci * c), f = sigmoid(gates[1] + weight_cf * c), g = tanh(gates[2]);
  Tensor c_next = f * c + i * g;
  Tensor o = sigmoid(gates[3] + weight_co * c_next);
  return {o * tanh(c_next), c_next};
}

CoupledLSTMCell::CoupledLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : Cell(input_size, hidden_size, 2) {
  register_gate_weights(3, 3, bias);
}

// i, g, o = x W_ih^T + b_ih + h W_hh^T + b_hh;  f = 1 - i
// c' = (1 - i) * c + i * tanh(g);  h' = sigmoid(o) * tanh(c')
State CoupledLSTMCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const Tensor &h = state[0], &c = state[1];
  auto gates = chunk(x + hidden_gates(h), 3, -1);
  Tensor i = sigmoid(gates[0]), g = tanh(gates[1]), o = sigmoid(gates[2]);
  Tensor c_next = (1.0 - i) * c + i * g;
  return {o * tanh(c_next), c_next};
}

Gen1LSTMCell::Gen1LSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias) : Cell(input_size, hidden_size) {
  register_gate_weights(4, 4, bias);  // blocks i, f, o and the candidate s~
}

// i, f, o = sigmoid(x U^T + s W^T + b)          (the first three blocks)
// s~ = tanh(x U_s^T + (o * s) W_s^T + b_s);  s' = f * s + i * s~
State Gen1LSTMCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const Tensor& s = state[0];
  const std::int64_t H = hidden_size();
  auto gx = split(x, {3 * H, H}, -1);
  auto gates = chunk(gx[0] + hidden_block(s, 0, 3 * H), 3, -1);  // i, f, o
  Tensor i = sigmoid(gates[0]), f = sigmoid(gates[1]), o = sigmoid(gates[2]);
  Tensor candidate = tanh(gx[1] + hidden_block(o * s, 3 * H, H));
  return {f * s + i * candidate};
}

DepthGatedLSTMCell::DepthGatedLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias)
    : Cell(input_size, hidden_size, 2) {
  register_gate_weights(5, 4, false);
  if (bias) bias_ih = cell_parameter("bias_ih", {5 * hidden_size});  // one bias, as Yao et al.
  weight_cd = cell_parameter("weight_cd", {hidden_size});
  weight_ld = cell_parameter("weight_ld", {hidden_size});
}

// Without a layer beneath: a plain LSTM on the first four blocks.
State DepthGatedLSTMCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  return lstm_update(slice(x, -1, 0, 4 * hidden_size()) + hidden_gates(state[0]), state[1]);
}

// i, f, g, o, d_x = x W_ih^T + b  (+ h W_hh^T for i, f, g, o)
// d = sigmoid(d_x + w_cd * c + w_ld * c_below)
// c' = d * c_below + f * c + i * g;   h' = o * tanh(c')
State DepthGatedLSTMCell::step_stacked(const Tensor& x, const State& state, const State& below) {
  check_step(x, state);
  if (below.size() != 2 || !below[1].defined() || below[1].shape() != state[1].shape())
    fail("DepthGatedLSTMCell: the state of the layer beneath must be {{h, c}} with c {}, got {} tensors{}",
         state[1].shape(), below.size(),
         below.size() == 2 && below[1].defined() ? fmt::format(", c {}", below[1].shape()) : "");
  const Tensor &h = state[0], &c = state[1], &c_below = below[1];
  auto gx = split(x, {4 * hidden_size(), hidden_size()}, -1);
  auto gates = chunk(gx[0] + hidden_gates(h), 4, -1);
  Tensor i = sigmoid(gates[0]), f = sigmoid(gates[1]), g = tanh(gates[2]), o = sigmoid(gates[3]);
  Tensor d = sigmoid(gx[1] + weight_cd * c + weight_ld * c_below);
  Tensor c_next = d * c_below + f * c + i * g;
  return {o * tanh(c_next), c_next};
}

}  // namespace xgrad::nn
