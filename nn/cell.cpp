#include "nn/cell.hpp"

#include <fmt/ranges.h>

#include "autograd/ops.hpp"
#include "nn/init.hpp"
#include "nn/linear.hpp"

namespace xgrad::nn {

Cell::Cell(std::int64_t input_size, std::int64_t hidden_size, std::size_t state_count)
    : input_size_(input_size), hidden_size_(hidden_size), state_count_(state_count) {
  if (input_size <= 0 || hidden_size <= 0)
    fail("Cell: input_size and hidden_size must be positive, got {} and {}", input_size, hidden_size);
}

State Cell::initial_state(std::int64_t batch, Dtype dtype) const {
  return State(state_count_, zeros({batch, hidden_size_}, dtype));
}

void Cell::check_step(const Tensor& x, const State& state) const {
  const std::int64_t width = weight_ih.defined() ? weight_ih.size(0) : input_size_;
  bool ok = x.dim() == 2 && x.size(1) == width && state.size() == state_count_;
  for (std::size_t i = 0; ok && i < state.size(); ++i)
    ok = state[i].defined() && state[i].shape() == Shape{x.size(0), hidden_size_};
  if (ok) return;
  std::vector<std::string> shapes;
  for (const auto& s : state) shapes.push_back(s.defined() ? to_string(s.shape()) : "undefined");
  fail("{}: a step takes the projected input [B, {}] and a state of {} tensor(s) [B, {}], got input {} and state [{}]",
       type_name(), width, state_count_, hidden_size_, x.shape(), fmt::join(shapes, ", "));
}

Tensor Cell::recurrent(const Tensor& h) const { return recurrent_mask_.defined() ? h * recurrent_mask_ : h; }

Tensor Cell::cell_parameter(const std::string& name, const Shape& shape) {
  return register_parameter(name, init::fan_in_uniform(shape, hidden_size_));
}

void Cell::register_gate_weights(std::int64_t input_gates, std::int64_t hidden_gates, bool bias) {
  const std::int64_t H = hidden_size_;
  weight_ih = cell_parameter("weight_ih", {input_gates * H, input_size_});
  if (hidden_gates > 0) weight_hh = cell_parameter("weight_hh", {hidden_gates * H, H});
  if (bias) {
    bias_ih = cell_parameter("bias_ih", {input_gates * H});
    if (hidden_gates > 0) bias_hh = cell_parameter("bias_hh", {hidden_gates * H});
  }
}

Tensor Cell::input_gates(const Tensor& x) const { return linear(x, weight_ih, bias_ih); }

Tensor Cell::hidden_gates(const Tensor& h) const { return linear(recurrent(h), weight_hh, bias_hh); }

}  // namespace xgrad::nn
