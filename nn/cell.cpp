#include "xgrad/nn/cell.hpp"

#include <algorithm>

#include <fmt/ranges.h>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/init.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

Cell::Cell(std::int64_t input_size, std::int64_t hidden_size, std::size_t state_count)
    : input_size_(input_size), hidden_size_(hidden_size), state_count_(state_count) {
  if (input_size <= 0 || hidden_size <= 0)
    fail("Cell: input_size and hidden_size must be positive, got {} and {}", input_size, hidden_size);
}

Shape batched(std::int64_t batch, const Shape& shape) {
  Shape full{batch};
  full.insert(full.end(), shape.begin(), shape.end());
  return full;
}

std::vector<Shape> Cell::state_shapes() const { return std::vector<Shape>(state_count_, Shape{hidden_size_}); }

State Cell::initial_state(std::int64_t batch, Dtype dtype) const {
  State state;
  for (const Shape& shape : state_shapes()) state.push_back(zeros(batched(batch, shape), dtype));
  return state;
}

Tensor Cell::project_input(const Tensor& x) { return weight_ih.defined() ? input_gates(x) : x; }

State Cell::operator()(const Tensor& x, const State& state) {
  if (x.dim() != 2 || x.size(1) != input_size_)
    fail("{}: a call takes an input [B, {}] and a state, got input {}", type_name(), input_size_, x.shape());
  return step(project_input(x), state);
}

void Cell::check_step(const Tensor& x, const State& state) const {
  const std::int64_t width = weight_ih.defined() ? weight_ih.size(0) : input_size_;
  const std::vector<Shape> shapes = state_shapes();
  bool ok = x.dim() == 2 && x.size(1) == width && state.size() == shapes.size();
  for (std::size_t i = 0; ok && i < state.size(); ++i)
    ok = state[i].defined() && state[i].shape() == batched(x.size(0), shapes[i]);
  if (ok) return;
  std::vector<std::string> got, expected;
  for (const auto& s : state) got.push_back(s.defined() ? to_string(s.shape()) : "undefined");
  for (const auto& s : shapes) expected.push_back(fmt::format("[B, {}]", fmt::join(s, ", ")));
  if (std::all_of(expected.begin(), expected.end(), [&](const auto& e) { return e == expected.front(); }))
    expected.resize(std::min<std::size_t>(expected.size(), 1));  // "2 tensor(s) [B, 4]"
  fail("{}: a step takes the projected input [B, {}] and a state of {} tensor(s) {}, got input {} and state [{}]",
       type_name(), width, shapes.size(), fmt::join(expected, ", "), x.shape(), fmt::join(got, ", "));
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

Tensor Cell::hidden_block(const Tensor& h, std::int64_t first, std::int64_t count) const {
  return linear(recurrent(h), slice(weight_hh, 0, first, first + count),
                bias_hh.defined() ? slice(bias_hh, 0, first, first + count) : Tensor());
}

}  // namespace xgrad::nn
