#pragma once
// Neural Turing Machine (Graves, Wayne & Danihelka 2014, arXiv:1410.5401), written on the public
// extension API: an LSTM controller with read heads and one write head over a memory M of N
// words of width W, kept per sequence in the recurrent state. The addressing is a handful of
// free functions in nn::ntm, one equation each, so that tests can hold them against hand-written
// loops and other memory cells can reuse them.
//
// Shapes: memory M [B, N, W]; everything a head produces carries a head axis R after the batch:
// keys [B, R, W], per-head scalars (beta, g, gamma) [B, R, 1], shift distributions [B, R, 2S+1]
// over the shifts -S..S, weightings [B, R, N].
#include <cstdint>
#include <vector>

#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/recurrent.hpp"

namespace xgrad::nn {

/// \namespace xgrad::nn::ntm
/// The NTM's addressing, one equation per function, for NTMCell and other memory cells.
namespace ntm {

/// Content addressing: w^c_i = softmax_i(beta K(k, M_i)), K the cosine similarity (eps 1e-8, so
/// a zero memory row or key has K = 0 and a finite gradient). beta >= 0 sets how sharp.
Tensor content_addressing(const Tensor& memory, const Tensor& key, const Tensor& beta);
/// Interpolation: w^g = g w^c + (1 - g) w_prev; g = 0 keeps the last weighting (location only).
Tensor interpolate(const Tensor& content, const Tensor& previous, const Tensor& gate);
/// Circular convolution with the shift distribution s over -S..S:
/// w~_i = sum_j w^g_j s_((i - j) mod N) = sum_k s_k w^g_((i - k) mod N).
Tensor shift(const Tensor& w, const Tensor& s);
/// Sharpening: w_i = (w~_i + eps)^gamma / sum_j (w~_j + eps)^gamma, gamma >= 1. eps keeps the power
/// of an exact zero (weights that underflowed) differentiable. Computed as softmax(gamma log(w~ + eps)),
/// which stays normalised where w~^gamma underflows (float32, large gamma). w~ is a weighting, so
/// non-negative; a negative entry (a state that is not one) counts as 0.
Tensor sharpen(const Tensor& w, const Tensor& gamma, double eps = 1e-16);
/// The whole addressing of one step: content, interpolation with the previous weighting, shift,
/// sharpening.
Tensor address(const Tensor& memory, const Tensor& previous, const Tensor& key, const Tensor& beta,
               const Tensor& gate, const Tensor& s, const Tensor& gamma);
/// Reading: r = w^T M, per head r_j = sum_i w_i M_ij: w [B, R, N] -> r [B, R, W].
Tensor read(const Tensor& memory, const Tensor& w);
/// Writing with one head: M' = M * (1 - w e^T) + w a^T (erase, then add): w [B, N], e, a [B, W].
Tensor write(const Tensor& memory, const Tensor& w, const Tensor& erase, const Tensor& add);

}  // namespace ntm

/// The sizes of a Neural Turing Machine (defaults: the copy task of Graves et al.).
struct NTMOptions {
  std::int64_t memory_size = 128;      ///< N, the number of memory locations
  std::int64_t word_size = 20;         ///< W, the width of a memory word
  std::int64_t read_heads = 1;         ///< R (there is one write head)
  std::int64_t controller_size = 100;  ///< the LSTM controller's hidden size C
  std::int64_t shift_range = 1;        ///< S: the heads shift by -S..S locations per step
  double memory_init = 1e-6;           ///< every memory entry at the start of a sequence
};

/// An NTM step (Graves et al., 2014) with an LSTM controller:
///
/// ```{.unparsed}
///   (h, c) = LSTM([x, r_{t-1}], (h, c))                    the controller reads the last reads
///   per head: k, beta, g, s, gamma (+ e, a for the write head) = Linear(h)
///     k as is; beta = softplus(.) >= 0 (0 makes w^c uniform: location-only addressing, which
///     1 + softplus would forbid); g = sigmoid(.); s = softmax(.) over -S..S;
///     gamma = 1 + softplus(.) >= 1; e = sigmoid(.); a = tanh(.) (memory stays on the keys' scale)
///   w^w = address(M, w^w_prev, ...);  M' = M * (1 - w^w e^T) + w^w a^T   (write first, as the DNC:
///   w^r = address(M', w^r_prev, ...); r = w^r M'                          reads see this step's write)
///   y = Linear([h, r])                                     the output sees this step's reads
/// ```
///
/// State, by Slot: {y [B, H], h [B, C], c [B, C], M [B, N, W], r [B, R*W], w^r [B, R, N], w^w [B, N]};
/// hidden_size() is the output size H. A sequence starts with M = memory_init everywhere, both
/// weightings one-hot on location 0 and r = w^r M. Children: `controller` (LSTMCell),
/// `read_heads` (Linear C -> R (W + 2S + 4): the R heads' rows one after another), `write_head`
/// (Linear C -> 3W + 2S + 4) and `output` (Linear C + R W -> H).
class NTMCell : public Cell {
 public:
  enum Slot : std::size_t { output, controller_h, controller_c, memory, reads, read_weightings, write_weighting };

  NTMCell(std::int64_t input_size, std::int64_t output_size, NTMOptions options = {});
  std::string type_name() const override { return "NTMCell"; }
  std::vector<Shape> state_shapes() const override;
  State initial_state(std::int64_t batch, Dtype dtype) const override;
  State step(const Tensor& x, const State& state) override;
  /// Keeps the mask [B, H] and hands the controller its columns j mod H as its mask [B, C]: the
  /// driver draws one mask of the output's width, the controller's h is what enters a recurrent
  /// weight. (Controller units j and j + H share a draw when C > H.)
  void set_recurrent_mask(const Tensor& mask) override;

  const NTMOptions& options() const { return options_; }
  LSTMCell& controller() const { return *controller_; }

 private:
  NTMOptions options_;
  Holder<LSTMCell> controller_;
  Holder<Linear> read_heads_, write_head_, output_;
};

/// The read and write weightings of one NTM cell over a sequence, in time order.
struct NTMWeightings {
  Tensor read;   ///< [B, T, R, N]
  Tensor write;  ///< [B, T, N]
};

/// What NTM::trace returns: run()'s result and the weightings of every cell.
struct NTMTrace {
  RecurrentResult result;
  std::vector<NTMWeightings> weightings;  ///< one per layer and direction (layer * D + direction)
};

/// A recurrent layer of NTM cells, used like an LSTM: `ntm.run(x)` on x [B, T, I] gives the
/// outputs [B, T, H]; lengths, stacking, bidirectional, dropout and stateful runs as any Recurrent.
/// Tensors carry the layer's names: `controller.weight_ih_l0`, `read_heads.weight_l0_reverse`, ...
class NTM : public Recurrent {
 public:
  NTM(std::int64_t input_size, std::int64_t output_size, NTMOptions options = {}, RecurrentOptions layer = {});
  NTMCell& ntm_cell(std::int64_t layer = 0, std::int64_t direction = 0);
  /// run() that also returns where every head read and wrote at each step (for pictures).
  NTMTrace trace(const Tensor& x, const Tensor& lengths = {}, const std::vector<State>& initial = {},
                 PadSide padding = PadSide::post);

 protected:
  Unrolled unroll_layer(std::int64_t layer, Cell& cell, const Tensor& x, const State& initial,
                        const UnrollOptions& options) override;

 private:
  std::vector<NTMWeightings>* recording_ = nullptr;  // set while trace() runs
};

}  // namespace xgrad::nn
