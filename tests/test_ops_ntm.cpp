// The Neural Turing Machine's addressing ops: softplus (primitive), cosine_similarity and roll
// (composites). Float64 gradcheck + gradgradcheck over several shapes (broadcasting, size-1,
// zero-size, odd sizes), closed forms, edge values, errors, and PyTorch's values and gradients
// from tests/fixtures (written by make_fixtures.py).
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// The first derivative of sum(f(x) * v) with respect to x, with or without its graph.
Tensor grad_of(const std::function<Tensor(const Tensor&)>& f, const Tensor& x, const Tensor& v,
               bool create_graph = false) {
  return autograd::grad({f(x)}, {x}, {v}, create_graph)[0];
}

/// Elementwise: NaN where `want` is NaN, equal where it is infinite, and within
/// tolerance * max(1, |want|) elsewhere.
void check_matches(const Tensor& got, const Tensor& want, double tolerance) {
  INFO("got ", to_string(got), "\nwant ", to_string(want));
  REQUIRE(got.shape() == want.shape());
  auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double worst = 0;
  std::size_t worst_at = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(b[i])) {
      CHECK_MESSAGE(std::isnan(a[i]), "element ", i, ": got ", a[i], ", want NaN");
    } else if (std::isinf(b[i])) {
      CHECK_MESSAGE(a[i] == b[i], "element ", i, ": got ", a[i], ", want ", b[i]);
    } else {
      double e = std::abs(a[i] - b[i]) / std::max(1.0, std::abs(b[i]));
      if (!(e <= worst)) worst = e, worst_at = i;  // a NaN where a number is wanted is the worst
    }
  }
  INFO("worst element ", worst_at, ": relative error ", worst);
  CHECK(worst <= tolerance);
}

// --- PyTorch fixtures --------------------------------------------------------------------------

// A fixture file holds inputs, outputs ("output_*"), upstream gradients ("grad_output.<output>")
// and PyTorch's gradients of the inputs ("grad.<input>").

using Outputs = std::map<std::string, Tensor>;

/// Runs `run` on the fixture's inputs (fresh leaves), backpropagates its upstream gradients,
/// and compares every output and input gradient with PyTorch's: within 1e-12 (f64) or 1e-5
/// (f32, the parity tests' bound) of max(1, |value|), NaN and infinities exactly.
void check_fixture(const std::string& op, const std::vector<std::string>& input_names,
                   const std::function<Outputs(std::map<std::string, Tensor>&)>& run,
                   const std::vector<std::string>& unchecked_grads = {}) {
  for (std::string tag : {"f64", "f32"}) {
    const std::string name = op + "_" + tag;
    INFO("fixture ", name);
    Fixture f(name);
    const Dtype dtype = tag == "f64" ? f64 : f32;
    const double tolerance = dtype == f64 ? 1e-12 : 1e-5;
    std::map<std::string, Tensor> in;
    for (const auto& key : input_names) {
      in[key] = f[key].clone().detach().requires_grad_();
      REQUIRE(in[key].dtype() == dtype);
    }
    Outputs outputs = run(in);
    REQUIRE(!outputs.empty());
    std::vector<Tensor> ys, vs;
    for (const auto& [key, y] : outputs) {
      INFO("output ", key);
      CHECK(y.dtype() == dtype);
      check_matches(y, f[key], tolerance);
      ys.push_back(y);
      vs.push_back(f["grad_output." + key]);
    }
    std::vector<Tensor> xs;
    for (const auto& key : input_names) xs.push_back(in[key]);
    auto grads = autograd::grad(ys, xs, vs);
    for (std::size_t i = 0; i < xs.size(); ++i) {
      if (std::find(unchecked_grads.begin(), unchecked_grads.end(), input_names[i]) != unchecked_grads.end())
        continue;
      INFO("gradient of ", input_names[i]);
      check_matches(grads[i], f["grad." + input_names[i]], tolerance);
    }
  }
}

}  // namespace

// --- softplus ------------------------------------------------------------------------------------

TEST_CASE("softplus: gradcheck and gradgradcheck, beta and threshold, both regimes") {
  struct Case {
    double beta, threshold, low, high;
  };
  // the default; beta != 1 with the threshold inside the range (beta x crosses it); beta < 1;
  // everything past the threshold (the linear regime, second derivative 0)
  const std::vector<Case> cases = {{1, 20, -4, 4}, {2, 1, -2, 2}, {0.5, 1.5, -6, 6}, {1, 2, 3, 5}};
  const std::vector<Shape> shapes = {{2, 3}, {3, 1, 4}, {}, {0, 3}, {5, 7}, {1}};
  for (const auto& c : cases) {
    for (const Shape& s : shapes) {
      INFO("beta ", c.beta, ", threshold ", c.threshold, ", shape ", to_string(s));
      check_gradients([c](const Inputs& in) { return softplus(in[0], c.beta, c.threshold); },
                      {input(s, c.low, c.high, 3)});
    }
  }
  // softplus inside a broadcast: the gradient of the smaller operand is summed
  check_gradients([](const Inputs& in) { return softplus(in[0] * in[1], 1.5); },
                  {input({3, 1, 4}, -2, 2, 4), input({5, 4}, -2, 2, 5)});
}

TEST_CASE("softplus: values and derivatives in closed form, f64 and f32") {
  const std::vector<std::pair<double, double>> params = {{1, 20}, {2, 5}, {0.5, 1.5}, {3, 0}};
  for (const auto& [beta, threshold] : params) {
    INFO("beta ", beta, ", threshold ", threshold);
    Tensor x = (iota({6, 7}) * (60.0 / 41) - 30.0).requires_grad_();  // -30 to 30, no threshold hit
    Tensor v = input({6, 7}, -1, 1, 7).detach();
    Tensor y = softplus(x, beta, threshold);
    Tensor dx = grad_of([&](const Tensor& t) { return softplus(t, beta, threshold); }, x, v, true);
    Tensor ddx = autograd::grad({dx}, {x}, {ones_like(dx)})[0];
    auto xs = x.to_vector<double>(), vs = v.to_vector<double>(), ys = y.to_vector<double>(),
         ds = dx.to_vector<double>(), dds = ddx.to_vector<double>();
    double worst_y = 0, worst_d = 0, worst_dd = 0;
    int linear = 0;
    for (std::size_t i = 0; i < xs.size(); ++i) {
      const double bx = beta * xs[i], s = 1 / (1 + std::exp(-bx));
      const bool above = bx > threshold;
      linear += above;
      const double want_y = above ? xs[i] : std::log1p(std::exp(bx)) / beta;
      worst_y = std::max(worst_y, std::abs(ys[i] - want_y) / std::max(1.0, std::abs(want_y)));
      worst_d = std::max(worst_d, std::abs(ds[i] - vs[i] * (above ? 1 : s)));
      worst_dd = std::max(worst_dd, std::abs(dds[i] - vs[i] * (above ? 0 : beta * s * (1 - s))));
    }
    CHECK(linear > 0);  // both regimes are exercised
    CHECK(linear < static_cast<int>(xs.size()));
    CHECK(worst_y <= 1e-15);
    CHECK(worst_d <= 1e-15);
    CHECK(worst_dd <= 1e-15);
    // f32 computes in f32, beta and threshold in f32 too, and agrees with f64 to f32 precision
    Tensor y32 = softplus(x.detach().to(f32), beta, threshold);
    CHECK(y32.dtype() == f32);
    check_close(y32.to(f64), y, 1e-5);
  }
}

TEST_CASE("softplus: the fused first-order backward equals the composed one of create_graph") {
  for (Dtype d : {f64, f32}) {
    for (const auto& [beta, threshold] : std::vector<std::pair<double, double>>{{1, 20}, {2, 3}, {0.5, -1}}) {
      INFO("dtype ", dtype_name(d), ", beta ", beta, ", threshold ", threshold);
      Tensor x = input({5, 9}, -10, 10, 8).detach().to(d).requires_grad_();
      Tensor v = input({5, 9}, -1, 1, 9).detach().to(d);
      auto f = [beta, threshold](const Tensor& t) { return softplus(t, beta, threshold); };
      Tensor fused = grad_of(f, x, v), composed = grad_of(f, x, v, true);
      CHECK_FALSE(fused.requires_grad());
      CHECK(composed.requires_grad());
      CHECK(max_abs_diff(fused, composed) <= (d == f64 ? 1e-15 : 1e-7));
    }
  }
}

TEST_CASE("softplus: edge values (0, +-inf, NaN, large |x|, the threshold), f64 and f32") {
  for (Dtype d : {f64, f32}) {
    INFO("dtype ", dtype_name(d));
    const bool wide = d == f64;
    Tensor x = tensor({0, kInf, -kInf, kNaN, -40, -800, 40, 800, 20}, d).requires_grad_();
    Tensor y = softplus(x);
    auto ys = y.to_vector<double>();
    CHECK(ys[0] == doctest::Approx(std::log(2.0)).epsilon(wide ? 1e-15 : 1e-7));
    CHECK(ys[1] == kInf);
    CHECK(ys[2] == 0);
    CHECK(std::isnan(ys[3]));
    // log1p: e^-40 = 4.2e-18, not the 0 of log(1 + e^-40)
    CHECK(ys[4] > 0);
    CHECK(ys[4] == doctest::Approx(std::exp(-40.0)).epsilon(wide ? 1e-15 : 1e-6));
    CHECK(ys[5] == 0);
    CHECK(ys[6] == 40);   // past the threshold: x itself
    CHECK(ys[7] == 800);  // ... even where e^(beta x) overflows
    // at the threshold (not past it, as in PyTorch): log1p(e^20) = 20 + 2.06e-9
    CHECK(ys[8] == doctest::Approx(20 + std::log1p(std::exp(-20.0))).epsilon(wide ? 1e-15 : 1e-7));
    if (wide) CHECK(ys[8] > 20);
    for (bool create_graph : {false, true}) {
      INFO("create_graph ", create_graph);
      Tensor g = grad_of([](const Tensor& t) { return softplus(t); }, x, ones_like(x).detach(), create_graph);
      check_matches(g, tensor({0.5, 1, 0, kNaN, std::exp(-40.0), 0, 1, 1, 1 / (1 + std::exp(-20.0))}, d),
                    wide ? 1e-15 : 1e-7);
    }
    // beta != 1: softplus(0) = log 2 / beta, its slope still 1/2; beta x > threshold picks x
    Tensor z = tensor({0, 1, 2.5}, d).requires_grad_();
    Tensor yb = softplus(z, 4, 8);
    auto ybs = yb.to_vector<double>();
    CHECK(ybs[0] == doctest::Approx(std::log(2.0) / 4).epsilon(wide ? 1e-15 : 1e-7));
    CHECK(ybs[1] == doctest::Approx(std::log1p(std::exp(4.0)) / 4).epsilon(wide ? 1e-15 : 1e-7));
    CHECK(ybs[2] == 2.5);
    check_matches(grad_of([](const Tensor& t) { return softplus(t, 4, 8); }, z, ones_like(z).detach()),
                  tensor({0.5, 1 / (1 + std::exp(-4.0)), 1}, d), wide ? 1e-15 : 1e-7);
  }
}

TEST_CASE("softplus: i64 is an error naming the op") {
  std::string message = error_of([] { softplus(tensor({1, 2}, i64)); });
  CHECK_MESSAGE(matches(message, R"(^softplus: .*i64)"), message);
}

TEST_CASE("softplus: values and gradients match PyTorch (fixtures, f64 and f32)") {
  check_fixture("softplus", {"x", "x_beta", "x_half", "x_special"}, [](auto& in) {
    return Outputs{{"output", softplus(in["x"])},
                   {"output_beta", softplus(in["x_beta"], 2, 5)},
                   {"output_half", softplus(in["x_half"], 0.5, 1.5)},
                   {"output_special", softplus(in["x_special"])}};
  });
}

// --- cosine_similarity ---------------------------------------------------------------------------

TEST_CASE("cosine_similarity: gradcheck and gradgradcheck over shapes, broadcasting and axes") {
  struct Case {
    Shape a, b;
    std::int64_t axis;
  };
  const std::vector<Case> cases = {
      {{2, 3}, {2, 3}, -1},       {{2, 3}, {2, 3}, 0},     {{3, 1, 4}, {5, 4}, -1},
      {{3, 1, 4}, {5, 4}, 1},     // reducing an axis a broadcasts
      {{4}, {4}, 0},              // rank 1 -> rank 0
      {{2, 1}, {1, 3}, 0},        {{1, 5}, {7, 5}, -2},    {{5, 7}, {7}, 1},
      {{1, 1}, {1, 1}, 1},        // one-element vectors: +-1
      {{0, 3}, {1, 3}, -1},       // zero-size batch
      {{2, 0}, {2, 0}, -1},       // zero-length vectors: 0
      {{3, 0, 2}, {2}, 0},
  };
  for (const auto& c : cases) {
    INFO("shapes ", to_string(c.a), " and ", to_string(c.b), ", axis ", c.axis);
    check_gradients([axis = c.axis](const Inputs& in) { return cosine_similarity(in[0], in[1], axis); },
                    {input(c.a, -1, 1, 11), input(c.b, -1, 1, 12)});
  }
  // eps large enough to clamp some rows and not others
  check_gradients([](const Inputs& in) { return cosine_similarity(in[0], in[1], 1, 0.3); },
                  {input({4, 3}, -0.5, 0.5, 13), input({4, 3}, -0.5, 0.5, 14)});
}

TEST_CASE("cosine_similarity: closed forms, zero vectors and the eps clamp") {
  for (Dtype d : {f64, f32}) {
    INFO("dtype ", dtype_name(d));
    Tensor a = tensor({{1, 0}, {1, 2}, {3, -4}, {2, 0}, {0, 0}}, d);
    Tensor b = tensor({{1, 1}, {2, 4}, {-6, 8}, {0, 5}, {1, 2}}, d);
    Tensor y = cosine_similarity(a, b);
    CHECK(y.dtype() == d);
    check_matches(y, tensor({1 / std::sqrt(2.0), 1, -1, 0, 0}, d), d == f64 ? 1e-15 : 1e-7);
    // along axis 0, and a broadcast row: [2, 2] against [2]
    Tensor u = tensor({{1, 2}, {3, 4}}, d), w = tensor({1, 1}, d);
    check_matches(cosine_similarity(u, w, 0), tensor({4 / std::sqrt(20.0), 6 / std::sqrt(40.0)}, d),
                  d == f64 ? 1e-15 : 1e-7);
    check_matches(cosine_similarity(u, w), tensor({3 / std::sqrt(10.0), 7 / std::sqrt(50.0)}, d),
                  d == f64 ? 1e-15 : 1e-7);
  }
  // d/da of a . b / (|a| |b|) = b / (|a| |b|) - cos * a / |a|^2
  Tensor a = input({4, 5}, -1, 1, 21), b = input({4, 5}, -1, 1, 22);
  auto g = autograd::grad({sum(cosine_similarity(a, b))}, {a});
  auto as = a.to_vector<double>(), bs = b.to_vector<double>(), gs = g[0].to_vector<double>();
  double worst = 0;
  for (int r = 0; r < 4; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < 5; ++k) ab += as[r * 5 + k] * bs[r * 5 + k], aa += as[r * 5 + k] * as[r * 5 + k],
                                bb += bs[r * 5 + k] * bs[r * 5 + k];
    for (int k = 0; k < 5; ++k) {
      double want = bs[r * 5 + k] / std::sqrt(aa * bb) - ab / std::sqrt(aa * bb) * as[r * 5 + k] / aa;
      worst = std::max(worst, std::abs(gs[r * 5 + k] - want));
    }
  }
  CHECK(worst <= 1e-14);
  // a zero vector: value 0, and (as in PyTorch) no gradient through its clamped norm, so
  // d/da = b / (|b| eps) and d/db = 0
  Tensor z = zeros({3}, f64).requires_grad_(), o = tensor({1, -2, 3}, f64).requires_grad_();
  Tensor c = cosine_similarity(z, o);
  CHECK(c.shape() == Shape{});
  CHECK(c.item<double>() == 0);
  auto gz = autograd::grad({c}, {z, o});
  const double scale = 1 / (std::sqrt(14.0) * 1e-8);
  check_matches(gz[0], tensor({scale, -2 * scale, 3 * scale}, f64), 1e-15);
  check_values(gz[1], {3}, {0, 0, 0});
  // both zero: 0 with zero gradients
  Tensor z2 = zeros({2}, f64).requires_grad_();
  CHECK(cosine_similarity(z2, z2).item<double>() == 0);
  check_values(autograd::grad({cosine_similarity(z2, z2)}, {z2})[0], {2}, {0, 0});
  // each norm is clamped on its own (PyTorch 1.13): (0.1 / 0.5) (0.2 / 0.5) = 0.08, where 1.12's
  // clamp of the product of the norms gave 0.02 / 0.5 = 0.04; a small eps leaves parallel vectors at 1
  Tensor p = tensor({0.1, 0}, f64), q = tensor({0.2, 0}, f64);
  CHECK(cosine_similarity(p, q, -1, 0.5).item<double>() == doctest::Approx(0.08).epsilon(1e-15));
  CHECK(cosine_similarity(p, q, -1, 1e-3).item<double>() == doctest::Approx(1).epsilon(1e-15));
}

TEST_CASE("cosine_similarity: errors name the op and both shapes") {
  std::string broadcast = error_of([] { cosine_similarity(ones({2, 3}, f64), ones({4, 3}, f64)); });
  CHECK_MESSAGE(matches(broadcast, R"(^cosine_similarity: .*\[2, 3\].*\[4, 3\])"), broadcast);
  for (std::int64_t axis : {2, -3, 7}) {
    std::string range = error_of([axis] { cosine_similarity(ones({2, 3}, f64), ones({3}, f64), axis); });
    CHECK_MESSAGE(matches(range, "^cosine_similarity: axis " + std::to_string(axis) + R"( .*\[2, 3\].*\[3\])"),
                  range);
  }
  std::string rank0 = error_of([] { cosine_similarity(scalar(1, f64), scalar(2, f64)); });
  CHECK_MESSAGE(matches(rank0, R"(^cosine_similarity: axis -1 .*\[\].*\[\])"), rank0);
  std::string dtypes = error_of([] { cosine_similarity(ones({2, 3}, f32), ones({3}, f64)); });
  CHECK_MESSAGE(matches(dtypes, R"(^cosine_similarity: .*f32.*\[2, 3\].*f64.*\[3\])"), dtypes);
  std::string integers = error_of([] { cosine_similarity(ones({2, 3}, i64), ones({3}, i64)); });
  CHECK_MESSAGE(matches(integers, R"(^cosine_similarity: .*i64.*\[2, 3\].*\[3\])"), integers);
}

TEST_CASE("cosine_similarity: values and gradients match PyTorch (fixtures, f64 and f32)") {
  check_fixture("cosine_similarity", {"a", "b", "c", "d", "zero", "other", "tiny", "small"}, [](auto& in) {
    return Outputs{{"output_ab", cosine_similarity(in["a"], in["b"])},
                   {"output_cd", cosine_similarity(in["c"], in["d"], 1)},
                   {"output_zero", cosine_similarity(in["zero"], in["other"], -1)},
                   {"output_tiny", cosine_similarity(in["tiny"], in["small"], 0, 0.05)}};
  },
                // PyTorch clamps the norm of a nonzero vector shorter than eps in place under
                // no_grad, so its gradient of `tiny` is not the derivative of its own forward
                // (torch.autograd.gradcheck fails there); ours is (the gradcheck above)
                {"tiny"});
}

// --- roll ------------------------------------------------------------------------------------------

TEST_CASE("roll: gradcheck and gradgradcheck over shapes, axes and shifts") {
  struct Case {
    Shape shape;
    std::int64_t shift, axis;
  };
  const std::vector<Case> cases = {
      {{5}, 2, 0},     {{3, 4}, -1, 1},  {{2, 3, 5}, 7, -2}, {{1, 4}, 3, 0},  // a size-1 axis
      {{0, 3}, 1, 0},  // a zero-size axis
      {{3, 0}, 2, 0},  {{7}, 22, 0},     {{7}, -15, -1},     {{4, 3}, 0, 1},  {{4, 3}, 3, 1},
  };
  for (const auto& c : cases) {
    INFO("shape ", to_string(c.shape), ", shift ", c.shift, ", axis ", c.axis);
    check_gradients([c](const Inputs& in) { return roll(in[0], c.shift, c.axis); }, {input(c.shape, -1, 1, 31)});
  }
  // roll inside a broadcast product
  check_gradients([](const Inputs& in) { return roll(in[0], -2, -1) * in[1]; },
                  {input({3, 1, 5}, -1, 1, 32), input({4, 5}, -1, 1, 33)});
}

TEST_CASE("roll: out[i] = x[(i - shift) mod n] for every shift, the gradient rolls back") {
  const Shape shape = {3, 5, 2};
  Tensor x = iota(shape);
  for (std::int64_t axis : {0, 1, 2, -1}) {
    const int a = axis < 0 ? axis + 3 : static_cast<int>(axis);
    const std::int64_t n = shape[a];
    for (std::int64_t shift = -3 * n - 1; shift <= 3 * n + 1; ++shift) {
      INFO("axis ", axis, ", shift ", shift);
      std::vector<double> want;
      for (std::int64_t i = 0; i < 3; ++i)
        for (std::int64_t j = 0; j < 5; ++j)
          for (std::int64_t k = 0; k < 2; ++k) {
            std::int64_t idx[3] = {i, j, k};
            idx[a] = ((idx[a] - shift) % n + n) % n;
            want.push_back(static_cast<double>((idx[0] * 5 + idx[1]) * 2 + idx[2]));
          }
      check_values(roll(x, shift, axis), shape, want);
    }
  }
  // by 0 and by n: x itself (a copy); by -1 and 3n+1: one step each way
  Tensor v = tensor({1, 2, 3, 4}, f64);
  check_values(roll(v, 0, 0), {4}, {1, 2, 3, 4});
  check_values(roll(v, 4, 0), {4}, {1, 2, 3, 4});
  check_values(roll(v, -1, 0), {4}, {2, 3, 4, 1});
  check_values(roll(v, 13, 0), {4}, {4, 1, 2, 3});
  check_values(roll(v, -13, -1), {4}, {2, 3, 4, 1});
  // the gradient of sum(roll(x, s) * g) is roll(g, -s)
  for (std::int64_t s : {0, 1, -1, 3, 9, -22}) {
    INFO("shift ", s);
    Tensor xs = input({4, 3}, -1, 1, 34), g = input({4, 3}, -1, 1, 35).detach();
    check_close(grad_of([s](const Tensor& t) { return roll(t, s, 0); }, xs, g), roll(g, -s, 0), 0);
  }
  // zero-size axes, rank 1 and extreme shifts; f32 and i64 keep their dtype
  check_values(roll(zeros({0, 2}, f64), 5, 0), {0, 2}, {});
  check_values(roll(zeros({2, 0}, f64), -3, 1), {2, 0}, {});
  check_values(roll(v, std::numeric_limits<std::int64_t>::min(), 0), {4}, {1, 2, 3, 4});
  check_values(roll(v, std::numeric_limits<std::int64_t>::max(), 0), {4}, {2, 3, 4, 1});
  Tensor k = roll(tensor({1, 2, 3}, i64), 1, 0);
  CHECK(k.dtype() == i64);
  check_values(k, {3}, {3, 1, 2});
  Tensor f = roll(tensor({1, 2, 3}, f32), -1, 0);
  CHECK(f.dtype() == f32);
  check_values(f, {3}, {2, 3, 1});
}

TEST_CASE("roll: an out-of-range axis is an error naming the op and the shape") {
  for (std::int64_t axis : {2, -3}) {
    std::string message = error_of([axis] { roll(ones({2, 3}, f64), 1, axis); });
    CHECK_MESSAGE(matches(message, "^roll: axis " + std::to_string(axis) + R"( .*\[2, 3\])"), message);
  }
  std::string rank0 = error_of([] { roll(scalar(1, f64), 1, 0); });
  CHECK_MESSAGE(matches(rank0, R"(^roll: axis 0 .*\[\])"), rank0);
}

TEST_CASE("roll: values and gradients match PyTorch (fixtures, f64 and f32)") {
  check_fixture("roll", {"x", "y"}, [](auto& in) {
    return Outputs{{"output_x_2_1", roll(in["x"], 2, 1)},   {"output_x_m1_0", roll(in["x"], -1, 0)},
                   {"output_x_16_1", roll(in["x"], 16, 1)}, {"output_x_0_m1", roll(in["x"], 0, -1)},
                   {"output_x_5_1", roll(in["x"], 5, 1)},   {"output_y_m7_2", roll(in["y"], -7, 2)},
                   {"output_y_1_m2", roll(in["y"], 1, -2)}};
  });
}
