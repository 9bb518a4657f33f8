// The op table's entries: one per op of autograd/ops.hpp and per option worth its own check.
// Functions here must match tests/fixtures/edge_values.py entry for entry (the same name, the
// same function of the same inputs).
#include "op_table.hpp"

#include <algorithm>
#include <limits>

namespace xgrad::testing {

namespace {

using Out = std::vector<Tensor>;
using Shapes = std::vector<std::vector<Shape>>;

const Shapes kUnarySamples = {{{3, 4}}, {{7}}, {{}}, {{2, 1, 3}}};
const Shapes kBinarySamples = {{{3, 4}, {3, 4}}, {{2, 3, 4}, {4}}, {{3, 1}, {1, 4}}, {{}, {2, 3}}, {{5}, {}}};
const Shapes kRowSamples = {{{3, 4}}, {{2, 5, 3}}, {{1, 1}}};

OpEntry unary(std::string name, std::string op, std::function<Tensor(const Tensor&)> f, Domain domain = Domain::any) {
  return {.name = std::move(name), .op = std::move(op), .f = [f](const Inputs& in) -> Out { return {f(in[0])}; },
          .samples = kUnarySamples, .domain = domain, .zero_size = {{0, 3}}, .edge = "unary"};
}

OpEntry binary(std::string name, std::string op, std::function<Tensor(const Tensor&, const Tensor&)> f,
               Domain domain = Domain::any) {
  return {.name = std::move(name), .op = std::move(op),
          .f = [f](const Inputs& in) -> Out { return {f(in[0], in[1])}; }, .samples = kBinarySamples,
          .domain = domain, .zero_size = {{0, 3}, {1, 3}}, .edge = "binary"};
}

/// An op along axis 1 of row-major samples (and the rows of the edge sweep).
OpEntry rows(std::string name, std::string op, std::function<Out(const Tensor&)> f, Domain domain = Domain::any) {
  return {.name = std::move(name), .op = std::move(op), .f = [f](const Inputs& in) -> Out { return f(in[0]); },
          .samples = kRowSamples, .domain = domain, .zero_size = {{0, 4}}, .edge = "rows"};
}

OpEntry without_gradient(OpEntry e) {
  e.differentiable = false;
  return e;
}

OpEntry comparison(std::string name, std::function<Tensor(const Tensor&, const Tensor&)> f) {
  OpEntry e = binary(name, name, std::move(f));
  e.differentiable = false;
  return e;
}

/// i64 positions r % n for row r of an [rows, n] tensor, `width` of them per row: the index the
/// fixture's gather and log_softmax_gather use.
Tensor row_positions(const Shape& shape, std::int64_t width) {
  const std::int64_t n = shape.back();
  Shape out = shape;
  out.back() = width;
  Tensor t = empty(out, i64);
  std::int64_t* p = t.data<std::int64_t>();
  for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = k / width % n;
  return t;
}

std::vector<OpEntry> make_table() {
  using std::vector;
  const Tensor idx = tensor({2, 0, 0}, i64);  // repeats: index_add must add twice
  vector<OpEntry> t = {
      // --- elementwise, unary ---
      unary("neg", "neg", [](const Tensor& x) { return neg(x); }),
      unary("exp", "exp", [](const Tensor& x) { return exp(x); }),
      unary("log", "log", [](const Tensor& x) { return log(x); }, Domain::positive),
      unary("tanh", "tanh", [](const Tensor& x) { return tanh(x); }),
      unary("sigmoid", "sigmoid", [](const Tensor& x) { return sigmoid(x); }),
      unary("relu", "relu", [](const Tensor& x) { return relu(x); }, Domain::away_from_zero),
      unary("sqrt", "sqrt", [](const Tensor& x) { return sqrt(x); }, Domain::positive),
      unary("abs", "abs", [](const Tensor& x) { return abs(x); }, Domain::away_from_zero),
      unary("square", "square", [](const Tensor& x) { return square(x); }),
      unary("pow(x, 2)", "pow", [](const Tensor& x) { return pow(x, 2.0); }),
      unary("pow(x, 3)", "pow", [](const Tensor& x) { return pow(x, 3.0); }),
      unary("pow(x, 0.5)", "pow", [](const Tensor& x) { return pow(x, 0.5); }, Domain::positive),
      unary("pow(x, -1)", "pow", [](const Tensor& x) { return pow(x, -1.0); }, Domain::away_from_zero),
      unary("pow(x, 0)", "pow", [](const Tensor& x) { return pow(x, 0.0); }),
      unary("sign", "sign", [](const Tensor& x) { return sign(x); }, Domain::away_from_zero),
      unary("softplus", "softplus", [](const Tensor& x) { return softplus(x); }, Domain::wide),
      unary("softplus(beta 2, threshold 5)", "softplus", [](const Tensor& x) { return softplus(x * 3.0, 2, 5); },
            Domain::wide),
      unary("sin", "sin", [](const Tensor& x) { return sin(x); }, Domain::wide),
      unary("cos", "cos", [](const Tensor& x) { return cos(x); }, Domain::wide),
      unary("clamp(-1, 2)", "clamp", [](const Tensor& x) { return clamp(x, -1.0, 2.0); }, Domain::wide),
      unary("clamp(min 0.5)", "clamp", [](const Tensor& x) { return clamp(x, 0.5, std::nullopt); }, Domain::wide),
      unary("clamp(max -0.5)", "clip", [](const Tensor& x) { return clip(x, std::nullopt, -0.5); }, Domain::wide),
      unary("floor", "floor", [](const Tensor& x) { return floor(x); }, Domain::away_from_zero),
      unary("round", "round", [](const Tensor& x) { return round(x); }, Domain::away_from_zero),
      without_gradient(unary("isfinite", "isfinite", [](const Tensor& x) { return isfinite(x); })),
      unary("to", "to", [](const Tensor& x) { return x.to(f64); }),
      // --- elementwise, binary (broadcasting samples) ---
      binary("add", "add", [](const Tensor& a, const Tensor& b) { return a + b; }),
      binary("sub", "sub", [](const Tensor& a, const Tensor& b) { return a - b; }),
      binary("mul", "mul", [](const Tensor& a, const Tensor& b) { return a * b; }),
      binary("div", "div", [](const Tensor& a, const Tensor& b) { return a / b; }, Domain::away_from_zero),
      binary("pow", "pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }, Domain::positive),
      binary("maximum", "maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }),
      binary("minimum", "minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); }),
      comparison("eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); }),
      comparison("ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); }),
      comparison("lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); }),
      comparison("le", [](const Tensor& a, const Tensor& b) { return le(a, b); }),
      comparison("gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); }),
      comparison("ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); }),
      {.name = "where", .op = "where", .f = [](const Inputs& in) -> Out { return {where(in[0], in[1], in[2])}; },
       .samples = {{{3, 4}, {3, 4}, {3, 4}}, {{3, 1}, {4}, {2, 1, 1}}, {{}, {2}, {}}}, .masks = {0},
       .zero_size = {{0, 1}, {4}, {0, 4}}, .edge = "where"},
      {.name = "masked_fill", .op = "masked_fill",
       .f = [](const Inputs& in) -> Out { return {masked_fill(in[1], in[0], -7.5)}; },
       .samples = {{{3, 4}, {3, 4}}, {{4}, {2, 3, 4}}}, .masks = {0}, .zero_size = {{0, 1}, {0, 4}},
       .edge = "where"},
      // --- reductions: along axis 1 of the rows, or over everything ---
      rows("sum", "sum", [](const Tensor& x) -> Out { return {sum(x)}; }),
      rows("sum(axis)", "sum", [](const Tensor& x) -> Out { return {sum(x, 1)}; }),
      {.name = "sum(axes, keepdim)", .op = "sum",
       .f = [](const Inputs& in) -> Out { return {sum(in[0], {0, -1}, true)}; }, .samples = {{{2, 3, 4}}, {{1, 5}}},
       .zero_size = {{2, 0, 3}}, .no_edge = "the sweep's rows cover sum along an axis and over everything"},
      rows("mean", "mean", [](const Tensor& x) -> Out { return {mean(x)}; }),
      rows("mean(axis)", "mean", [](const Tensor& x) -> Out { return {mean(x, 1)}; }),
      [] {
        OpEntry e = rows("max", "max", [](const Tensor& x) -> Out { return {max(x)}; });
        e.zero_size = {};
        e.no_zero_size = "the maximum of no elements is refused, as in PyTorch";
        return e;
      }(),
      rows("max(axis)", "max", [](const Tensor& x) -> Out {
        auto [values, indices] = max(x, 1);
        return {values, indices};
      }),
      rows("logsumexp", "logsumexp", [](const Tensor& x) -> Out { return {logsumexp(x, 1)}; }),
      rows("norm(1)", "norm", [](const Tensor& x) -> Out { return {norm(x, 1, 1)}; }, Domain::away_from_zero),
      rows("norm(2)", "norm", [](const Tensor& x) -> Out { return {norm(x, 2, 1)}; }),
      rows("norm(inf)", "norm", [](const Tensor& x) -> Out { return {norm(x, std::numeric_limits<double>::infinity(), 1)}; }),
      rows("norm(2) of all", "norm", [](const Tensor& x) -> Out { return {norm(x)}; }),
      {.name = "norm(3, keepdim)", .op = "norm", .f = [](const Inputs& in) -> Out { return {norm(in[0], 3, {0, 2}, true)}; },
       .samples = {{{2, 3, 4}}}, .domain = Domain::away_from_zero, .zero_size = {{2, 0, 3}},
       .no_edge = "norm(1), norm(2) and norm(inf) carry the sweep"},
      without_gradient(rows("argmax", "argmax", [](const Tensor& x) -> Out { return {argmax(x, 1)}; })),
      without_gradient(rows("argmin", "argmin", [](const Tensor& x) -> Out { return {argmin(x, 1)}; })),
      rows("cumsum", "cumsum", [](const Tensor& x) -> Out { return {cumsum(x, 1)}; }),
      rows("sort", "sort", [](const Tensor& x) -> Out {
        auto [values, indices] = sort(x, 1);
        return {values, indices};
      }),
      rows("sort(descending)", "sort", [](const Tensor& x) -> Out {
        auto [values, indices] = sort(x, 1, true);
        return {values, indices};
      }),
      [] {
        // PyTorch orders tied values arbitrarily: the sweep's rows have no ties (rows_untied)
        OpEntry e = rows("topk", "topk", [](const Tensor& x) -> Out {
          auto [values, indices] = topk(x, std::min<std::int64_t>(2, x.shape()[1]), 1);
          return {values, indices};
        });
        e.edge = "rows_untied";
        return e;
      }(),
      // --- the softmax family ---
      rows("softmax", "softmax", [](const Tensor& x) -> Out { return {softmax(x, 1)}; }),
      rows("log_softmax", "log_softmax", [](const Tensor& x) -> Out { return {log_softmax(x, 1)}; }),
      rows("log_softmax_gather", "log_softmax_gather", [](const Tensor& x) -> Out {
        return {log_softmax_gather(x, -1, row_positions(x.shape(), 1))};
      }),
      {.name = "cosine_similarity", .op = "cosine_similarity",
       .f = [](const Inputs& in) -> Out { return {cosine_similarity(in[0], in[1], 1)}; },
       .samples = {{{3, 4}, {3, 4}}, {{2, 3, 4}, {3, 4}}, {{3, 1}, {1, 4}}}, .zero_size = {{0, 4}, {0, 4}},
       .edge = "rows2"},
      // --- shape ---
      {.name = "reshape", .op = "reshape", .f = [](const Inputs& in) -> Out { return {reshape(in[0], {-1, 2})}; },
       .samples = {{{3, 4}}, {{2}}}, .zero_size = {{0, 4}}, .no_edge = "moves values without arithmetic"},
      {.name = "flatten", .op = "flatten", .f = [](const Inputs& in) -> Out { return {flatten(in[0])}; },
       .samples = {{{3, 4}}, {{}}}, .zero_size = {{0, 4}}, .no_edge = "moves values without arithmetic"},
      {.name = "unsqueeze", .op = "unsqueeze", .f = [](const Inputs& in) -> Out { return {unsqueeze(in[0], -1)}; },
       .samples = {{{3, 4}}, {{}}}, .zero_size = {{0, 4}}, .no_edge = "moves values without arithmetic"},
      {.name = "squeeze", .op = "squeeze", .f = [](const Inputs& in) -> Out { return {squeeze(in[0], 1)}; },
       .samples = {{{3, 1, 4}}, {{3, 2}}}, .zero_size = {{0, 1}}, .no_edge = "moves values without arithmetic"},
      {.name = "permute", .op = "permute", .f = [](const Inputs& in) -> Out { return {permute(in[0], {2, 0, 1})}; },
       .samples = {{{2, 3, 4}}, {{1, 5, 1}}}, .zero_size = {{2, 0, 3}}, .no_edge = "moves values without arithmetic"},
      {.name = "transpose", .op = "transpose", .f = [](const Inputs& in) -> Out { return {transpose(in[0], 0, -1)}; },
       .samples = {{{3, 4}}, {{2, 3, 4}}}, .zero_size = {{0, 4}}, .no_edge = "moves values without arithmetic"},
      {.name = "expand", .op = "expand",
       .f = [](const Inputs& in) -> Out { return {expand(in[0], {2, in[0].numel() == 0 ? 0 : 3, 4})}; },
       .samples = {{{3, 1}}, {{4}}, {{}}}, .zero_size = {{0, 1}},
       .no_edge = "moves values without arithmetic (its gradient is sum_to's)"},
      {.name = "sum_to", .op = "sum_to", .f = [](const Inputs& in) -> Out { return {sum_to(in[0], {3, 1})}; },
       .samples = {{{2, 3, 4}}, {{3, 4}}}, .zero_size = {{0, 3, 4}}, .no_edge = "sum carries the sweep"},
      {.name = "slice", .op = "slice", .f = [](const Inputs& in) -> Out { return {slice(in[0], 1, -4, 5, 2)}; },
       .samples = {{{3, 7}}, {{2, 4, 1}}}, .zero_size = {{0, 7}}, .no_edge = "moves values without arithmetic"},
      {.name = "embed_slice", .op = "embed_slice",
       .f = [](const Inputs& in) -> Out { return {embed_slice(in[0], {in[0].shape()[0], 9}, 1, 1, 8, 3)}; },
       .samples = {{{3, 3}}}, .zero_size = {{0, 3}}, .no_edge = "moves values without arithmetic"},
      {.name = "concat", .op = "concat", .f = [](const Inputs& in) -> Out { return {concat({in[0], in[1], in[0]}, 1)}; },
       .samples = {{{3, 2}, {3, 4}}, {{2, 0}, {2, 1}}}, .zero_size = {{0, 2}, {0, 4}},
       .no_edge = "moves values without arithmetic"},
      {.name = "stack", .op = "stack", .f = [](const Inputs& in) -> Out { return {stack({in[0], in[1]}, -1)}; },
       .samples = {{{3, 4}, {3, 4}}, {{}, {}}}, .zero_size = {{0, 4}, {0, 4}},
       .no_edge = "moves values without arithmetic"},
      {.name = "split", .op = "split", .f = [](const Inputs& in) -> Out { return split(in[0], {1, 0, 3}, 0); },
       .samples = {{{4, 3}}, {{4}}}, .zero_size = {{4, 0}}, .no_edge = "moves values without arithmetic"},
      {.name = "unbind", .op = "unbind", .f = [](const Inputs& in) -> Out { return unbind(in[0], 1); },
       .samples = {{{3, 4}}, {{2, 3, 1}}}, .zero_size = {{0, 4}}, .no_edge = "moves values without arithmetic"},
      {.name = "unbind_permuted", .op = "unbind_permuted",
       .f = [](const Inputs& in) -> Out { return unbind_permuted(in[0], {2, 0, 1}); },
       .samples = {{{2, 3, 4}}, {{3, 1, 2}}}, .zero_size = {{0, 3, 4}}, .no_edge = "moves values without arithmetic"},
      {.name = "chunk", .op = "chunk", .f = [](const Inputs& in) -> Out { return chunk(in[0], 3, -1); },
       .samples = {{{2, 7}}, {{5}}}, .zero_size = {{0, 7}}, .no_edge = "moves values without arithmetic"},
      rows("pad", "pad", [](const Tensor& x) -> Out { return {pad(x, 1, 1, 2, -1.5)}; }),
      rows("pad(crop)", "pad", [](const Tensor& x) -> Out { return {pad(x, 1, -1, 1)}; }),
      rows("flip", "flip", [](const Tensor& x) -> Out { return {flip(x, {1})}; }),
      {.name = "flip(two axes)", .op = "flip", .f = [](const Inputs& in) -> Out { return {flip(in[0], {0, -1})}; },
       .samples = {{{2, 3, 4}}}, .zero_size = {{0, 3}}, .no_edge = "flip carries the sweep"},
      rows("roll", "roll", [](const Tensor& x) -> Out { return {roll(x, 1, 1)}; }),
      // --- indexing ---
      [] {
        OpEntry e = rows("index_select", "index_select", [](const Tensor& x) -> Out {
          return {index_select(x, 1, tensor({3, 0, 0}, i64))};
        });
        e.samples = {{{3, 4}}, {{2, 4, 5}}};
        return e;
      }(),
      {.name = "index_add", .op = "index_add",
       .f = [idx](const Inputs& in) -> Out { return {index_add({in[0].shape()[0], 4}, 1, idx, in[0])}; },
       .samples = {{{2, 3}}}, .zero_size = {{0, 3}}, .no_edge = "adds without rounding at these sizes"},
      rows("gather", "gather", [](const Tensor& x) -> Out { return {gather(x, 1, row_positions(x.shape(), 2))}; }),
      {.name = "scatter_add", .op = "scatter_add",
       .f = [](const Inputs& in) -> Out {
         return {scatter_add(in[0].shape(), 1, row_positions(in[0].shape(), 2), slice(in[0], 1, 0, 2))};
       },
       .samples = {{{3, 4}}, {{5, 2}}}, .zero_size = {{0, 4}}, .no_edge = "gather carries the sweep"},
      rows("unfold", "unfold", [](const Tensor& x) -> Out { return {unfold(x, 1, std::min<std::int64_t>(2, x.shape()[1]))}; }),
      {.name = "fold", .op = "fold",
       .f = [](const Inputs& in) -> Out { return {fold(in[0], {in[0].shape()[0], 7}, 1, 3, 2)}; },
       .samples = {{{2, 3, 3}}}, .zero_size = {{0, 3, 3}}, .no_edge = "unfold carries the sweep"},
      {.name = "one_hot", .op = "one_hot",
       .f = [](const Inputs& in) -> Out { return {one_hot(argmax(in[0], -1), in[0].shape().back() + 1)}; },
       .samples = {{{3, 4}}, {{5}}}, .differentiable = false, .zero_size = {{0, 4}},
       .no_edge = "takes integers (the argmax of the sweep's rows covers NaN and ties)"},
      // --- linear algebra ---
      {.name = "matmul", .op = "matmul", .f = [](const Inputs& in) -> Out { return {matmul(in[0], in[1])}; },
       .samples = {{{3, 4}, {4, 5}}, {{2, 3, 4}, {4, 2}}, {{2, 1, 3, 4}, {3, 4, 2}}, {{4}, {4, 5}}, {{3, 4}, {4}}, {{4}, {4}}},
       .zero_size = {{0, 4}, {4, 5}}, .edge = "matmul"},
      {.name = "matmul(a^T, b^T)", .op = "matmul",
       .f = [](const Inputs& in) -> Out { return {matmul(in[0], in[1], true, true)}; },
       .samples = {{{4, 3}, {5, 4}}, {{2, 4, 3}, {5, 4}}}, .zero_size = {{4, 0}, {5, 4}},
       .no_edge = "matmul carries the sweep"},
      {.name = "linear", .op = "linear", .f = [](const Inputs& in) -> Out { return {linear(in[0], in[1], in[2])}; },
       .samples = {{{6, 3}, {4, 3}, {4}}, {{2, 5, 3}, {2, 3}, {2}}}, .zero_size = {{0, 3}, {4, 3}, {4}},
       .edge = "linear"},
      {.name = "linear(no bias)", .op = "linear", .f = [](const Inputs& in) -> Out { return {linear(in[0], in[1])}; },
       .samples = {{{6, 3}, {4, 3}}, {{3}, {2, 3}}}, .zero_size = {{0, 3}, {4, 3}}, .no_edge = "linear carries the sweep"},
  };
  return t;
}

}  // namespace

const std::vector<OpEntry>& op_table() {
  static const std::vector<OpEntry> table = make_table();
  return table;
}

namespace {
/// 1 at every third element (0, 3, 6, ...), 0 elsewhere: the fixture's cond and mask.
Tensor every_third(const Shape& shape) {
  Tensor t = empty(shape, f64);
  double* p = t.data<double>();
  for (std::int64_t k = 0; k < t.numel(); ++k) p[k] = k % 3 == 0 ? 1 : 0;
  return t;
}
}  // namespace

Inputs sample_inputs(const OpEntry& entry, const std::vector<Shape>& shapes, std::uint64_t seed) {
  Inputs in;
  for (std::size_t k = 0; k < shapes.size(); ++k) {
    Generator gen(seed + k);
    const Shape& s = shapes[k];
    if (std::find(entry.masks.begin(), entry.masks.end(), k) != entry.masks.end()) {
      in.push_back(every_third(s));
      continue;
    }
    Tensor x;
    switch (entry.domain) {
      case Domain::any: x = uniform(s, -1, 1, f64, &gen); break;
      case Domain::wide: x = uniform(s, -3, 3, f64, &gen); break;
      case Domain::positive: x = uniform(s, 0.5, 1.5, f64, &gen); break;
      case Domain::away_from_zero: x = uniform(s, 0.5, 1.5, f64, &gen) * sign(uniform(s, -1, 1, f64, &gen)); break;
    }
    in.push_back(x.detach().requires_grad_());
  }
  return in;
}

}  // namespace xgrad::testing
