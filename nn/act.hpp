#pragma once
// Adaptive Computation Time (Graves 2016, arXiv:1603.08983) around any cell: each time step runs
// the wrapped cell a variable number of "ponder" steps, decided by a learned halting unit, and
// returns the halting-probability-weighted mean of the ponder states. The ponder cost travels in
// the state, so the generic driver masks, stacks and reverses it like any other state tensor.
#include <cstdint>
#include <memory>

#include "xgrad/nn/cell.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

/// The options of ACT.
struct ACTOptions {
  std::int64_t max_steps = 100;  ///< N: ponder steps per time step at most (>= 1)
  double epsilon = 0.01;         ///< a step halts once h^1 + ... + h^n reaches 1 - epsilon; in (0, 1)
  /// b_h at the start. Positive means short pondering early in training (sigmoid(1) = 0.73: two
  /// ponder steps), which the network lengthens where the task needs it.
  double halting_bias = 1.0;
};

/// Adaptive Computation Time around any cell S (Graves 2016). At each time step, for ponder steps
/// n = 1, 2, ... (s^0 = the previous state):
///
/// ```{.unparsed}
///   s^n = S([x, n == 1], s^(n-1))          the cell sees the input and a first-step flag
///   h^n = sigmoid(W_h s^n_0 + b_h)         a halting unit on the cell's output s^n_0
///   N   = min{n : h^1 + ... + h^n >= 1 - epsilon}, at most max_steps
///   R   = 1 - (h^1 + ... + h^(N-1));   p^n = h^n (n < N),  p^N = R
///   s   = sum_n p^n s^n                    every state tensor; the output is s_0
///   rho = N + R                            the ponder cost
/// ```
///
/// The wrapped cell's input_size is ACT's plus one (the flag); ACT's hidden_size and state shapes
/// are the cell's, plus one state tensor [B, 1] last that accumulates rho over the sequence:
/// read it with ponder_cost() and add tau * sum(rho) to the loss. The driver freezes state on
/// padded steps, so padding adds no cost. N is piecewise constant (the comparison is made on
/// values and records nothing); the p^n and R are differentiable. Batch-wise, each example halts
/// on its own: the cell still steps the whole batch until the last example halts, and the ponder
/// states of an example that halted get weight exactly 0. A cell that reads the layer beneath
/// (reads_below) runs its plain step inside ACT. Children: `cell` and `halt` (Linear H -> 1).
class ACT : public Cell {
 public:
  ACT(std::shared_ptr<Cell> cell, ACTOptions options = {});
  std::string type_name() const override { return "ACT"; }
  std::vector<Shape> state_shapes() const override;
  State initial_state(std::int64_t batch, Dtype dtype) const override;
  /// x itself: the cell projects [x, flag] at each ponder step.
  Tensor project_input(const Tensor& x) override { return x; }
  State step(const Tensor& x, const State& state) override;
  /// Keeps the mask and hands it to the wrapped cell (the same mask at every ponder step).
  void set_recurrent_mask(const Tensor& mask) override;

  /// The ponder cost accumulated in `state` (ACT's state: the last tensor), [B, 1]: the sum of
  /// rho = N + R over the steps run so far. For a layer, `ponder_cost(result.final_state(l, d))`
  /// for each layer l and direction d of ACT cells.
  Tensor ponder_cost(const State& state) const;

  Cell& cell() const { return *cell_; }
  const ACTOptions& options() const { return options_; }

 private:
  ACTOptions options_;
  std::shared_ptr<Cell> cell_;
  Holder<Linear> halt_;
};

}  // namespace xgrad::nn
