#pragma once
// Dilated recurrent layers (Chang et al. 2017, "Dilated Recurrent Neural Networks"): layer l's
// step t reads its own state from step t - d_l instead of t - 1, with dilations 1, 2, 4, ... up
// the stack, so L layers reach 2^L - 1 steps back in L hops. Written on the public extension
// API: a Recurrent whose unroll_layer runs the cell over the d interleaved sub-sequences
// (t = j, j + d, j + 2d, ...) as one batch of B * d sequences.
#include <vector>

#include "xgrad/nn/recurrent.hpp"

namespace xgrad::nn {

/// Runs `cell` over x [B, T, I] with dilation d: state_t = step(x_t, state_{t-d}) (state_{t+d}
/// when reversed), every chain starting from `initial`. Lengths, padding side and the state of
/// the layer beneath work as in unroll(); the final state is the one after the last valid step
/// of each sequence (the first, when reversed). unroll() itself for d = 1.
Unrolled dilated_unroll(Cell& cell, const Tensor& x, const State& initial, std::int64_t dilation,
                        const UnrollOptions& options = {});

/// A stack of any cells with dilations (1, 2, 4, ... by default; one per layer). Everything else
/// is Recurrent's: lengths, bidirectional (the backward direction reads t + d), dropout, merge
/// modes, return_sequences, stateful, PyTorch-style names (weight_ih_l0, ...).
class DilatedRNN : public Recurrent {
 public:
  /// `dilations` empty: 1, 2, 4, ... for options.num_layers layers; otherwise one per layer (and
  /// options.num_layers is taken from it).
  DilatedRNN(const CellFactory& make_cell, std::int64_t input_size, std::vector<std::int64_t> dilations = {},
             RecurrentOptions options = {});
  const std::vector<std::int64_t>& dilations() const { return dilations_; }

 protected:
  Unrolled unroll_layer(std::int64_t layer, Cell& cell, const Tensor& x, const State& initial,
                        const UnrollOptions& options) override;

 private:
  std::vector<std::int64_t> dilations_;
};

}  // namespace xgrad::nn
