// Adaptive Computation Time around any cell (see nn/act.hpp).
#include "xgrad/nn/act.hpp"

#include <cmath>

#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {

/// The cell, once the options and the cell are known to be usable.
const std::shared_ptr<Cell>& validated(const std::shared_ptr<Cell>& cell, const ACTOptions& o) {
  if (!cell) fail("ACT: needs a cell to wrap, got none");
  if (cell->input_size() < 2)
    fail("ACT: the wrapped {} takes the input and a first-step flag, so its input_size must be at least 2, got {}",
         cell->type_name(), cell->input_size());
  if (o.max_steps < 1) fail("ACT: max_steps must be at least 1, got {}", o.max_steps);
  if (!(o.epsilon > 0 && o.epsilon < 1)) fail("ACT: epsilon must be in (0, 1), got {}", o.epsilon);
  if (!std::isfinite(o.halting_bias)) fail("ACT: halting_bias must be finite, got {}", o.halting_bias);
  return cell;
}

/// p [B, 1] reshaped to broadcast over a state tensor [B, ...].
Tensor per_example(const Tensor& p, const Tensor& like) {
  Shape shape(like.dim(), 1);
  shape[0] = like.size(0);
  return like.dim() == 2 ? p : reshape(p, shape);
}

}  // namespace

ACT::ACT(std::shared_ptr<Cell> cell, ACTOptions options)
    // braces: the arguments are evaluated in order, so the cell is validated before it is read
    : Cell{validated(cell, options)->input_size() - 1, cell->hidden_size(), cell->state_count() + 1},
      options_(options),
      cell_(register_module("cell", std::move(cell))),
      halt_(this, "halt", cell_->hidden_size(), 1) {
  autograd::NoGradGuard no_grad;
  halt_->bias.copy_(full_like(halt_->bias, options_.halting_bias));
}

std::vector<Shape> ACT::state_shapes() const {
  std::vector<Shape> shapes = cell_->state_shapes();
  shapes.push_back({1});  // the ponder cost
  return shapes;
}

State ACT::initial_state(std::int64_t batch, Dtype dtype) const {
  State state = cell_->initial_state(batch, dtype);
  state.push_back(zeros({batch, 1}, dtype));
  return state;
}

void ACT::set_recurrent_mask(const Tensor& mask) {
  Cell::set_recurrent_mask(mask);
  cell_->set_recurrent_mask(mask);
}

Tensor ACT::ponder_cost(const State& state) const {
  if (state.size() != state_count() || !state.back().defined() || state.back().dim() != 2 || state.back().size(1) != 1)
    fail("ACT: ponder_cost reads an ACT state of {} tensors, the last [B, 1], got {} tensors{}", state_count(),
         state.size(), state.empty() || !state.back().defined() ? "" : fmt::format(", the last {}", state.back().shape()));
  return state.back();
}

State ACT::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const std::int64_t B = x.size(0), N = options_.max_steps;
  const std::size_t k = cell_->state_count();
  const Dtype dtype = x.dtype();
  // the cell's input at the first ponder step and at the others, projected once each
  const Tensor first = cell_->project_input(concat({x, ones({B, 1}, dtype)}, -1));
  Tensor later;

  State s(state.begin(), state.begin() + static_cast<std::ptrdiff_t>(k)), mean(k);
  Tensor running = ones({B, 1}, dtype);  // 1 until the example halts (a constant)
  Tensor total = zeros({B, 1}, dtype);   // h^1 + ... + h^(n-1) of the running examples
  Tensor count = zeros({B, 1}, dtype), remainder = zeros({B, 1}, dtype);  // N and R
  const Tensor threshold = scalar(1 - options_.epsilon, dtype);
  for (std::int64_t n = 1; n <= N; ++n) {
    if (n == 2) later = cell_->project_input(concat({x, zeros({B, 1}, dtype)}, -1));
    s = cell_->step(n == 1 ? first : later, s);               // s^n = S([x, n == 1], s^(n-1))
    const Tensor h = sigmoid(halt_(s[0]));                     // h^n = sigmoid(W_h s^n_0 + b_h)
    // halts now: the sum reaches 1 - epsilon (decided on values), or the last allowed step
    const Tensor halts = n == N ? running : running * ge(total.detach() + h.detach(), threshold);
    const Tensor continues = running - halts;
    const Tensor rest = 1.0 - total;                                       // R, where the example halts now
    const Tensor p = where(halts, rest, where(continues, h, zeros_like(h)));  // p^n: R, h^n or 0
    for (std::size_t i = 0; i < k; ++i) {
      const Tensor term = per_example(p, s[i]) * s[i];  // s = sum_n p^n s^n
      mean[i] = n == 1 ? term : mean[i] + term;
    }
    count = count + running;
    remainder = where(halts, rest, remainder);
    total = where(continues, total + h, total);
    running = continues;
    if (sum(running).item() == 0) break;
  }
  mean.push_back(state[k] + count + remainder);  // the ponder cost so far plus rho = N + R
  return mean;
}

}  // namespace xgrad::nn
