#pragma once
// Recurrent cells. A cell is a small module with a step function (state in, state out) that
// reads like its equations; the generic driver (nn/recurrent.hpp) runs any cell over a
// sequence and supplies masking, dropout, stacking, bidirectionality and carried state.
#include <vector>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// A recurrent state: {h} or {h, c}, or whatever a cell keeps; each tensor is [B, ...] and the
/// first, [B, H], is the step's output.
using State = std::vector<Tensor>;

/// [batch, shape...]: a state tensor's full shape from its per-example shape.
Shape batched(std::int64_t batch, const Shape& shape);

/// The base of every recurrent cell: a module with a step function (state in, state out) that
/// reads like its equations. Recurrent runs any cell over a sequence.
class Cell : public Module {
 public:
  Cell(std::int64_t input_size, std::int64_t hidden_size, std::size_t state_count = 1);
  std::string type_name() const override { return "Cell"; }
  std::int64_t input_size() const { return input_size_; }
  std::int64_t hidden_size() const { return hidden_size_; }
  /// How many tensors the state holds (1: h; 2: h and c).
  std::size_t state_count() const { return state_count_; }
  /// The shape of each state tensor for one example (the batch axis left out): [H] for every
  /// tensor by default. A cell with a larger state (an NTM's memory [N, W]) says so here.
  virtual std::vector<Shape> state_shapes() const;
  /// The state a sequence starts from when none is given: zeros of [batch, ...] for each state
  /// tensor by default (an NTM starts its memory and weightings elsewhere).
  virtual State initial_state(std::int64_t batch, Dtype dtype) const;

  /// The part of a step that depends on the input alone, for many steps at once (one large GEMM
  /// instead of one per step): x [..., I] -> [..., G], each row from its own input alone (the
  /// driver calls it on chunks of 32 steps, steps first: [k, B, I] -> [k, B, G]; a decoder on one
  /// step's [B, I]). By default the cell's input_gates (x W_ih^T + b_ih) when it registered gate
  /// weights, else x itself.
  virtual Tensor project_input(const Tensor& x);
  /// One step: the projected input at time t [B, G] and the previous state -> the new state.
  virtual State step(const Tensor& x, const State& state) = 0;
  /// One step from a raw input x [B, I] (a decoder's step): step(project_input(x), state).
  State operator()(const Tensor& x, const State& state);
  /// Whether step() and project_input() may run on another thread beside other cells: they draw
  /// no random numbers and write nothing that another module reads. A bidirectional layer then
  /// runs its two directions' forward side by side (autograd::parallel_branches); its backward
  /// runs them side by side for every cell. False unless a cell says so (the shipped cells do).
  virtual bool thread_safe() const { return false; }
  /// True for cells that also read the new state of the layer beneath them in a stack.
  virtual bool reads_below() const { return false; }
  /// A step that sees `below`, the same step's new state of the layer beneath (depth-gated
  /// LSTM). Cells that do not read it just step.
  virtual State step_stacked(const Tensor& x, const State& state, const State& below) {
    (void)below;
    return step(x, state);
  }

  /// Sets the variational recurrent-dropout mask [B, H] (an undefined tensor clears it). A cell
  /// that wraps other cells passes it on to them.
  virtual void set_recurrent_mask(const Tensor& mask) { recurrent_mask_ = mask; }
  const Tensor& recurrent_mask() const { return recurrent_mask_; }

 protected:
  /// h where it enters a recurrent weight matrix: with the recurrent-dropout mask applied
  /// while the driver has set one. Cells use it for every h that multiplies a W_hh.
  Tensor recurrent(const Tensor& h) const;

  /// Throws naming the cell unless x is the projected input of a step, [B, G] (G = the rows of
  /// weight_ih, or input_size without it), and the state holds state_count() tensors of
  /// [B, state_shapes()...].
  /// Cells call it first in step(), so that a wrong state fails clearly instead of broadcasting.
  void check_step(const Tensor& x, const State& state) const;
  /// The usual parameters of a gated cell, named as PyTorch names them: weight_ih
  /// [input_gates * H, I], weight_hh [hidden_gates * H, H], bias_ih, bias_hh; uniform in
  /// +-1/sqrt(H) like PyTorch. Pass hidden_gates 0 for none; bias false for none.
  void register_gate_weights(std::int64_t input_gates, std::int64_t hidden_gates, bool bias);
  /// x W_ih^T + b_ih, over any leading axes (the projection of project_input).
  Tensor input_gates(const Tensor& x) const;
  /// recurrent(h) W_hh^T + b_hh.
  Tensor hidden_gates(const Tensor& h) const;
  /// recurrent(h) W^T + b for the rows [first, first + count) of W_hh and b_hh: one block of the
  /// recurrent gates, for cells that apply W_hh in parts (GRU reset-before, MGU, Gen 1 LSTM).
  Tensor hidden_block(const Tensor& h, std::int64_t first, std::int64_t count) const;
  /// A fresh parameter of `shape`, uniform in +-1/sqrt(H).
  Tensor cell_parameter(const std::string& name, const Shape& shape);

  Tensor weight_ih, weight_hh, bias_ih, bias_hh;

 private:
  std::int64_t input_size_, hidden_size_;
  std::size_t state_count_;
  Tensor recurrent_mask_;
};

}  // namespace xgrad::nn
