#pragma once
// The one recurrent driver. It runs any Cell over a batch-first sequence [B, T, F] and gives
// every cell alike: return_sequences, final states, initial state, go_backwards, masking of
// padded steps by lengths (pre- or post-padding, no sorting), input and recurrent (variational)
// dropout, stacking with inter-layer dropout, bidirectionality with merge modes, and carried
// state for truncated BPTT. RNN, GRU and LSTM are the familiar PyTorch layers on top of it.
#include <functional>
#include <memory>

#include "xgrad/nn/cell.hpp"
#include "xgrad/nn/cells.hpp"

namespace xgrad::nn {

/// Where padding sits in a batch of sequences of different lengths (core/shape.hpp).
using xgrad::PadSide;
/// How a bidirectional layer joins its two directions (Keras' merge_mode).
enum class Merge { concat, sum, mul, ave };

/// Options of one unrolling of a cell.
struct UnrollOptions {
  bool reverse = false;  ///< run from the last step to the first
  Tensor lengths;        ///< i64 [B]: valid steps per sequence (undefined: all valid)
  PadSide padding = PadSide::post;
  std::vector<State> below;  ///< the new state of the layer beneath at each step (stacked cells)
  /// k > 0: activation checkpointing in pieces of k steps (autograd::checkpoint): only the states
  /// between pieces are kept, each piece's graph is recomputed during backward, and the
  /// gradients are bit-identical. Memory falls from O(T) graphs to O(T) states plus one piece.
  std::int64_t checkpoint_every = 0;
  /// Whether Unrolled lists every step's output and state. A caller that needs neither (the last
  /// layer of a many-to-one model; a layer whose next layer does not read its states) saves their
  /// memory: with checkpointing, a piece then keeps only its last state.
  bool keep_outputs = true, keep_states = true;
};

/// What one unrolling returns: the output h and the state after every step (in time order)
/// and the final state. At padded steps the state is carried unchanged and the output is 0.
struct Unrolled {
  std::vector<Tensor> outputs;  ///< [B, H] per time step, in time order (empty unless keep_outputs)
  std::vector<State> states;    ///< the state after each time step, in time order (empty unless keep_states)
  State final_state;
};

/// Runs a cell over x [B, T, I] from `initial`: the loop every recurrent layer uses.
Unrolled unroll(Cell& cell, const Tensor& x, const State& initial, const UnrollOptions& options = {});

/// Options of a recurrent layer: Keras' recurrent-layer options and PyTorch's stacking.
/// "dropout" means two things in the two frameworks; xgrad's names say which: input_dropout
/// (Keras' dropout) and layer_dropout (PyTorch's dropout).
struct RecurrentOptions {
  std::int64_t num_layers = 1;
  bool bidirectional = false;
  Merge merge = Merge::concat;     ///< joins the directions of the last layer's output
  bool return_sequences = true;    ///< the output at every step, or the final one
  bool go_backwards = false;       ///< process (and return) the sequence reversed, as Keras
  double dropout = 0;              ///< Keras' name of input_dropout, kept for Keras code: set one of the two
  double input_dropout = 0;        ///< on the input, one mask per sequence (Keras' dropout)
  double recurrent_dropout = 0;    ///< variational dropout of h into the recurrent weights
  double layer_dropout = 0;        ///< between stacked layers (PyTorch's dropout)
  bool stateful = false;           ///< each call starts from the last call's final state, detached
  std::int64_t checkpoint_every = 0;  ///< k > 0: recompute each piece of k steps in backward (UnrollOptions)
};

/// What a recurrent layer returns. The final states are indexed by layer and direction:
/// `result.h()` is the last layer's final h, `result.c(0, 1)` the first layer's backward c.
struct RecurrentResult {
  Tensor output;  ///< [B, T, H'] with return_sequences, else [B, H']; H' = 2H for concat
  std::vector<State> states;  ///< the final state of each layer and direction (layer * D + direction)
  std::int64_t directions = 1;

  /// The final state of `layer` (negative counts from the top: -1 is the last layer) and
  /// `direction` (0 forward, 1 backward).
  const State& final_state(std::int64_t layer = -1, std::int64_t direction = 0) const;
  Tensor h(std::int64_t layer = -1, std::int64_t direction = 0) const;  ///< final_state(...)[0]
  Tensor c(std::int64_t layer = -1, std::int64_t direction = 0) const;  ///< final_state(...)[1] (LSTMs)
};

/// Builds the cell of a layer: (layer index, its input size) -> cell.
using CellFactory = std::function<std::shared_ptr<Cell>(std::int64_t layer, std::int64_t input_size)>;

/// A recurrent layer over any cell. Its cells are its children, `cell_l0`, `cell_l0_reverse`,
/// `cell_l1`, ... (so train/eval, to, summary and every walk reach whatever a cell registers),
/// and their tensors carry PyTorch's flat names: a cell's tensor `path` appears in the layer as
/// `path` with the layer's suffix on its last component: `weight_ih_l0`, `weight_hh_l1_reverse`,
/// and for a cell's own submodule `proj.weight_l0`.
class Recurrent : public UnaryModule {
 public:
  Recurrent(const CellFactory& make_cell, std::int64_t input_size, RecurrentOptions options = {});
  std::string type_name() const override { return type_name_; }

  /// The full run: lengths (i64 [B]) mask padded steps; `initial` gives one state per layer
  /// and direction (empty: zeros, or the carried state when stateful).
  RecurrentResult run(const Tensor& x, const Tensor& lengths = {}, const std::vector<State>& initial = {},
                      PadSide padding = PadSide::post);
  Tensor forward(const Tensor& x) override { return run(x).output; }

  /// Forgets the carried state of a stateful layer.
  void reset_states() { carried_.clear(); }
  Cell& cell(std::int64_t layer, std::int64_t direction = 0) {
    if (layer < 0 || layer >= options_.num_layers || direction < 0 || direction >= directions())
      fail("{}: no cell at layer {}, direction {} ({} layers, {} directions)", type_name_, layer, direction,
           options_.num_layers, directions());
    return *cells_[layer * directions() + direction];
  }
  std::int64_t directions() const { return options_.bidirectional ? 2 : 1; }
  const RecurrentOptions& options() const { return options_; }

  /// "weight_ih" of child "cell_l0_reverse" is "weight_ih_l0_reverse" (PyTorch's names).
  std::string tensor_name(const std::string& child, const std::string& path) const override;

 protected:
  /// Runs the cell of one layer over that layer's input: unroll() by default. A layer that runs
  /// its cells differently (a dilated RNN) overrides it and keeps everything else.
  virtual Unrolled unroll_layer(std::int64_t layer, Cell& cell, const Tensor& x, const State& initial,
                                const UnrollOptions& options);

  std::string type_name_ = "Recurrent";

 private:
  RecurrentOptions options_;
  std::int64_t input_size_;
  std::vector<std::shared_ptr<Cell>> cells_;
  std::vector<State> carried_;
};

/// The options of RNN, GRU and LSTM: PyTorch's (num_layers, bias, dropout, bidirectional), then
/// Keras' recurrent-layer options. `dropout` is PyTorch's name of layer_dropout (between stacked
/// layers); set one of the two.
struct RNNOptions {
  std::int64_t num_layers = 1;
  bool bias = true;
  double dropout = 0;  ///< PyTorch's name of layer_dropout
  bool bidirectional = false;
  Merge merge = Merge::concat;
  bool return_sequences = true;
  bool go_backwards = false;
  double input_dropout = 0;      ///< on the input, one mask per sequence (Keras' dropout)
  double recurrent_dropout = 0;  ///< variational dropout of h into the recurrent weights
  double layer_dropout = 0;      ///< between stacked layers
  bool stateful = false;
  std::int64_t checkpoint_every = 0;  ///< k > 0: activation checkpointing every k steps (RecurrentOptions)
};

/// Elman RNN layer (PyTorch's nn.RNN, batch_first).
class RNN : public Recurrent {
 public:
  RNN(std::int64_t input_size, std::int64_t hidden_size, RNNOptions options = {},
      Nonlinearity nonlinearity = Nonlinearity::tanh);
};

/// GRU layer (PyTorch's nn.GRU, batch_first).
class GRU : public Recurrent {
 public:
  GRU(std::int64_t input_size, std::int64_t hidden_size, RNNOptions options = {});
};

/// LSTM layer (PyTorch's nn.LSTM, batch_first). States are {h, c}.
class LSTM : public Recurrent {
 public:
  LSTM(std::int64_t input_size, std::int64_t hidden_size, RNNOptions options = {});
};

/// A stack of depth-gated LSTM layers: the first a plain LSTM, each layer above reading the
/// cell state of the layer beneath.
class DepthGatedLSTM : public Recurrent {
 public:
  DepthGatedLSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options = {});
};

/// Stacks a state component of every layer and direction: PyTorch's h_n / c_n
/// [num_layers * D, B, H] (component 0 = h, 1 = c).
Tensor stack_states(const std::vector<State>& states, std::size_t component = 0);

}  // namespace xgrad::nn
