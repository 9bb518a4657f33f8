#include "xgrad/nn/attention.hpp"

#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/init.hpp"

namespace xgrad::nn {

namespace {

/// "query [2, 3, 4], key [2, 5, 4], value [2, 5, 6]": the inputs, for error messages (the key and
/// value named as the layer's arguments are).
std::string shapes_of(const Tensor& query, const Tensor& key, const Tensor& value, const char* key_name = "key",
                      const char* value_name = "value") {
  return fmt::format("query {}, {} {}, {} {}", query.shape(), key_name, key.shape(), value_name, value.shape());
}

/// Throws naming the op unless query, key and value have one floating dtype, that of the layer's
/// parameters when `parameter` is defined.
void check_dtypes(const char* op, const Tensor& query, const Tensor& key, const Tensor& value,
                  const Tensor& parameter = {}, const char* key_name = "key", const char* value_name = "value") {
  const Dtype d = parameter.defined() ? parameter.dtype() : query.dtype();
  if (is_floating(d) && query.dtype() == d && key.dtype() == d && value.dtype() == d) return;
  fail("{}: query, {} and {} must be floating and of one dtype{}, got query {}, {} {}, {} {} ({})", op, key_name,
       value_name, parameter.defined() ? fmt::format(" (the parameters are {})", dtype_name(d)) : "",
       dtype_name(query.dtype()), key_name, dtype_name(key.dtype()), value_name, dtype_name(value.dtype()),
       shapes_of(query, key, value, key_name, value_name));
}

/// True when query [..., Tq, Dq], key [..., Tk, Dk] and value [..., Tk, Dv] have one rank (`rank`, or
/// any rank >= 2 when 0), the same leading axes, keys and values of one length, and the feature
/// sizes asked for (-1: any).
bool inputs_fit(const Tensor& query, const Tensor& key, const Tensor& value, std::int64_t rank,
                std::int64_t query_dim, std::int64_t key_dim, std::int64_t value_dim) {
  const std::int64_t r = query.dim();
  if (r < 2 || (rank != 0 && r != rank) || key.dim() != r || value.dim() != r) return false;
  for (std::int64_t axis = 0; axis < r - 2; ++axis)
    if (key.size(axis) != query.size(axis) || value.size(axis) != query.size(axis)) return false;
  auto fits = [](std::int64_t size, std::int64_t wanted) { return wanted == -1 || size == wanted; };
  return key.size(-2) == value.size(-2) && fits(query.size(-1), query_dim) && fits(key.size(-1), key_dim) &&
         fits(value.size(-1), value_dim);
}

/// A [B, Tk] key padding mask (checked against keys [B, Tk, ...]) reshaped to [B, 1, ..., 1, Tk] of
/// `scores_rank` axes, so that it broadcasts over the queries (and heads). Undefined stays undefined.
Tensor key_padding_for_scores(const char* op, const Tensor& mask, const Tensor& keys, std::size_t scores_rank) {
  if (!mask.defined()) return mask;
  const Shape expected{keys.size(0), keys.size(1)};
  if (mask.shape() != expected)
    fail("{}: key_padding_mask {} must be [B, Tk] = {} for keys {}", op, mask.shape(), expected, keys.shape());
  Shape shape(scores_rank, 1);
  shape.front() = expected[0];
  shape.back() = expected[1];
  return reshape(mask, shape);
}

/// [Tq, Tk]: 1 where key j comes after query i (j > i), the future a causal query must not see.
Tensor causal_mask(std::int64_t query_length, std::int64_t key_length) {
  Tensor key_index = reshape(arange(static_cast<double>(key_length), i64), {1, key_length});
  Tensor query_index = reshape(arange(static_cast<double>(query_length), i64), {query_length, 1});
  return gt(key_index, query_index);
}

/// weights = softmax(scores with every mask's nonzero entries at -inf) over the last axis, then
/// dropout(dropout_p); context = weights @ values. Masks are undefined or broadcast to the scores.
/// A query whose every key is masked gets zero weights and a zero context, with zero gradients
/// (PyTorch gives NaN there): its scores are replaced, not multiplied, so nothing non-finite
/// enters the graph.
AttentionResult attend(Tensor scores, const Tensor& values, const std::vector<Tensor>& masks, double dropout_p) {
  const Tensor minus_infinity = scalar(-std::numeric_limits<double>::infinity(), scores.dtype());
  bool masked = false;
  for (const Tensor& mask : masks)
    if (mask.defined()) scores = where(mask, minus_infinity, scores), masked = true;
  Tensor no_key;  // [..., Tq, 1]: 1 where a query has no valid key
  if (masked && scores.numel() > 0) {
    autograd::NoGradGuard no_grad;
    no_key = eq(max(scores.detach(), -1, true).values, minus_infinity);
  }
  Tensor weights;
  if (no_key.defined() && max(no_key).item() > 0) {
    const Tensor zero = scalar(0, scores.dtype());
    weights = where(no_key, zero, softmax(where(no_key, zero, scores), -1));
  } else {
    weights = softmax(scores, -1);
  }
  weights = dropout(weights, dropout_p, dropout_p > 0);
  return {matmul(weights, values), weights};
}

/// attend() with scores = (scale q) k^T, scaling the smaller query side as PyTorch does.
AttentionResult dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                      const std::vector<Tensor>& masks, double scale, double dropout_p) {
  Tensor scaled_query = scale == 1 ? query : query * scale;
  return attend(matmul(scaled_query, key, false, true), value, masks, dropout_p);
}

/// q, k, v = the input projections x W_i^T + b_i, the rows of weight [3E, E] and bias [3E] taken in
/// thirds (self-attention takes them in one GEMM instead: MultiheadAttention::forward).
std::array<Tensor, 3> in_projections(const Tensor& query, const Tensor& key, const Tensor& value, const Tensor& weight,
                                     const Tensor& bias) {
  auto w = chunk(weight, 3, 0);
  auto b = bias.defined() ? chunk(bias, 3, 0) : std::vector<Tensor>(3);
  return {linear(query, w[0], b[0]), linear(key, w[1], b[1]), linear(value, w[2], b[2])};
}

}  // namespace

// --- scaled dot-product attention -------------------------------------------------------------

AttentionResult scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                             const Tensor& mask, std::optional<double> scale, bool causal,
                                             double dropout_p) {
  const std::int64_t d = query.dim() >= 2 ? query.size(-1) : -1;
  if (!inputs_fit(query, key, value, 0, d, d, -1))
    fail("scaled_dot_product_attention: expected query [..., Tq, D], key [..., Tk, D] and value [..., Tk, Dv] "
         "with the same leading axes, got {}",
         shapes_of(query, key, value));
  check_dtypes("scaled_dot_product_attention", query, key, value);
  Shape scores = query.shape();
  scores.back() = key.size(-2);
  if (mask.defined() && (!can_broadcast(mask.shape(), scores) ||
                         broadcast_shapes(mask.shape(), scores, "scaled_dot_product_attention") != scores))
    fail("scaled_dot_product_attention: mask {} does not broadcast to the scores {} of {}", mask.shape(), scores,
         shapes_of(query, key, value));
  const Tensor future = causal ? causal_mask(query.size(-2), key.size(-2)) : Tensor{};
  return dot_product_attention(query, key, value, {mask, future},
                               scale ? *scale : 1.0 / std::sqrt(static_cast<double>(d)), dropout_p);
}

// --- Luong ----------------------------------------------------------------------------------------

LuongAttention::LuongAttention(std::int64_t dim, Score score, std::int64_t units)
    : score(score), dim(dim), units(0) {
  if (dim <= 0) fail("LuongAttention: dim must be positive, got {}", dim);
  if (units < 0) fail("LuongAttention: units must be positive (0: dim {}), got {}", dim, units);
  if (units != 0 && score != Score::concat)
    fail("LuongAttention: units {} applies to the concat score only (it has a hidden layer)", units);
  if (score == Score::general) weight = register_parameter("weight", init::fan_in_uniform({dim, dim}, dim));
  if (score == Score::concat) {
    this->units = units == 0 ? dim : units;
    const std::int64_t both = checked_mul(dim, 2, "LuongAttention");
    weight = register_parameter("weight", init::fan_in_uniform({this->units, both}, both));
    v = register_parameter("v", init::fan_in_uniform({this->units}, this->units));
  }
}

AttentionResult LuongAttention::forward(const Tensor& query, const Tensor& keys, const Tensor& values,
                                        const Tensor& key_padding_mask) {
  if (!inputs_fit(query, keys, values, 3, dim, dim, -1))
    fail("LuongAttention: expected query [B, Tq, {}], keys [B, Tk, {}] and values [B, Tk, Dv], got {}", dim, dim,
         shapes_of(query, keys, values, "keys", "values"));
  Tensor padding = key_padding_for_scores("LuongAttention", key_padding_mask, keys, 3);
  check_dtypes("LuongAttention", query, keys, values, weight, "keys", "values");
  if (score == Score::concat) {
    // v^T tanh(W [q; k]) = v^T tanh(W_q q + W_k k), W = [W_q | W_k]: each query and key projected
    // once, then every pair added (as Bahdanau's scores)
    Tensor projected_query = unsqueeze(linear(query, slice(weight, 1, 0, dim)), 2);      // [B, Tq, 1, U]
    Tensor projected_keys = unsqueeze(linear(keys, slice(weight, 1, dim, 2 * dim)), 1);  // [B, 1, Tk, U]
    Tensor scores = matmul(tanh(projected_query + projected_keys), v);                   // [B, Tq, Tk]
    AttentionResult result = attend(scores, values, {padding}, 0);
    traced(result.context);
    return result;
  }
  // general: q W k^T = (q W) k^T, transforming the (often single) query rather than every key
  Tensor transformed_query = score == Score::general ? matmul(query, weight) : query;
  const double scale = score == Score::scaled_dot ? 1.0 / std::sqrt(static_cast<double>(dim)) : 1.0;
  AttentionResult result = dot_product_attention(transformed_query, keys, values, {padding}, scale, 0);
  traced(result.context);
  return result;
}

// --- Bahdanau -------------------------------------------------------------------------------------

BahdanauAttention::BahdanauAttention(std::int64_t query_dim, std::int64_t key_dim, std::int64_t units) {
  if (query_dim <= 0 || key_dim <= 0 || units <= 0)
    fail("BahdanauAttention: query_dim {}, key_dim {} and units {} must be positive", query_dim, key_dim, units);
  query_proj = register_module("query_proj", std::make_shared<Linear>(query_dim, units, false));
  key_proj = register_module("key_proj", std::make_shared<Linear>(key_dim, units, false));
  v = register_parameter("v", init::fan_in_uniform({units}, units));
}

AttentionResult BahdanauAttention::forward(const Tensor& query, const Tensor& keys, const Tensor& values,
                                           const Tensor& key_padding_mask) {
  const std::int64_t query_dim = query_proj->weight.size(1), key_dim = key_proj->weight.size(1);
  if (!inputs_fit(query, keys, values, 3, query_dim, key_dim, -1))
    fail("BahdanauAttention: expected query [B, Tq, {}], keys [B, Tk, {}] and values [B, Tk, Dv], got {}",
         query_dim, key_dim, shapes_of(query, keys, values, "keys", "values"));
  Tensor padding = key_padding_for_scores("BahdanauAttention", key_padding_mask, keys, 3);
  check_dtypes("BahdanauAttention", query, keys, values, v, "keys", "values");
  Tensor projected_query = unsqueeze((*query_proj)(query), 2);  // [B, Tq, 1, U]
  Tensor projected_keys = unsqueeze((*key_proj)(keys), 1);      // [B, 1, Tk, U]
  Tensor scores = matmul(tanh(projected_query + projected_keys), v);  // [B, Tq, Tk]
  AttentionResult result = attend(scores, values, {padding}, 0);
  traced(result.context);
  return result;
}

// --- multi-head -----------------------------------------------------------------------------------

MultiheadAttention::MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, double dropout, bool bias,
                                       std::int64_t kdim, std::int64_t vdim)
    : embed_dim(embed_dim),
      num_heads(num_heads),
      head_dim(0),
      kdim(kdim == 0 ? embed_dim : kdim),
      vdim(vdim == 0 ? embed_dim : vdim),
      dropout(dropout) {
  if (embed_dim <= 0 || num_heads <= 0 || embed_dim % num_heads != 0)
    fail("MultiheadAttention: embed_dim {} must be a positive multiple of num_heads {}", embed_dim, num_heads);
  if (kdim < 0 || vdim < 0)
    fail("MultiheadAttention: kdim {} and vdim {} must be positive (0: embed_dim {})", kdim, vdim, embed_dim);
  if (!(dropout >= 0 && dropout <= 1)) fail("MultiheadAttention: dropout must be in [0, 1], got {}", dropout);
  head_dim = embed_dim / num_heads;
  const std::int64_t e = embed_dim;
  if (this->kdim == e && this->vdim == e) {
    in_proj_weight = register_parameter("in_proj_weight", init::xavier_uniform({3 * e, e}, e, 3 * e));
  } else {  // PyTorch's separate projections (_qkv_same_embed_dim false), in its order
    q_proj_weight = register_parameter("q_proj_weight", init::xavier_uniform({e, e}, e, e));
    k_proj_weight = register_parameter("k_proj_weight", init::xavier_uniform({e, this->kdim}, this->kdim, e));
    v_proj_weight = register_parameter("v_proj_weight", init::xavier_uniform({e, this->vdim}, this->vdim, e));
  }
  if (bias) in_proj_bias = register_parameter("in_proj_bias", zeros({3 * e}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, bias));
  if (bias) out_proj->bias.copy_(zeros({e}));
}

AttentionResult MultiheadAttention::forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                            const Tensor& key_padding_mask, const Tensor& attn_mask, bool is_causal,
                                            bool average_attn_weights) {
  const char* op = "MultiheadAttention";
  if (!inputs_fit(query, key, value, 3, embed_dim, kdim, vdim)) {
    if (kdim == embed_dim && vdim == embed_dim)
      fail("{}: expected query [B, Tq, {}], key and value [B, Tk, {}], got {}", op, embed_dim, embed_dim,
           shapes_of(query, key, value));
    fail("{}: expected query [B, Tq, {}], key [B, Tk, {}] (kdim) and value [B, Tk, {}] (vdim), got {}", op,
         embed_dim, kdim, vdim, shapes_of(query, key, value));
  }
  const std::int64_t batch = query.size(0), query_length = query.size(1), key_length = key.size(1);

  Tensor padding = key_padding_for_scores(op, key_padding_mask, key, 4);
  Tensor score_mask = attn_mask;  // -> [Tq, Tk] or [B, heads, Tq, Tk]
  if (attn_mask.defined()) {
    const Shape shared{query_length, key_length}, per_head{batch * num_heads, query_length, key_length};
    if (attn_mask.shape() != shared && attn_mask.shape() != per_head)
      fail("{}: attn_mask {} must be [Tq, Tk] = {} or [B * heads, Tq, Tk] = {} for {}", op, attn_mask.shape(), shared,
           per_head, shapes_of(query, key, value));
    if (attn_mask.dim() == 3) score_mask = reshape(attn_mask, {batch, num_heads, query_length, key_length});
  }
  const bool packed = in_proj_weight.defined();
  check_dtypes(op, query, key, value, packed ? in_proj_weight : q_proj_weight);
  const Tensor future = is_causal ? causal_mask(query_length, key_length) : Tensor{};

  // [B, T, E] -> [B, heads, T, head_dim]
  auto split_heads = [&](const Tensor& x) {
    return permute(reshape(x, {batch, x.size(1), num_heads, head_dim}), {0, 2, 1, 3});
  };
  std::array<Tensor, 3> qkv;  // [B, heads, T, head_dim] each
  if (packed && query.is_same(key) && key.is_same(value)) {
    // Self-attention: one GEMM, and one copy of its output [B, T, 3, heads, head_dim] to
    // [3, B, heads, T, head_dim], whose thirds are views (not a copy per third, then per head
    // split); the backward writes their gradients straight back, without joining them first.
    Tensor projected = reshape(linear(query, in_proj_weight, in_proj_bias), {batch, query_length, 3, num_heads, head_dim});
    auto thirds = unbind_permuted(projected, {2, 0, 3, 1, 4});
    qkv = {thirds[0], thirds[1], thirds[2]};
  } else {
    if (packed) {
      qkv = in_projections(query, key, value, in_proj_weight, in_proj_bias);
    } else {
      auto b = in_proj_bias.defined() ? chunk(in_proj_bias, 3, 0) : std::vector<Tensor>(3);
      qkv = {linear(query, q_proj_weight, b[0]), linear(key, k_proj_weight, b[1]), linear(value, v_proj_weight, b[2])};
    }
    for (auto& t : qkv) t = split_heads(t);
  }
  auto& [q, k, v] = qkv;
  AttentionResult heads = dot_product_attention(q, k, v, {padding, score_mask, future},
                                                1.0 / std::sqrt(static_cast<double>(head_dim)), is_training() ? dropout : 0.0);
  Tensor joined = reshape(permute(heads.context, {0, 2, 1, 3}), {batch, query_length, embed_dim});
  Tensor context = traced((*out_proj)(joined));
  return {context, average_attn_weights ? mean(heads.weights, 1) : heads.weights};
}

}  // namespace xgrad::nn
