#pragma once
// The cells xgrad ships. Each step() is written as its equations (see the .cpp files); the
// weights use PyTorch's names and gate order, so RNN, GRU and LSTM weights load from PyTorch.
// Their steps draw no random numbers and write no shared state (thread_safe).
#include "xgrad/nn/cell.hpp"

namespace xgrad::nn {

enum class Nonlinearity { tanh, relu };

/// Elman RNN: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).
class SimpleRNNCell : public Cell {
 public:
  SimpleRNNCell(std::int64_t input_size, std::int64_t hidden_size, Nonlinearity nonlinearity = Nonlinearity::tanh,
                bool bias = true);
  std::string type_name() const override { return "SimpleRNNCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;

 private:
  Nonlinearity nonlinearity_;
};

/// GRU as PyTorch and Keras (reset_after) define it, gates r, z, n:
/// n = tanh(n_x + r * (W_hn h + b_hn)), h' = (1 - z) * n + z * h.
class GRUCell : public Cell {
 public:
  GRUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "GRUCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
};

/// GRU with the reset gate applied before the candidate's matrix (the course notes, Cho et al.):
/// n = tanh(n_x + W_hn (r * h) + b_hn).
class GRUResetBeforeCell : public Cell {
 public:
  GRUResetBeforeCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "GRUResetBeforeCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
};

/// Minimal gated unit (Zhou et al., 2016), one forget gate f in place of the GRU's r and z:
/// f = sigmoid(f_x + W_hf h + b_hf), n = tanh(n_x + W_hn (f * h) + b_hn), h' = (1 - f) * h + f * n.
/// Weights as PyTorch would name them: weight_ih [2H, I] (f, n), weight_hh [2H, H], bias_ih, bias_hh.
class MGUCell : public Cell {
 public:
  MGUCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "MGUCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
};

/// LSTM (gates i, f, g, o as PyTorch): c' = f * c + i * g, h' = o * tanh(c'). State {h, c}.
class LSTMCell : public Cell {
 public:
  LSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "LSTMCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
};

/// Peephole LSTM (Gers & Schmidhuber 2000): the input and forget gates peek at c, the output
/// gate at the new c'. Peephole weights weight_ci, weight_cf, weight_co [H].
class PeepholeLSTMCell : public Cell {
 public:
  PeepholeLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "PeepholeLSTMCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;

  Tensor weight_ci, weight_cf, weight_co;
};

/// Coupled input-forget LSTM: f = 1 - i (gates i, g, o).
class CoupledLSTMCell : public Cell {
 public:
  CoupledLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "CoupledLSTMCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
};

/// The "Gen 1" LSTM of the course notes: one state s, and the output gate gates the previous
/// state inside the candidate: s~ = tanh(U_s x + W_s (o * s) + b), s' = f * s + i * s~.
class Gen1LSTMCell : public Cell {
 public:
  Gen1LSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "Gen1LSTMCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
};

/// Depth-gated LSTM (Yao et al., 2015, arXiv:1508.03790): an LSTM whose cell also takes the cell
/// of the layer beneath through a depth gate d = sigmoid(b_d + W_xd x + w_cd * c + w_ld * c_below),
/// c' = d * c_below + f * c + i * g. weight_ih is [5H, I] (i, f, g, o, d), weight_hh [4H, H].
/// Without a layer beneath (step) it is a plain LSTM.
class DepthGatedLSTMCell : public Cell {
 public:
  DepthGatedLSTMCell(std::int64_t input_size, std::int64_t hidden_size, bool bias = true);
  std::string type_name() const override { return "DepthGatedLSTMCell"; }
  bool thread_safe() const override { return true; }
  State step(const Tensor& x, const State& state) override;
  bool reads_below() const override { return true; }
  State step_stacked(const Tensor& x, const State& state, const State& below) override;

  Tensor weight_cd, weight_ld;
};

}  // namespace xgrad::nn
