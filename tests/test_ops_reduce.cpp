// Reductions: float64 gradcheck + gradgradcheck over axes cases (one, several, negative, keepdim,
// size-1, rank-0 result, zero-size), closed-form gradients, exact values, and error messages.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/ranges.h>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {


struct ReduceCase {
  Shape shape;
  std::vector<std::int64_t> axes;
  bool keepdim;
};

/// One axis, several axes, negative axes, keepdim both ways, a size-1 reduced axis, a rank-0
/// result, zero-size (the empty axis reduced last: it is meaningful for sum and logsumexp only).
const std::vector<ReduceCase> kAxisCases = {
    {{2, 3, 4}, {1}, false},  {{2, 3, 4}, {1}, true},   {{2, 3, 4}, {0, 2}, false}, {{2, 3, 4}, {0, 2}, true},
    {{2, 3, 4}, {-1}, false}, {{2, 3, 4}, {-1, 0}, true}, {{3, 1, 4}, {1}, false},  {{5}, {0}, false},
    {{0, 3}, {1}, true},      {{0, 3}, {0}, false},
};

/// Shapes for reductions over all elements: plain, size-1 dims, rank 0, zero-size.
const std::vector<Shape> kAllShapes = {{2, 3, 4}, {3, 1, 4}, {}, {0, 3}};

std::string describe(const ReduceCase& c) {
  return fmt::format("shape {} axes {} keepdim {}", to_string(c.shape), c.axes, c.keepdim);
}

/// f64 values 0.1 * (a permutation of 0..n-1), requiring grad: distinct, no ties within eps.
Tensor distinct(const Shape& shape, std::uint64_t seed = 1) {
  Tensor t = empty(shape, f64);
  std::vector<double> v(static_cast<std::size_t>(t.numel()));
  std::iota(v.begin(), v.end(), 0.0);
  std::mt19937_64 engine(seed);
  std::shuffle(v.begin(), v.end(), engine);
  for (std::size_t i = 0; i < v.size(); ++i) t.data<double>()[i] = 0.1 * v[i] - 1;
  return t.requires_grad_();
}

/// For each flat element of `shape`, the flat index in the reduced result of the element it
/// is reduced into (its multi-index with the reduced axes dropped, row-major).
std::vector<std::size_t> groups(const Shape& shape, std::vector<std::int64_t> axes) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  for (auto& a : axes) a = a < 0 ? a + rank : a;
  std::vector<std::size_t> out(static_cast<std::size_t>(numel(shape)));
  for (std::size_t k = 0; k < out.size(); ++k) {
    std::int64_t rest = static_cast<std::int64_t>(k), key = 0, stride = 1;
    for (std::int64_t d = rank - 1; d >= 0; --d) {
      const std::int64_t i = rest % shape[d];
      rest /= shape[d];
      if (std::find(axes.begin(), axes.end(), d) != axes.end()) continue;
      key += i * stride;
      stride *= shape[d];
    }
    out[k] = static_cast<std::size_t>(key);
  }
  return out;
}

}  // namespace

// --- sum ----------------------------------------------------------------------------------------

TEST_CASE("sum: gradcheck, closed form, values") {
  for (const Shape& s : kAllShapes) {
    INFO("sum of all, shape ", to_string(s));
    check_gradients([](const Inputs& in) { return sum(in[0]); }, {input(s)});
  }
  for (const auto& c : kAxisCases) {
    INFO(describe(c));
    check_gradients([c](const Inputs& in) { return sum(in[0], c.axes, c.keepdim); }, {input(c.shape)});
  }

  // d/dx sum(x) = 1
  Tensor x = input({2, 3, 4});
  sum(x).backward();
  check_values(x.grad(), {2, 3, 4}, std::vector<double>(24, 1.0));
  // d/dx (v . sum(x, {0, 2})) = v broadcast back over the reduced axes
  Tensor v = input({3}, -1, 1, 5).detach();
  Tensor g = autograd::grad({sum(x, {0, 2})}, {x}, {v})[0];
  auto key = groups({2, 3, 4}, {0, 2});
  auto gs = g.to_vector<double>(), vs = v.to_vector<double>();
  double worst = 0;
  for (std::size_t k = 0; k < gs.size(); ++k) worst = std::max(worst, std::abs(gs[k] - vs[key[k]]));
  CHECK(worst <= 1e-12);

  const Tensor m = tensor({{1, 2, 3}, {4, 5, 6}}, f64);
  check_values(sum(m, 1), {2}, {6, 15});
  check_values(sum(m, 0), {3}, {5, 7, 9});
  check_values(sum(m, -1), {2}, {6, 15});
  check_values(sum(m, 1, true), {2, 1}, {6, 15});
  check_values(sum(m, {0, 1}), {}, {21});
  check_values(sum(m), {}, {21});
  check_values(sum(reshape(arange(24, f64), {2, 3, 4}), {0, 2}), {3}, {60, 92, 124});
  check_values(sum(zeros({0, 3}, f64), 0), {3}, {0, 0, 0});
  check_values(sum(scalar(2.5, f64)), {}, {2.5});
  Tensor k = sum(tensor({{1, 2}, {3, 4}}, i64), 0);
  CHECK(k.dtype() == i64);
  check_values(k, {2}, {4, 6});
}

// --- mean ---------------------------------------------------------------------------------------

TEST_CASE("mean: gradcheck, closed form, values") {
  for (const Shape& s : {Shape{2, 3, 4}, Shape{3, 1, 4}, Shape{}}) {
    INFO("mean of all, shape ", to_string(s));
    check_gradients([](const Inputs& in) { return mean(in[0]); }, {input(s)});
  }
  for (const auto& c : kAxisCases) {
    if (c.shape == Shape{0, 3} && c.axes == std::vector<std::int64_t>{0}) continue;  // 0 / 0
    INFO(describe(c));
    check_gradients([c](const Inputs& in) { return mean(in[0], c.axes, c.keepdim); }, {input(c.shape)});
  }

  // the gradient of a mean is 1/n, n the number of elements averaged
  Tensor x = input({2, 3, 4});
  mean(x).backward();
  CHECK(max_abs_diff(x.grad(), full({2, 3, 4}, 1.0 / 24, f64)) <= 1e-12);
  Tensor g = autograd::grad({sum(mean(x, {0, 2}))}, {x})[0];
  CHECK(max_abs_diff(g, full({2, 3, 4}, 1.0 / 8, f64)) <= 1e-12);
  g = autograd::grad({sum(mean(x, -2, true))}, {x})[0];
  CHECK(max_abs_diff(g, full({2, 3, 4}, 1.0 / 3, f64)) <= 1e-12);

  const Tensor m = tensor({{1, 2, 3}, {4, 5, 6}}, f64);
  check_values(mean(m, 1), {2}, {2, 5});
  check_values(mean(m, 0, true), {1, 3}, {2.5, 3.5, 4.5});
  check_values(mean(m), {}, {3.5});
  check_values(mean(reshape(arange(24, f64), {2, 3, 4}), {0, 2}), {3}, {7.5, 11.5, 15.5});
  check_values(mean(zeros({0, 3}, f64), 1), {0}, {});
}

// --- max ----------------------------------------------------------------------------------------

TEST_CASE("max along an axis: gradcheck, indices, values") {
  struct MaxCase {
    Shape shape;
    std::int64_t axis;
    bool keepdim;
  };
  const std::vector<MaxCase> cases = {
      {{3, 4}, 1, false},    {{3, 4}, 0, true},   {{2, 3, 4}, -1, false}, {{2, 3, 4}, 1, true},
      {{3, 1, 4}, 1, false}, {{5}, 0, false},     {{0, 3}, 1, false},
  };
  for (const auto& c : cases) {
    INFO("shape ", to_string(c.shape), " axis ", c.axis, " keepdim ", c.keepdim);
    check_gradients([c](const Inputs& in) { return max(in[0], c.axis, c.keepdim).values; }, {distinct(c.shape)});
  }

  const Tensor m = tensor({{1, 5, 3}, {7, 2, 9}, {4, 8, 6}, {0, -1, 10}}, f64);
  auto rows = max(m, 1);
  check_values(rows.values, {4}, {5, 9, 8, 10});
  CHECK(rows.indices.dtype() == i64);
  check_values(rows.indices, {4}, {1, 2, 1, 2});
  auto cols = max(m, -2, true);
  check_values(cols.values, {1, 3}, {7, 8, 10});
  check_values(cols.indices, {1, 3}, {1, 2, 3});
  // a middle axis of a rank-3 tensor, with a tie (5, 5) that resolves to the first
  auto mid = max(reshape(tensor({3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8}, f64), {2, 3, 2}), 1);
  check_values(mid.values, {2, 2}, {5, 9, 5, 8});
  check_values(mid.indices, {2, 2}, {2, 2, 1, 2});
  auto one = max(tensor({2, 7, 3}, f64), 0);
  check_values(one.values, {}, {7});
  check_values(one.indices, {}, {1});
  check_values(max(zeros({0, 3}, f64), 1).indices, {0}, {});

  // the gradient goes to the maximum only, the first of ties
  Tensor x = tensor({{1, 5, 3}, {7, 2, 9}, {4, 8, 6}, {0, -1, 10}}, f64).requires_grad_();
  sum(max(x, 1).values).backward();
  check_values(x.grad(), {4, 3}, {0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1});
  Tensor t = tensor({3, 1, 3}, f64).requires_grad_();
  max(t, 0).values.backward();
  check_values(t.grad(), {3}, {1, 0, 0});
}

TEST_CASE("max along every axis equals a plain loop: ties keep the first index, a NaN the first NaN, any thread count") {
  // values from a few levels, so that ties are common, and NaNs in some columns; large enough
  // that the columns split across threads at uneven places
  std::mt19937 rng(11);
  for (const Shape& shape : {Shape{3, 5, 2, 7}, Shape{2, 6, 9001}, Shape{9001, 6}}) {
    std::vector<double> v(static_cast<std::size_t>(numel(shape)));
    for (double& e : v) e = rng() % 50 == 0 ? std::nan("") : static_cast<double>(rng() % 4);
    for (Dtype dtype : {f64, f32})
      for (int threads : {1, 2}) {
        const int before = num_threads();
        set_num_threads(threads);
        const Tensor x = f64_tensor(v, shape).to(dtype);
        for (std::int64_t axis = 0; axis < static_cast<std::int64_t>(shape.size()); ++axis) {
          INFO("shape ", to_string(shape), " axis ", axis, " ", dtype_name(dtype), " threads ", threads);
          std::int64_t outer = 1, inner = 1;
          for (std::int64_t d = 0; d < axis; ++d) outer *= shape[d];
          for (std::size_t d = axis + 1; d < shape.size(); ++d) inner *= shape[d];
          const std::int64_t n = shape[axis];
          std::vector<double> want_values;
          std::vector<std::int64_t> want_indices;
          for (std::int64_t o = 0; o < outer; ++o)
            for (std::int64_t i = 0; i < inner; ++i) {
              std::int64_t best = 0;
              for (std::int64_t k = 1; k < n && !std::isnan(v[(o * n + best) * inner + i]); ++k) {
                const double e = v[(o * n + k) * inner + i];
                if (std::isnan(e) || e > v[(o * n + best) * inner + i]) best = k;
              }
              want_values.push_back(v[(o * n + best) * inner + i]);
              want_indices.push_back(best);
            }
          const auto got = max(x, axis);
          CHECK(got.indices.to_vector<std::int64_t>() == want_indices);
          const std::vector<double> values = got.values.to_vector<double>();
          bool same = values.size() == want_values.size();
          for (std::size_t e = 0; same && e < values.size(); ++e)
            same = std::isnan(want_values[e]) ? std::isnan(values[e]) : values[e] == want_values[e];
          CHECK(same);
        }
        set_num_threads(before);
      }
  }
}

TEST_CASE("max of all: gradcheck, values") {
  for (const Shape& s : {Shape{3, 4}, Shape{2, 1, 3}, Shape{7}, Shape{}}) {
    INFO("shape ", to_string(s));
    check_gradients([](const Inputs& in) { return max(in[0]); }, {distinct(s, 2)});
  }
  check_values(max(tensor({{1, 5, 3}, {7, 2, 9}, {4, 8, 6}, {0, -1, 10}}, f64)), {}, {10});
  check_values(max(scalar(2.5, f64)), {}, {2.5});
  check_values(max(tensor({-3, -1, -2}, i64)), {}, {-1});
  Tensor x = tensor({{1, 4}, {6, 2}}, f64).requires_grad_();
  max(x).backward();
  check_values(x.grad(), {2, 2}, {0, 0, 1, 0});
}

// --- logsumexp ----------------------------------------------------------------------------------

TEST_CASE("logsumexp: gradcheck, closed form (softmax), values") {
  for (const auto& c : kAxisCases) {
    INFO(describe(c));
    check_gradients([c](const Inputs& in) { return logsumexp(in[0], c.axes, c.keepdim); },
                    {input(c.shape, -2, 2)});
  }

  // d/dx (v . logsumexp(x, axes)) = v * softmax(x) over each reduced group
  for (const auto& c : {ReduceCase{{3, 4}, {1}, false}, ReduceCase{{2, 3, 4}, {0, 2}, true}}) {
    INFO(describe(c));
    Tensor x = input(c.shape, -3, 3);
    Tensor y = logsumexp(x, c.axes, c.keepdim);
    Tensor v = input(y.shape(), -1, 1, 5).detach();
    Tensor g = autograd::grad({y}, {x}, {v})[0];
    auto key = groups(c.shape, c.axes);
    auto xs = x.to_vector<double>(), gs = g.to_vector<double>(), vs = v.to_vector<double>();
    auto ys = y.to_vector<double>();
    std::vector<double> total(ys.size(), 0.0);
    for (std::size_t k = 0; k < xs.size(); ++k) total[key[k]] += std::exp(xs[k]);
    double worst = 0;
    for (std::size_t k = 0; k < xs.size(); ++k)
      worst = std::max(worst, std::abs(gs[k] - vs[key[k]] * std::exp(xs[k]) / total[key[k]]));
    CHECK(worst <= 1e-12);
    // and the forward value is the log of each group's sum of exponentials
    double worst_y = 0;
    for (std::size_t j = 0; j < ys.size(); ++j) worst_y = std::max(worst_y, std::abs(ys[j] - std::log(total[j])));
    CHECK(worst_y <= 1e-12);
  }

  // softmax rows sum to 1
  Tensor p = softmax(input({4, 5}, -3, 3), 1);
  CHECK(max_abs_diff(sum(p, 1), ones({4}, f64)) <= 1e-12);

  Tensor small = tensor({{std::log(1.0), std::log(2.0), std::log(5.0)}, {0, 0, 0}}, f64);
  Tensor lse = logsumexp(small, 1, true);
  CHECK(lse.shape() == Shape{2, 1});
  CHECK(max_abs_diff(lse, tensor({{std::log(8.0)}, {std::log(3.0)}}, f64)) <= 1e-12);
  // stable for large magnitudes
  CHECK(logsumexp(tensor({1000, 1000}, f64), 0).item() == 1000 + std::log(2.0));
  CHECK(logsumexp(tensor({-1000, -1000}, f64), 0).item() == -1000 + std::log(2.0));
  // all -inf: -inf with a zero gradient; an empty axis: -inf
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = tensor({-inf, -inf}, f64).requires_grad_();
  Tensor y = logsumexp(x, 0);
  CHECK(y.item() == -inf);
  y.backward();
  check_values(x.grad(), {2}, {0, 0});
  check_values(logsumexp(zeros({0, 3}, f64), 0), {3}, {-inf, -inf, -inf});
}

// --- softmax, log_softmax ------------------------------------------------------------------------

/// log_softmax of every row along `axis` in long double, the reference for both kernels.
std::vector<double> reference_log_softmax(const Tensor& x, std::int64_t axis) {
  const Shape& s = x.shape();
  std::int64_t outer = 1, n = s[axis], inner = 1;
  for (std::int64_t d = 0; d < axis; ++d) outer *= s[d];
  for (std::int64_t d = axis + 1; d < static_cast<std::int64_t>(s.size()); ++d) inner *= s[d];
  auto v = x.to_vector<double>();
  std::vector<double> out(v.size());
  for (std::int64_t o = 0; o < outer; ++o)
    for (std::int64_t i = 0; i < inner; ++i) {
      long double total = 0;
      for (std::int64_t j = 0; j < n; ++j) total += std::exp(static_cast<long double>(v[(o * n + j) * inner + i]));
      for (std::int64_t j = 0; j < n; ++j) {
        const std::int64_t k = (o * n + j) * inner + i;
        out[k] = static_cast<double>(v[k] - std::log(total));
      }
    }
  return out;
}

TEST_CASE("softmax and log_softmax: every axis of odd shapes, gradcheck and gradgradcheck, long-double values") {
  struct Case {
    Shape shape;
    std::int64_t axis;
  };
  for (const auto& c : {Case{{7}, 0}, Case{{3, 5}, 1}, Case{{3, 5}, 0}, Case{{2, 3, 4}, 1}, Case{{2, 1, 19}, -1},
                        Case{{1, 4, 3}, 0}, Case{{4, 17}, -1}}) {
    INFO("shape ", c.shape, " axis ", c.axis);
    const std::int64_t a = c.axis < 0 ? c.axis + static_cast<std::int64_t>(c.shape.size()) : c.axis;
    check_gradients([c](const Inputs& in) { return log_softmax(in[0], c.axis); }, {input(c.shape, -3, 3)});
    check_gradients([c](const Inputs& in) { return softmax(in[0], c.axis); }, {input(c.shape, -3, 3)});
    // values in f64 and f32 (the f32 rows of 17 and 19 run the vector kernel and its scalar tail)
    Tensor x = input(c.shape, -3, 3, 9).detach();
    auto expected = reference_log_softmax(x, a);
    for (Dtype d : {f64, f32}) {
      const double tolerance = d == f64 ? 1e-14 : 2e-6;
      auto got = log_softmax(x.to(d), c.axis).to_vector<double>();
      auto probs = softmax(x.to(d), c.axis).to_vector<double>();
      double worst = 0, worst_p = 0;
      for (std::size_t k = 0; k < got.size(); ++k) {
        worst = std::max(worst, std::abs(got[k] - expected[k]));
        worst_p = std::max(worst_p, std::abs(probs[k] - std::exp(expected[k])));
      }
      CHECK(worst <= tolerance);
      CHECK(worst_p <= tolerance);
    }
  }
  // the first-order backward (fused) equals the composed one used under create_graph
  Tensor x = input({5, 23}, -4, 4, 3);
  Tensor v = input({5, 23}, -1, 1, 4).detach();
  for (Dtype d : {f64, f32}) {
    Tensor xd = x.detach().to(d).requires_grad_();
    Tensor vd = v.to(d);
    Tensor fused = autograd::grad({log_softmax(xd, 1)}, {xd}, {vd})[0];
    Tensor composed = autograd::grad({log_softmax(xd, 1)}, {xd}, {vd}, true)[0];
    CHECK(max_abs_diff(fused, composed) <= (d == f64 ? 1e-14 : 1e-6));
    fused = autograd::grad({softmax(xd, 1)}, {xd}, {vd})[0];
    composed = autograd::grad({softmax(xd, 1)}, {xd}, {vd}, true)[0];
    CHECK(max_abs_diff(fused, composed) <= (d == f64 ? 1e-14 : 1e-6));
  }
  // -inf entries get probability 0; a row of only -inf has none to give: NaN, as in PyTorch
  const double inf = std::numeric_limits<double>::infinity();
  Tensor masked = tensor({{0.0, -inf, 0.0}, {-inf, -inf, -inf}}, f64);
  auto p = softmax(masked, 1).to_vector<double>();
  CHECK(p[0] == 0.5);
  CHECK(p[1] == 0);
  CHECK(std::isnan(p[3]));
  CHECK(log_softmax(masked, 1).to_vector<double>()[1] == -inf);
  CHECK(std::isnan(log_softmax(masked, 1).to_vector<double>()[4]));
  // errors name the op
  CHECK(matches(error_of([] { softmax(scalar(1, f64), 0); }), R"(softmax: .*scalar)"));
  CHECK(matches(error_of([] { log_softmax(ones({2, 3}, f64), 2); }), R"(log_softmax: .*2.*\[2, 3\])"));
  CHECK(matches(error_of([] { log_softmax(ones({2, 3}, i64), 1); }), R"(log_softmax: .*i64)"));
}

TEST_CASE("log_softmax_gather: equals gather(log_softmax), every axis, gradcheck and gradgradcheck, errors") {
  struct Case {
    Shape shape;
    std::int64_t axis;
  };
  for (const auto& c : {Case{{7}, 0}, Case{{3, 5}, 1}, Case{{3, 5}, 0}, Case{{2, 3, 4}, 1}, Case{{2, 1, 19}, -1},
                        Case{{4, 17}, -1}}) {
    INFO("shape ", c.shape, " axis ", c.axis);
    const std::int64_t a = c.axis < 0 ? c.axis + static_cast<std::int64_t>(c.shape.size()) : c.axis;
    Shape picks = c.shape;
    picks[a] = 1;
    const Tensor index = randint(0, c.shape[a], picks);
    check_gradients([&](const Inputs& in) { return log_softmax_gather(in[0], c.axis, index); }, {input(c.shape, -3, 3)});
    // the same numbers as the two ops it fuses, computed the same way: equal to the last bit
    Tensor x = input(c.shape, -3, 3, 9).detach();
    for (Dtype d : {f64, f32}) {
      CHECK(log_softmax_gather(x.to(d), c.axis, index).to_vector<double>() ==
            gather(log_softmax(x.to(d), c.axis), c.axis, index).to_vector<double>());
      // fused first-order backward = the composed one (create_graph) = the unfused ops' gradient
      Tensor xd = x.to(d).requires_grad_();
      Tensor v = input(picks, -1, 1, 4).detach().to(d);
      Tensor fused = autograd::grad({log_softmax_gather(xd, c.axis, index)}, {xd}, {v})[0];
      Tensor composed = autograd::grad({log_softmax_gather(xd, c.axis, index)}, {xd}, {v}, true)[0];
      Tensor unfused = autograd::grad({gather(log_softmax(xd, c.axis), c.axis, index)}, {xd}, {v})[0];
      CHECK(max_abs_diff(fused, composed) <= (d == f64 ? 1e-14 : 1e-6));
      CHECK(max_abs_diff(fused, unfused) <= (d == f64 ? 1e-14 : 1e-6));
    }
  }
  CHECK(matches(error_of([] { log_softmax_gather(scalar(1, f64), 0, scalar(0, i64)); }), R"(log_softmax_gather: .*scalar)"));
  CHECK(matches(error_of([] { log_softmax_gather(ones({2, 3}, f64), 1, zeros({2}, i64)); }),
                R"(^log_softmax_gather: index must be i64 of shape \[2, 1\] \(x \[2, 3\] with 1 along axis 1\), got i64 \[2\])"));
  CHECK(matches(error_of([] { log_softmax_gather(ones({2, 3}, f64), 1, zeros({2, 1})); }), R"(index must be i64 .*got f32)"));
  CHECK(matches(error_of([] { log_softmax_gather(ones({2, 3}, f64), 1, tensor({{0}, {3}}, i64)); }),
                R"(^log_softmax_gather: index 3 is out of range for axis 1 of size 3 \(shape \[2, 3\]\))"));
  CHECK(matches(error_of([] { log_softmax_gather(ones({2, 3}, f64), 1, tensor({{-1}, {0}}, i64)); }), "index -1 is out of range"));
  CHECK(matches(error_of([] { log_softmax_gather(ones({2, 3}, i64), 1, zeros({2, 1}, i64)); }), R"(log_softmax_gather: .*i64)"));
}

TEST_CASE("log_softmax_gather: backward writes its gradient over logits that nothing else reads, and over no others") {
  for (Dtype d : {f64, f32})
    for (std::int64_t axis : {-1, 0}) {
      INFO(dtype_name(d), " axis ", axis);
      const Tensor h = input({64, 48}, -1, 1, 3).detach().to(d), w = input({300, 48}, -1, 1, 5).detach().to(d);
      const Tensor index = randint(0, axis == 0 ? 64 : 300, axis == 0 ? Shape{1, 300} : Shape{64, 1});
      const Tensor v = input(index.shape(), -1, 1, 7).detach().to(d);
      auto loss_of = [&](const Tensor& weight, Tensor* logits) {
        Tensor z = linear(h, weight);
        if (logits) *logits = z;
        return sum(log_softmax_gather(z, axis, index) * v);
      };
      const std::size_t logits_bytes = 64 * 300 * dtype_size(d);
      // The user keeps the logits: backward must leave them as they were.
      Tensor kept_w = w.detach().requires_grad_(), kept;
      Tensor loss = loss_of(kept_w, &kept);
      const std::vector<double> before = kept.to_vector<double>();
      reset_peak_memory_stats();
      const std::size_t base_kept = memory_stats().in_use;
      loss.backward();
      const std::size_t peak_kept = memory_stats().peak - base_kept;
      CHECK(kept.to_vector<double>() == before);
      // Nothing else holds them: the same gradient to the bit, with one [64, 300] buffer less at the peak.
      Tensor free_w = w.detach().requires_grad_();
      loss = loss_of(free_w, nullptr);
      reset_peak_memory_stats();
      const std::size_t base_free = memory_stats().in_use;
      loss.backward();
      const std::size_t peak_free = memory_stats().peak - base_free;
      CHECK(free_w.grad().to_vector<double>() == kept_w.grad().to_vector<double>());
      CHECK(peak_free + logits_bytes <= peak_kept);
      // retain_graph: the second backward reads the logits again, so the first must not overwrite them.
      Tensor twice_w = w.detach().requires_grad_();
      loss = loss_of(twice_w, nullptr);
      loss.backward({}, true);
      loss.backward();
      CHECK(twice_w.grad().to_vector<double>() == (kept_w.grad() * 2).to_vector<double>());
    }
  // No rows at all: nothing to overwrite, and the weight's gradient is zero.
  Tensor w = input({300, 48}, -1, 1, 5).detach().requires_grad_();
  sum(log_softmax_gather(linear(zeros({0, 48}, f64), w), -1, zeros({0, 1}, i64))).backward();
  CHECK(w.grad().shape() == Shape{300, 48});
  CHECK(max_abs_diff(w.grad(), zeros({300, 48}, f64)) == 0);
}

// --- errors -------------------------------------------------------------------------------------

TEST_CASE("reductions: errors name the op and the shape") {
  const Tensor x = ones({2, 3}, f64);
  std::string e = error_of([&] { sum(x, 5); });
  CHECK_MESSAGE(matches(e, R"(sum: .*5.*\[2, 3\])"), e);
  e = error_of([&] { sum(x, {0, 2}); });
  CHECK_MESSAGE(matches(e, R"(sum: .*2.*\[2, 3\])"), e);
  e = error_of([&] { sum(x, {1, -1}); });
  CHECK_MESSAGE(matches(e, R"(sum: .*repeated.*\[2, 3\])"), e);
  e = error_of([&] { mean(x, -3); });
  CHECK_MESSAGE(matches(e, R"(mean: .*-3.*\[2, 3\])"), e);
  e = error_of([&] { max(x, 2); });
  CHECK_MESSAGE(matches(e, R"(max: .*2.*\[2, 3\])"), e);
  e = error_of([&] { logsumexp(x, 5); });
  CHECK_MESSAGE(matches(e, R"(logsumexp: .*5.*\[2, 3\])"), e);
  // max over nothing has no value
  e = error_of([&] { max(zeros({0, 3}, f64), 0); });
  CHECK_MESSAGE(matches(e, R"(max: .*\[0, 3\])"), e);
  e = error_of([&] { max(zeros({0, 3}, f64)); });
  CHECK_MESSAGE(matches(e, R"(max: .*\[0, 3\])"), e);
  // floating-only reductions on i64
  const Tensor k = tensor({1, 2}, i64);
  e = error_of([&] { logsumexp(k, 0); });
  CHECK_MESSAGE(matches(e, R"(logsumexp: .*i64)"), e);
  e = error_of([&] { mean(k); });
  CHECK_MESSAGE(matches(e, R"(mean: .*i64)"), e);
}
