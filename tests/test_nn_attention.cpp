// Attention: scaled_dot_product_attention, LuongAttention, BahdanauAttention, MultiheadAttention.
// Weights rows sum to 1, masked keys (padding, attn_mask, causal) get exactly zero weight, tiny
// cases against the formulas in plain doubles, MultiheadAttention against its formula written out
// from its parameters, float64 gradcheck + gradgradcheck over inputs and every parameter, errors.
#include <cmath>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using nn::AttentionResult;
using nn::LuongAttention;

namespace {

/// Context and weights flattened and joined: one output, so gradcheck covers both.
Tensor joined(const AttentionResult& r) { return concat({flatten(r.context), flatten(r.weights)}, 0); }

/// The inputs followed by the module's parameters. gradcheck perturbs the parameters in place, so
/// the checked function calls the module and ignores those extra inputs.
Inputs with_parameters(Inputs inputs, const nn::Module& module) {
  for (const Tensor& p : module.parameters()) {
    REQUIRE((p.dtype() == f64 && p.requires_grad()));
    inputs.push_back(p);
  }
  return inputs;
}

/// "weight, bias": the module's parameter names, in order.
std::string names_of(const nn::Module& module) {
  std::string names;
  for (const auto& [name, p] : module.named_parameters()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

void check_rows_sum_to_one(const Tensor& weights) {
  Tensor sums = sum(weights, -1);
  check_close(sums, ones_like(sums), 1e-12);
}

/// Every weight where `mask` (broadcast) is nonzero is exactly 0.
void check_zero_where(const Tensor& weights, const Tensor& mask) {
  Tensor masked = where(mask, weights, zeros_like(weights));
  CHECK(max(abs(masked)).item() == 0.0);
}

/// softmax of a few plain doubles.
std::vector<double> softmax_of(const std::vector<double>& scores) {
  double total = 0;
  for (double s : scores) total += std::exp(s);
  std::vector<double> out;
  for (double s : scores) out.push_back(std::exp(s) / total);
  return out;
}

}  // namespace

// --- scaled_dot_product_attention ---------------------------------------------------------------

TEST_CASE("scaled_dot_product_attention: one query, two keys, by hand") {
  // q = [1, 0]; keys [1, 0], [0, 1]; values [1, 2], [3, 4]; scores [1, 0] / sqrt(2)
  Tensor q = tensor({{{1.0, 0.0}}}, f64), k = tensor({{{1.0, 0.0}, {0.0, 1.0}}}, f64);
  Tensor v = tensor({{{1.0, 2.0}, {3.0, 4.0}}}, f64);
  auto w = softmax_of({1 / std::sqrt(2.0), 0});
  AttentionResult r = nn::scaled_dot_product_attention(q, k, v);
  check_close(r.weights, tensor({{{w[0], w[1]}}}, f64), 1e-15);
  check_close(r.context, tensor({{{w[0] * 1 + w[1] * 3, w[0] * 2 + w[1] * 4}}}, f64), 1e-15);

  SUBCASE("the second key masked: all weight on the first") {
    AttentionResult m = nn::scaled_dot_product_attention(q, k, v, tensor({0, 1}, i64));
    check_values(m.weights, {1, 1, 2}, {1, 0});
    check_values(m.context, {1, 1, 2}, {1, 2});
  }
}

TEST_CASE("scaled_dot_product_attention: shapes, rows sum to 1, scale") {
  for (Shape lead : {Shape{2}, Shape{2, 3}}) {
    CAPTURE(to_string(lead));
    auto shaped = [&](std::int64_t t, std::int64_t d) {
      Shape s = lead;
      s.push_back(t);
      s.push_back(d);
      return s;
    };
    Tensor q = input(shaped(4, 5), -1, 1, 1), k = input(shaped(6, 5), -1, 1, 2), v = input(shaped(6, 3), -1, 1, 3);
    AttentionResult r = nn::scaled_dot_product_attention(q, k, v);
    CHECK(r.context.shape() == shaped(4, 3));
    CHECK(r.weights.shape() == shaped(4, 6));
    check_rows_sum_to_one(r.weights);
    check_close(r.context, matmul(r.weights, v), 1e-14);
    // scale s on q k^T is the same as scaling q
    check_close(nn::scaled_dot_product_attention(q * 2.0, k, v, {}, 0.25).weights,
                nn::scaled_dot_product_attention(q, k, v, {}, 0.5).weights, 1e-14);
  }
}

TEST_CASE("scaled_dot_product_attention: masked keys get zero weight") {
  Tensor q = input({2, 3, 4}, -1, 1, 1), k = input({2, 5, 4}, -1, 1, 2), v = input({2, 5, 3}, -1, 1, 3);
  // batch 0 attends to keys 0..2, batch 1 to keys 0..3: a padding mask [B, 1, Tk]
  Tensor padding = reshape(tensor({0, 0, 0, 1, 1, 0, 0, 0, 0, 1}, i64), {2, 1, 5});
  AttentionResult r = nn::scaled_dot_product_attention(q, k, v, padding);
  check_zero_where(r.weights, padding);
  check_rows_sum_to_one(r.weights);
  // the same as attending only to the unmasked keys
  AttentionResult first = nn::scaled_dot_product_attention(slice(q, 0, 0, 1), slice(slice(k, 0, 0, 1), 1, 0, 3),
                                                           slice(slice(v, 0, 0, 1), 1, 0, 3));
  check_close(slice(r.context, 0, 0, 1), first.context, 1e-14);
  check_close(slice(slice(r.weights, 0, 0, 1), 2, 0, 3), first.weights, 1e-14);

  SUBCASE("a float mask of 0 / -inf, as PyTorch's additive masks, reads the same") {
    Tensor additive = where(padding, scalar(-INFINITY, f64), scalar(0, f64));
    check_close(nn::scaled_dot_product_attention(q, k, v, additive).weights, r.weights, 0);
  }
  SUBCASE("a query with every key masked gets zero weights, a zero context and zero gradients (PyTorch: NaN)") {
    AttentionResult all = nn::scaled_dot_product_attention(q, k, v, ones({5}, i64));
    check_close(all.weights, zeros({2, 3, 5}, f64), 0);
    check_close(all.context, zeros({2, 3, 3}, f64), 0);
    auto grads = autograd::grad({sum(all.context)}, {q, k, v});
    for (const auto& g : grads) check_close(g, zeros_like(g), 0);
  }
}

TEST_CASE("scaled_dot_product_attention: causal") {
  Tensor q = input({2, 4, 3}, -1, 1, 1), k = input({2, 4, 3}, -1, 1, 2), v = input({2, 4, 2}, -1, 1, 3);
  AttentionResult r = nn::scaled_dot_product_attention(q, k, v, {}, std::nullopt, true);
  Tensor above_diagonal = tensor({{0, 1, 1, 1}, {0, 0, 1, 1}, {0, 0, 0, 1}, {0, 0, 0, 0}}, f64);
  check_zero_where(r.weights, above_diagonal);
  check_rows_sum_to_one(r.weights);
  // the first query sees only the first key
  check_close(slice(r.context, 1, 0, 1), slice(v, 1, 0, 1), 1e-15);
  // the same as passing the mask explicitly
  check_close(nn::scaled_dot_product_attention(q, k, v, above_diagonal).context, r.context, 0);

  SUBCASE("Tq != Tk: aligned top-left, as PyTorch") {
    AttentionResult wide = nn::scaled_dot_product_attention(slice(q, 1, 0, 2), k, v, {}, std::nullopt, true);
    check_zero_where(wide.weights, slice(above_diagonal, 0, 0, 2));
    check_rows_sum_to_one(wide.weights);
  }
  SUBCASE("combined with a padding mask") {
    Tensor padding = reshape(tensor({0, 0, 1, 1, 0, 0, 0, 0}, i64), {2, 1, 4});
    Tensor w = nn::scaled_dot_product_attention(q, k, v, padding, std::nullopt, true).weights;
    check_zero_where(w, padding);
    check_zero_where(w, above_diagonal);
    check_rows_sum_to_one(w);
  }
}

TEST_CASE("scaled_dot_product_attention: gradients w.r.t. query, key, value") {
  auto attention = [](const Tensor& mask, bool causal) {
    return [mask, causal](const Inputs& in) {
      return joined(nn::scaled_dot_product_attention(in[0], in[1], in[2], mask, std::nullopt, causal));
    };
  };
  check_gradients(attention({}, false), {input({2, 3, 4}, -1, 1, 1), input({2, 5, 4}, -1, 1, 2),
                                         input({2, 5, 3}, -1, 1, 3)});
  Tensor padding = reshape(tensor({0, 0, 0, 1, 0, 1, 0, 0}, i64), {2, 1, 1, 4});
  check_gradients(attention(padding, true), {input({2, 2, 4, 3}, -1, 1, 4), input({2, 2, 4, 3}, -1, 1, 5),
                                             input({2, 2, 4, 2}, -1, 1, 6)});
}

TEST_CASE("scaled_dot_product_attention: errors") {
  Tensor q = input({2, 3, 4}), k = input({2, 5, 4}), v = input({2, 5, 6});
  auto message = [](const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask = {}) {
    return error_of([&] { nn::scaled_dot_product_attention(q, k, v, mask); });
  };
  CHECK(matches(message(q, k, input({2, 4, 6})),
                R"(^scaled_dot_product_attention: expected query \[\.\.\., Tq, D\], key \[\.\.\., Tk, D\] and )"
                R"(value \[\.\.\., Tk, Dv\] with the same leading axes, got query \[2, 3, 4\], key \[2, 5, 4\], )"
                R"(value \[2, 4, 6\]$)"));
  CHECK(matches(message(q, input({2, 5, 3}), v), R"(got query \[2, 3, 4\], key \[2, 5, 3\], value \[2, 5, 6\])"));
  CHECK(matches(message(q, input({3, 5, 4}), v), R"(same leading axes, got query \[2, 3, 4\], key \[3, 5, 4\])"));
  CHECK(matches(message(q, k, v, ones({3, 3})),
                R"(^scaled_dot_product_attention: mask \[3, 3\] does not broadcast to the scores \[2, 3, 5\] of )"
                R"(query \[2, 3, 4\], key \[2, 5, 4\], value \[2, 5, 6\]$)"));
  CHECK(matches(message(q, k, v, ones({4, 3, 5})), R"(mask \[4, 3, 5\] does not broadcast)"));
}

// --- Luong ----------------------------------------------------------------------------------------

TEST_CASE("LuongAttention: dot, scaled_dot and general scores") {
  Tensor q = input({2, 3, 4}, -1, 1, 1), k = input({2, 5, 4}, -1, 1, 2), v = input({2, 5, 3}, -1, 1, 3);
  LuongAttention dot(4), scaled(4, LuongAttention::Score::scaled_dot), general(4, LuongAttention::Score::general);
  CHECK((dot.parameters().empty() && scaled.parameters().empty()));
  CHECK(names_of(general) == "weight");
  CHECK(general.weight.shape() == Shape({4, 4}));
  general.to(f64);

  check_close(dot.forward(q, k, v).context, nn::scaled_dot_product_attention(q, k, v, {}, 1.0).context, 1e-14);
  check_close(scaled.forward(q, k, v).context, nn::scaled_dot_product_attention(q, k, v).context, 1e-14);
  AttentionResult r = general.forward(q, k, v);
  CHECK(r.context.shape() == Shape({2, 3, 3}));
  CHECK(r.weights.shape() == Shape({2, 3, 5}));
  check_rows_sum_to_one(r.weights);
  // general with W = I is dot
  general.weight.copy_(tensor({{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}, {0, 0, 0, 1}}, f64));
  check_close(general.forward(q, k, v).context, dot.forward(q, k, v).context, 1e-14);

  SUBCASE("general, one query and two keys, by hand") {
    LuongAttention tiny(2, LuongAttention::Score::general);
    tiny.to(f64);
    tiny.weight.copy_(tensor({{0.5, -1.0}, {2.0, 0.25}}, f64));
    Tensor key = tensor({{{0.5, 1.0}, {-1.0, 3.0}}}, f64), identity = tensor({{{1.0, 0.0}, {0.0, 1.0}}}, f64);
    // score_j = q^T W k_j with q = [1, -2]: q^T W = [1 * 0.5 - 2 * 2, 1 * -1 - 2 * 0.25] = [-3.5, -1.5]
    auto w = softmax_of({-3.5 * 0.5 - 1.5 * 1.0, -3.5 * -1.0 - 1.5 * 3.0});
    AttentionResult by_hand = tiny.forward(tensor({{{1.0, -2.0}}}, f64), key, identity);
    check_close(by_hand.weights, tensor({{{w[0], w[1]}}}, f64), 1e-15);
    check_close(by_hand.context, tensor({{{w[0], w[1]}}}, f64), 1e-15);
  }
}

TEST_CASE("LuongAttention: key padding, gradients") {
  Tensor q = input({2, 2, 3}, -1, 1, 1), k = input({2, 4, 3}, -1, 1, 2), v = input({2, 4, 2}, -1, 1, 3);
  Tensor padding = tensor({{0, 0, 1, 1}, {0, 0, 0, 1}}, i64);
  for (auto score : {LuongAttention::Score::dot, LuongAttention::Score::scaled_dot, LuongAttention::Score::general}) {
    CAPTURE(static_cast<int>(score));
    LuongAttention luong(3, score);
    luong.to(f64);
    AttentionResult r = luong.forward(q, k, v, padding);
    check_zero_where(r.weights, unsqueeze(padding, 1));
    check_rows_sum_to_one(r.weights);
    check_gradients([&](const Inputs& in) { return joined(luong.forward(in[0], in[1], in[2], padding)); },
                    with_parameters({q, k, v}, luong));
  }
}

TEST_CASE("LuongAttention: errors") {
  LuongAttention luong(4);
  Tensor q = input({2, 3, 4}), k = input({2, 5, 4}), v = input({2, 5, 6});
  CHECK(matches(error_of([&] { luong.forward(q, k, input({2, 4, 6})); }),
                R"(^LuongAttention: expected query \[B, Tq, 4\], keys \[B, Tk, 4\] and values \[B, Tk, Dv\], )"
                R"(got query \[2, 3, 4\], keys \[2, 5, 4\], values \[2, 4, 6\]$)"));
  CHECK(matches(error_of([&] { luong.forward(input({2, 3, 3}), input({2, 5, 3}), v); }),
                R"(expected query \[B, Tq, 4\].*got query \[2, 3, 3\])"));
  CHECK(matches(error_of([&] { luong.forward(input({3, 4}), input({5, 4}), input({5, 6})); }), R"(query \[3, 4\])"));
  CHECK(matches(error_of([&] { luong.forward(q, k, v, ones({2, 4}, i64)); }),
                R"(^LuongAttention: key_padding_mask \[2, 4\] must be \[B, Tk\] = \[2, 5\] for keys \[2, 5, 4\]$)"));
  CHECK(matches(error_of([] { LuongAttention(0); }), R"(^LuongAttention: dim must be positive, got 0$)"));
}

// --- Bahdanau -------------------------------------------------------------------------------------

TEST_CASE("BahdanauAttention: parameters, one query and two keys by hand") {
  nn::BahdanauAttention bahdanau(2, 3, 2);
  CHECK(names_of(bahdanau) == "v, query_proj.weight, key_proj.weight");
  CHECK(bahdanau.query_proj->weight.shape() == Shape({2, 2}));
  CHECK(bahdanau.key_proj->weight.shape() == Shape({2, 3}));
  CHECK(bahdanau.v.shape() == Shape({2}));
  bahdanau.to(f64);

  Tensor q = tensor({{{0.5, -1.0}}}, f64), k = tensor({{{1.0, 0.0, -1.0}, {0.5, 2.0, 0.25}}}, f64);
  Tensor v = tensor({{{1.0, 2.0}, {3.0, 4.0}}}, f64);
  auto Wq = bahdanau.query_proj->weight.to_vector<double>(), Wk = bahdanau.key_proj->weight.to_vector<double>();
  auto va = bahdanau.v.to_vector<double>();
  auto qs = q.to_vector<double>(), ks = k.to_vector<double>();
  std::vector<double> scores;
  for (int j = 0; j < 2; ++j) {
    double score = 0;  // v^T tanh(W_q q + W_k k_j)
    for (int u = 0; u < 2; ++u) {
      double pre = 0;
      for (int i = 0; i < 2; ++i) pre += Wq[u * 2 + i] * qs[i];
      for (int i = 0; i < 3; ++i) pre += Wk[u * 3 + i] * ks[j * 3 + i];
      score += va[u] * std::tanh(pre);
    }
    scores.push_back(score);
  }
  auto w = softmax_of(scores);
  AttentionResult r = bahdanau.forward(q, k, v);
  check_close(r.weights, tensor({{{w[0], w[1]}}}, f64), 1e-14);
  check_close(r.context, tensor({{{w[0] * 1 + w[1] * 3, w[0] * 2 + w[1] * 4}}}, f64), 1e-14);
}

TEST_CASE("BahdanauAttention: shapes, key padding, gradients") {
  nn::BahdanauAttention bahdanau(3, 4, 5);
  bahdanau.to(f64);
  Tensor k = input({2, 4, 4}, -1, 1, 2), v = input({2, 4, 2}, -1, 1, 3);
  Tensor padding = tensor({{0, 0, 0, 1}, {0, 1, 1, 1}}, f64);
  for (std::int64_t tq : {1, 3}) {
    CAPTURE(tq);
    Tensor q = input({2, tq, 3}, -1, 1, 1);
    AttentionResult r = bahdanau.forward(q, k, v, padding);
    CHECK(r.context.shape() == Shape({2, tq, 2}));
    CHECK(r.weights.shape() == Shape({2, tq, 4}));
    check_zero_where(r.weights, unsqueeze(padding, 1));
    check_rows_sum_to_one(r.weights);
    check_gradients([&](const Inputs& in) { return joined(bahdanau.forward(in[0], in[1], in[2], padding)); },
                    with_parameters({q, k, v}, bahdanau));
  }
}

TEST_CASE("BahdanauAttention: errors") {
  nn::BahdanauAttention bahdanau(3, 4, 5);
  Tensor q = input({2, 1, 3}), k = input({2, 6, 4}), v = input({2, 6, 2});
  CHECK(matches(error_of([&] { bahdanau.forward(q, input({2, 6, 3}), v); }),
                R"(^BahdanauAttention: expected query \[B, Tq, 3\], keys \[B, Tk, 4\] and values \[B, Tk, Dv\], )"
                R"(got query \[2, 1, 3\], keys \[2, 6, 3\], values \[2, 6, 2\]$)"));
  CHECK(matches(error_of([&] { bahdanau.forward(q, k, input({2, 5, 2})); }), R"(values \[2, 5, 2\]$)"));
  CHECK(matches(error_of([&] { bahdanau.forward(q, k, v, ones({6})); }),
                R"(^BahdanauAttention: key_padding_mask \[6\] must be \[B, Tk\] = \[2, 6\] for keys \[2, 6, 4\]$)"));
  CHECK(matches(error_of([] { nn::BahdanauAttention(3, 0, 5); }),
                R"(^BahdanauAttention: query_dim 3, key_dim 0 and units 5 must be positive$)"));
}

// --- MultiheadAttention ---------------------------------------------------------------------------

namespace {

/// A float64 MultiheadAttention with random (nonzero) biases, so that every parameter matters.
std::shared_ptr<nn::MultiheadAttention> f64_attention(std::int64_t embed_dim, std::int64_t num_heads, bool bias) {
  manual_seed(7);
  auto m = std::make_shared<nn::MultiheadAttention>(embed_dim, num_heads, 0.0, bias);
  m->to(f64);
  if (bias) {
    m->in_proj_bias.copy_(uniform({3 * embed_dim}, -0.5, 0.5, f64));
    m->out_proj->bias.copy_(uniform({embed_dim}, -0.5, 0.5, f64));
  }
  return m;
}

/// PyTorch's formula written out head by head from the parameters: q_h = query W_q,h^T + b_q,h (the
/// rows h*hd.. of each third of in_proj), head_h = softmax(q_h k_h^T / sqrt(hd) | masks) v_h,
/// out = concat(heads) W_o^T + b_o; weights averaged over heads.
AttentionResult by_formula(const nn::MultiheadAttention& m, const Tensor& query, const Tensor& key,
                           const Tensor& value, const Tensor& score_mask = {}) {
  const std::int64_t E = m.embed_dim, hd = m.head_dim;
  auto project = [&](const Tensor& x, std::int64_t third, std::int64_t h) {
    const std::int64_t begin = third * E + h * hd, end = begin + hd;
    Tensor y = matmul(x, slice(m.in_proj_weight, 0, begin, end), false, true);
    return m.in_proj_bias.defined() ? y + slice(m.in_proj_bias, 0, begin, end) : y;
  };
  std::vector<Tensor> contexts;
  Tensor weight_sum;
  for (std::int64_t h = 0; h < m.num_heads; ++h) {
    Tensor scores = matmul(project(query, 0, h), project(key, 1, h), false, true) / std::sqrt(double(hd));
    if (score_mask.defined()) scores = where(score_mask, scalar(-INFINITY, f64), scores);
    Tensor weights = softmax(scores, -1);
    contexts.push_back(matmul(weights, project(value, 2, h)));
    weight_sum = h == 0 ? weights : weight_sum + weights;
  }
  Tensor out = matmul(concat(contexts, -1), m.out_proj->weight, false, true);
  if (m.out_proj->bias.defined()) out = out + m.out_proj->bias;
  return {out, weight_sum / double(m.num_heads)};
}

}  // namespace

TEST_CASE("MultiheadAttention: PyTorch's parameter names, shapes and init") {
  manual_seed(1);
  nn::MultiheadAttention m(8, 2);
  CHECK(names_of(m) == "in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias");
  CHECK(m.in_proj_weight.shape() == Shape({24, 8}));
  CHECK(m.in_proj_bias.shape() == Shape({24}));
  CHECK(m.out_proj->weight.shape() == Shape({8, 8}));
  CHECK(m.head_dim == 4);
  CHECK(max(abs(m.in_proj_bias)).item() == 0.0);
  CHECK(max(abs(m.out_proj->bias)).item() == 0.0);
  // Xavier uniform over [3E, E]: bound sqrt(6 / (E + 3E)); out_proj.weight: 1/sqrt(E)
  CHECK(max(abs(m.in_proj_weight)).item() <= std::sqrt(6.0 / 32));
  CHECK(max(abs(m.in_proj_weight)).item() > 0.5 * std::sqrt(6.0 / 32));
  CHECK(max(abs(m.out_proj->weight)).item() <= 1 / std::sqrt(8.0));

  CHECK(names_of(nn::MultiheadAttention(8, 2, 0.0, false)) == "in_proj_weight, out_proj.weight");

  Tensor x = zeros({2, 3, 8});
  const std::string table = nn::summary(m, [&] { m.forward(x, x, x); });
  INFO(table);
  CHECK(table.find("out_proj (Linear)") != std::string::npos);
}

TEST_CASE("MultiheadAttention: one head, and heads split and joined as PyTorch's, match the formula") {
  for (auto [heads, bias] : {std::pair{1, true}, std::pair{3, true}, std::pair{3, false}}) {
    CAPTURE(heads);
    CAPTURE(bias);
    auto m = f64_attention(6, heads, bias);
    Tensor query = input({2, 3, 6}, -1, 1, 1), key = input({2, 4, 6}, -1, 1, 2), value = input({2, 4, 6}, -1, 1, 3);
    AttentionResult r = m->forward(query, key, value);
    AttentionResult expected = by_formula(*m, query, key, value);
    CHECK(r.context.shape() == Shape({2, 3, 6}));
    CHECK(r.weights.shape() == Shape({2, 3, 4}));
    check_close(r.context, expected.context, 1e-13);
    check_close(r.weights, expected.weights, 1e-14);
    check_rows_sum_to_one(r.weights);

    AttentionResult per_head = m->forward(query, key, value, {}, {}, false, false);
    CHECK(per_head.weights.shape() == Shape({2, heads, 3, 4}));
    check_rows_sum_to_one(per_head.weights);
    check_close(mean(per_head.weights, 1), r.weights, 1e-15);
    check_close(per_head.context, r.context, 0);

    // self-attention takes the fused projection: same numbers as three separate tensors
    AttentionResult fused = m->forward(query, query, query);
    AttentionResult separate = m->forward(query, query.clone(), query.clone());
    check_close(fused.context, separate.context, 1e-14);
    check_close(fused.weights, separate.weights, 1e-15);
  }
}

TEST_CASE("MultiheadAttention: key padding, attn_mask and causal masks") {
  auto m = f64_attention(4, 2, true);
  Tensor query = input({2, 3, 4}, -1, 1, 1), key = input({2, 3, 4}, -1, 1, 2), value = input({2, 3, 4}, -1, 1, 3);
  Tensor padding = tensor({{0, 0, 1}, {0, 1, 1}}, i64);
  Tensor padding_scores = reshape(padding, {2, 1, 3});
  Tensor future = tensor({{0, 1, 1}, {0, 0, 1}, {0, 0, 0}}, f64);

  AttentionResult padded = m->forward(query, key, value, padding, {}, false, false);
  check_zero_where(padded.weights, unsqueeze(padding_scores, 1));
  check_rows_sum_to_one(padded.weights);
  check_close(m->forward(query, key, value, padding).context, by_formula(*m, query, key, value, padding_scores).context,
              1e-13);

  AttentionResult causal = m->forward(query, key, value, {}, {}, true);
  check_zero_where(causal.weights, future);
  check_rows_sum_to_one(causal.weights);
  check_close(causal.context, m->forward(query, key, value, {}, future).context, 0);
  check_close(causal.context, by_formula(*m, query, key, value, future).context, 1e-13);

  // a [B * heads, Tq, Tk] mask: a different mask for each batch entry and head (b-major, as PyTorch)
  Tensor per_head = zeros({4, 3, 3}, f64);
  per_head = where(reshape(tensor({1, 0, 0, 0}, f64), {4, 1, 1}), future, per_head);  // batch 0, head 0 only
  AttentionResult heads = m->forward(query, key, value, {}, per_head, false, false);
  check_zero_where(slice(slice(heads.weights, 0, 0, 1), 1, 0, 1), future);
  check_close(slice(slice(heads.weights, 0, 0, 1), 1, 1, 2),
              slice(slice(m->forward(query, key, value, {}, {}, false, false).weights, 0, 0, 1), 1, 1, 2), 0);

  AttentionResult both = m->forward(query, key, value, padding, {}, true);
  check_zero_where(both.weights, padding_scores);
  check_zero_where(both.weights, future);
}

TEST_CASE("MultiheadAttention: attention dropout in training only") {
  manual_seed(3);
  nn::MultiheadAttention m(4, 1, 0.5);
  m.to(f64);
  Tensor query = input({2, 3, 4}, -1, 1, 1), key = input({2, 6, 4}, -1, 1, 2);
  m.eval();
  Tensor kept = m.forward(query, key, key).weights;
  check_close(m.forward(query, key, key).weights, kept, 0);
  check_rows_sum_to_one(kept);
  m.train();
  Tensor dropped = m.forward(query, key, key).weights;
  // each weight is dropped (0) or scaled by 1 / (1 - p) = 2; both happen
  Tensor is_dropped = eq(dropped, zeros_like(dropped));
  check_close(dropped, where(is_dropped, zeros_like(kept), 2.0 * kept), 1e-15);
  const double dropped_count = sum(is_dropped).item();
  CHECK((dropped_count > 0 && dropped_count < static_cast<double>(kept.numel())));
}

TEST_CASE("MultiheadAttention: gradients w.r.t. query, key, value and every parameter") {
  Tensor query = input({2, 2, 4}, -1, 1, 1), key = input({2, 3, 4}, -1, 1, 2), value = input({2, 3, 4}, -1, 1, 3);
  Tensor padding = tensor({{0, 0, 1}, {0, 0, 0}}, i64);
  SUBCASE("cross-attention with key padding, per-head weights") {
    auto m = f64_attention(4, 2, true);
    auto attention = [&](const Inputs& in) {
      return joined(m->forward(in[0], in[1], in[2], padding, {}, false, false));
    };
    check_gradients(attention, with_parameters({query, key, value}, *m));
  }
  SUBCASE("self-attention (fused projection), causal, no bias") {
    auto m = f64_attention(4, 2, false);
    check_gradients([&](const Inputs& in) { return joined(m->forward(in[0], in[0], in[0], {}, {}, true)); },
                    with_parameters({input({2, 3, 4}, -1, 1, 4)}, *m));
  }
}

TEST_CASE("MultiheadAttention: errors") {
  CHECK(matches(error_of([] { nn::MultiheadAttention(6, 4); }),
                R"(^MultiheadAttention: embed_dim 6 must be a positive multiple of num_heads 4$)"));
  CHECK(matches(error_of([] { nn::MultiheadAttention(6, 0); }), R"(a positive multiple of num_heads 0$)"));
  CHECK(matches(error_of([] { nn::MultiheadAttention(4, 2, 1.5); }),
                R"(^MultiheadAttention: dropout must be in \[0, 1\], got 1.5$)"));
  nn::MultiheadAttention m(4, 2);
  Tensor q = zeros({2, 2, 4}), k = zeros({2, 3, 4});
  CHECK(matches(error_of([&] { m.forward(q, k, zeros({2, 5, 4})); }),
                R"(^MultiheadAttention: expected query \[B, Tq, 4\], key and value \[B, Tk, 4\], got )"
                R"(query \[2, 2, 4\], key \[2, 3, 4\], value \[2, 5, 4\]$)"));
  CHECK(matches(error_of([&] { m.forward(zeros({2, 2, 6}), k, k); }), R"(got query \[2, 2, 6\])"));
  CHECK(matches(error_of([&] { m.forward(q, zeros({1, 3, 4}), zeros({1, 3, 4})); }), R"(key \[1, 3, 4\])"));
  CHECK(matches(error_of([&] { m.forward(q, k, k, zeros({2, 4})); }),
                R"(^MultiheadAttention: key_padding_mask \[2, 4\] must be \[B, Tk\] = \[2, 3\] )"
                R"(for keys \[2, 3, 4\]$)"));
  CHECK(matches(error_of([&] { m.forward(q, k, k, {}, zeros({3, 3})); }),
                R"(^MultiheadAttention: attn_mask \[3, 3\] must be \[Tq, Tk\] = \[2, 3\] or \[B \* heads, Tq, Tk\] )"
                R"(= \[4, 2, 3\] for query \[2, 2, 4\], key \[2, 3, 4\], value \[2, 3, 4\]$)"));
  CHECK(matches(error_of([&] { m.forward(q, k, k, {}, zeros({2, 2, 3})); }), R"(attn_mask \[2, 2, 3\] must be)"));
}
