#pragma once
// Attention: scaled dot-product (the functional core), Luong's multiplicative scores, Bahdanau's
// additive scores and PyTorch's MultiheadAttention, all composed from autograd ops.
//
// Masks: any dtype; a nonzero entry means "masked out" (that key is not attended), as
// PyTorch's boolean masks. A masked score becomes -inf before the softmax, so its weight is
// exactly 0. A PyTorch-style additive float mask of 0 / -inf reads the same way; other additive
// values are not supported. A query whose keys are all masked gets NaN weights, as in PyTorch.
#include <cstdint>
#include <memory>
#include <optional>

#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

struct AttentionResult {
  Tensor context;  ///< [..., Tq, Dv]: the weighted sum of the values
  Tensor weights;  ///< [..., Tq, Tk]: the weights applied to the values (rows sum to 1 without dropout)
};

/// weights = softmax(scale * q k^T, masked -> -inf) over keys; context = weights v.
/// query [..., Tq, D], key [..., Tk, D], value [..., Tk, Dv] (the same leading axes, e.g. [B] or
/// [B, heads]); mask broadcastable to [..., Tq, Tk]; scale defaults to 1/sqrt(D); `causal` masks
/// key j > query i (top-left aligned, as PyTorch). dropout_p > 0 drops weights (after the
/// softmax, before v; the returned weights are the dropped ones, as PyTorch returns them).
AttentionResult scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                             const Tensor& mask = {}, std::optional<double> scale = std::nullopt,
                                             bool causal = false, double dropout_p = 0);

/// Luong et al., 2015, scores: dot q.k, scaled_dot q.k / sqrt(D), general q W k^T, concat
/// v^T tanh(W [q; k]); weights = softmax(score) over keys, context = weights v. Parameters:
/// "weight" [D, D] (general), or "weight" [units, 2D] (the columns for q, then for k) and "v"
/// [units] (concat; units defaults to D), uniform in +-1/sqrt(fan_in) as Linear's.
class LuongAttention : public Module {
 public:
  enum class Score { dot, scaled_dot, general, concat };

  /// units: the size of concat's hidden layer (0: dim); the other scores take none.
  explicit LuongAttention(std::int64_t dim, Score score = Score::dot, std::int64_t units = 0);
  std::string type_name() const override { return "LuongAttention"; }
  /// query [B, Tq, D], keys [B, Tk, D], values [B, Tk, Dv], key_padding_mask [B, Tk] (nonzero =
  /// padding) -> context [B, Tq, Dv], weights [B, Tq, Tk].
  AttentionResult forward(const Tensor& query, const Tensor& keys, const Tensor& values,
                          const Tensor& key_padding_mask = {});

  Score score;
  std::int64_t dim;
  std::int64_t units;  ///< concat's hidden size; 0 for the other scores
  Tensor weight;       ///< [D, D] for Score::general, [units, 2D] for Score::concat, else undefined
  Tensor v;            ///< [units], Score::concat only
};

/// Bahdanau et al. 2015, additive scores: score(q, k) = v^T tanh(W_q q + W_k k); weights =
/// softmax(score) over keys, context = weights values. Submodules "query_proj" (W_q [units, Dq])
/// and "key_proj" (W_k [units, Dk]), both without bias as in the paper (and TensorFlow Addons'
/// BahdanauAttention); parameter "v" [units].
class BahdanauAttention : public Module {
 public:
  BahdanauAttention(std::int64_t query_dim, std::int64_t key_dim, std::int64_t units);
  std::string type_name() const override { return "BahdanauAttention"; }
  /// query [B, Tq, Dq] (decoder states; Tq may be 1), keys [B, Tk, Dk], values [B, Tk, Dv],
  /// key_padding_mask [B, Tk] (nonzero = padding) -> context [B, Tq, Dv], weights [B, Tq, Tk].
  AttentionResult forward(const Tensor& query, const Tensor& keys, const Tensor& values,
                          const Tensor& key_padding_mask = {});

  std::shared_ptr<Linear> query_proj, key_proj;
  Tensor v;
};

/// PyTorch's nn.MultiheadAttention (batch_first=True): q, k, v = in-projections, split into
/// heads; head_i = softmax(q_i k_i^T / sqrt(E / heads), masks) v_i; out = out_proj(concat(heads)).
/// Parameters as PyTorch's, so its state_dict loads: "in_proj_weight" [3E, E] (rows q, k, v;
/// Xavier-uniform) when keys and values have E features, else (kdim or vdim differs from E)
/// "q_proj_weight" [E, E], "k_proj_weight" [E, kdim] and "v_proj_weight" [E, vdim] (each
/// Xavier-uniform); "in_proj_bias" [3E] (zeros); submodule "out_proj" Linear(E, E) (bias zeros).
/// Not supported: add_bias_kv, add_zero_attn.
class MultiheadAttention : public Module {
 public:
  /// kdim, vdim: the features of key and value (0: embed_dim, as PyTorch's None).
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, double dropout = 0, bool bias = true,
                     std::int64_t kdim = 0, std::int64_t vdim = 0);
  std::string type_name() const override { return "MultiheadAttention"; }
  /// query [B, Tq, E], key [B, Tk, kdim] and value [B, Tk, vdim]; key_padding_mask [B, Tk] (nonzero
  /// = padding); attn_mask [Tq, Tk] or [B * heads, Tq, Tk] (nonzero = masked); is_causal masks key
  /// j > query i (on its own: unlike PyTorch it needs no attn_mask) -> context [B, Tq, E] and weights
  /// [B, Tq, Tk] averaged over heads, or [B, heads, Tq, Tk]. Attention dropout in training only.
  AttentionResult forward(const Tensor& query, const Tensor& key, const Tensor& value,
                          const Tensor& key_padding_mask = {}, const Tensor& attn_mask = {}, bool is_causal = false,
                          bool average_attn_weights = true);

  std::int64_t embed_dim, num_heads, head_dim, kdim, vdim;
  double dropout;
  Tensor in_proj_weight;                              ///< [3E, E] when kdim == vdim == E, else undefined
  Tensor q_proj_weight, k_proj_weight, v_proj_weight;  ///< defined when kdim or vdim differs from E
  Tensor in_proj_bias;
  std::shared_ptr<Linear> out_proj;
};

}  // namespace xgrad::nn
