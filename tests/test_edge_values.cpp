// Edge values: 0, -0, +-inf, NaN, subnormals, huge magnitudes and ties. An element's result must
// not depend on where it sits in a tensor (a vectorised body and a scalar tail must agree), must
// equal the scalar std:: formula, and must match PyTorch's conventions (pow at a zero base, NaN
// through relu, ties in max).
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Same value, or both NaN.
template <class T>
bool same(T a, T b) {
  return (std::isnan(a) && std::isnan(b)) || std::memcmp(&a, &b, sizeof(T)) == 0 || (a == b && a != 0);
}

/// The special values of dtype T (subnormals and the extremes of T itself).
template <class T>
std::vector<T> specials() {
  using L = std::numeric_limits<T>;
  return {T(0), T(-0.0), T(1), T(-1), T(0.5), T(2), T(-2), T(3), T(20), T(-20), T(88.8), T(-103.9), T(709.9), T(-745.2),
          L::infinity(), -L::infinity(), L::quiet_NaN(), L::denorm_min(), -L::denorm_min(), L::min(), L::max(),
          L::lowest(), L::epsilon()};
}

struct UnaryCase {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  std::function<float(float)> scalar_f32;  // the std:: formula, evaluated in the tensor's dtype
  std::function<double(double)> scalar_f64;
  template <class F>
  UnaryCase(const char* n, std::function<Tensor(const Tensor&)> o, F f)
      : name(n), op(std::move(o)), scalar_f32([f](float v) { return f(v); }), scalar_f64([f](double v) { return f(v); }) {}
  double scalar(float v) const { return scalar_f32(v); }
  double scalar(double v) const { return scalar_f64(v); }
};

template <class T>
void check_unary(const UnaryCase& c, Dtype dtype) {
  constexpr std::int64_t n = 35;  // several vector bodies and a scalar tail in both widths
  for (T v : specials<T>()) {
    INFO(std::string(c.name), "(", v, ") in ", dtype_name(dtype));
    const std::vector<T> got = c.op(full({n}, static_cast<double>(v), dtype)).template to_vector<T>();
    const T expected = static_cast<T>(c.scalar(v));
    for (std::int64_t i = 0; i < n; ++i) {
      INFO("element ", i, ": ", got[i]);
      CHECK(same(got[i], got[0]));  // the body and the tail agree
    }
    // With the std:: formula: exactly at the special values, within 4 ulp elsewhere (a vector
    // exp or tanh may round the last bit differently from libm).
    const bool special = v == 0 || !std::isfinite(v) || std::fpclassify(v) == FP_SUBNORMAL || !std::isfinite(expected);
    if (special || std::isnan(expected)) {
      CHECK(same(got[0], expected));
    } else {
      CHECK(std::abs(got[0] - expected) <= 4 * std::numeric_limits<T>::epsilon() * std::abs(expected));
    }
  }
}

}  // namespace

TEST_CASE("edge values: every element of a vectorised op gets the scalar std:: result (body and tail agree)") {
  const std::vector<UnaryCase> cases = {
      {"exp", [](const Tensor& x) { return xgrad::exp(x); }, [](auto v) { return std::exp(v); }},
      {"log", [](const Tensor& x) { return xgrad::log(x); }, [](auto v) { return std::log(v); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, [](auto v) { return decltype(v)(1) / (decltype(v)(1) + std::exp(-v)); }},
      {"softplus", [](const Tensor& x) { return softplus(x); }, [](auto v) { return v > 20 ? v : std::log1p(std::exp(v)); }},
      {"tanh", [](const Tensor& x) { return xgrad::tanh(x); }, [](auto v) { return std::tanh(v); }},
      {"sqrt", [](const Tensor& x) { return xgrad::sqrt(x); }, [](auto v) { return std::sqrt(v); }},
      {"abs", [](const Tensor& x) { return xgrad::abs(x); }, [](auto v) { return std::abs(v); }},
      {"neg", [](const Tensor& x) { return neg(x); }, [](auto v) { return -v; }},
      {"relu", [](const Tensor& x) { return relu(x); }, [](auto v) { return std::isnan(v) ? v : v > 0 ? v : decltype(v)(0); }},
      {"pow 0", [](const Tensor& x) { return xgrad::pow(x, 0.0); }, [](auto v) { return std::pow(v, decltype(v)(0.0)); }},
      {"pow 1", [](const Tensor& x) { return xgrad::pow(x, 1.0); }, [](auto v) { return std::pow(v, decltype(v)(1.0)); }},
      // PyTorch's kernels for these exponents: a product, a reciprocal, sqrt (sqrt(-inf) is NaN)
      {"pow 2", [](const Tensor& x) { return xgrad::pow(x, 2.0); }, [](auto v) { return v * v; }},
      {"pow 3", [](const Tensor& x) { return xgrad::pow(x, 3.0); }, [](auto v) { return v * v * v; }},
      {"pow -1", [](const Tensor& x) { return xgrad::pow(x, -1.0); }, [](auto v) { return decltype(v)(1) / v; }},
      {"pow 0.5", [](const Tensor& x) { return xgrad::pow(x, 0.5); }, [](auto v) { return std::sqrt(v); }},
      {"pow -0.5", [](const Tensor& x) { return xgrad::pow(x, -0.5); }, [](auto v) { return decltype(v)(1) / std::sqrt(v); }},
      {"pow -2.5", [](const Tensor& x) { return xgrad::pow(x, -2.5); }, [](auto v) { return std::pow(v, decltype(v)(-2.5)); }},
  };
  for (const auto& c : cases) {
    check_unary<float>(c, f32);
    check_unary<double>(c, f64);
  }
}

TEST_CASE("edge values: pow at a zero base is PyTorch's, wherever the element sits") {
  for (Dtype dtype : {f32, f64}) {
    INFO(dtype_name(dtype));
    check_values(xgrad::pow(zeros({9}, dtype), 0.0).to(f64), {9}, std::vector<double>(9, 1.0));
    check_values(xgrad::pow(zeros({9}, dtype), -1.0).to(f64), {9}, std::vector<double>(9, kInf));
    // d/dx x^1 at 0 is 1 in every element; d/dx x^0 is 0 (not 0 * inf)
    for (double p : {1.0, 0.0}) {
      Tensor x = zeros({9}, dtype).requires_grad_();
      sum(xgrad::pow(x, p)).backward();
      check_values(x.grad().to(f64), {9}, std::vector<double>(9, p));
    }
  }
  // a^b with a = 0, b = 0: d/da = 0 and d/db = 0 (PyTorch), not NaN
  Tensor a = zeros({3}, f64).requires_grad_(), b = tensor({0.0, 2.0, 0.5}, f64).requires_grad_();
  sum(xgrad::pow(a, b)).backward();
  check_values(a.grad(), {3}, {0, 0, kInf});  // 0.5 * 0^-0.5 = inf, as in PyTorch
  check_values(b.grad(), {3}, {0, 0, 0});
  // a negative base: d/db is NaN (no real logarithm), as in PyTorch
  Tensor c = tensor({-2.0}, f64).requires_grad_(), e = tensor({2.0}, f64).requires_grad_();
  sum(xgrad::pow(c, e)).backward();
  CHECK(std::isnan(e.grad().item()));
  CHECK(c.grad().item() == -4.0);
}

TEST_CASE("edge values: relu lets NaN through, and its gradient too (PyTorch's threshold_backward)") {
  Tensor x = tensor({kNaN, -1.0, 0.0, 2.0}, f64).requires_grad_();
  Tensor y = relu(x);
  const auto v = y.to_vector<double>();
  CHECK(std::isnan(v[0]));
  CHECK(v[1] == 0);
  CHECK(v[2] == 0);
  CHECK(v[3] == 2);
  sum(y * tensor({1.0, 1.0, 1.0, 1.0}, f64)).backward();
  const auto g = x.grad().to_vector<double>();
  CHECK(g == std::vector<double>{1, 0, 0, 1});  // 0 only where x <= 0: NaN <= 0 is false
}

TEST_CASE("edge values: max of all elements shares the gradient among tied maxima (PyTorch)") {
  Tensor x = tensor({1.0, 3.0, 3.0, 2.0, 3.0}, f64).requires_grad_();
  Tensor m = xgrad::max(x);
  CHECK(m.item() == 3.0);
  (m * 6.0).backward();
  check_values(x.grad(), {5}, {0, 2, 2, 0, 2});
  // a NaN maximum: the gradient goes to the NaN elements
  Tensor z = tensor({1.0, kNaN, 3.0, kNaN}, f64).requires_grad_();
  xgrad::max(z).backward();
  check_values(z.grad(), {4}, {0, 0.5, 0, 0.5});
  // second order: the share is constant
  check_gradients([](const std::vector<Tensor>& in) { return xgrad::max(in[0]) * xgrad::max(in[0]); },
                  {tensor({0.5, 2.0, -1.0}, f64).requires_grad_()});
}

// --- accurate large reductions -----------------------------------------------------------------

namespace {

double relative_error(const Tensor& got, const Tensor& reference) {
  double worst = 0;
  const auto a = got.to(f64).to_vector<double>(), b = reference.to_vector<double>();
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]) / std::abs(b[i]));
  return worst;
}

}  // namespace

TEST_CASE("large reductions: float32 sums of 2^25 elements agree with float64 within 1e-6 (pairwise)") {
  constexpr std::int64_t n = std::int64_t{1} << 25;
  CHECK(sum(ones({n})).item() == static_cast<double>(n));  // one at a time, float32 stops at 2^24
  Generator gen(7);
  const Tensor u = uniform({n}, 0, 1, f32, &gen), u64 = u.to(f64);
  CHECK(relative_error(sum(u), sum(u64)) < 1e-6);
  CHECK(relative_error(mean(u), mean(u64)) < 1e-6);
  // along each axis of [2^5, 2^15, 2^5]: rows, inner runs, and both at once
  const Tensor cube = reshape(u, {32, 32768, 32}), cube64 = reshape(u64, {32, 32768, 32});
  CHECK(relative_error(sum(cube, 1), sum(cube64, 1)) < 1e-6);
  CHECK(relative_error(sum(cube, {0, 1}), sum(cube64, {0, 1})) < 1e-6);
  CHECK(relative_error(sum(cube, {1, 2}), sum(cube64, {1, 2})) < 1e-6);
  CHECK(relative_error(mean(reshape(u, {n / 4, 4}), 0), mean(reshape(u64, {n / 4, 4}), 0)) < 1e-6);
  CHECK(relative_error(sum(reshape(u, {4, n / 4}), 1), sum(reshape(u64, {4, n / 4}), 1)) < 1e-6);
  // the mean cross-entropy over 2^24 tokens of 2 classes
  const Tensor logits = reshape(u, {n / 2, 2});
  const Tensor targets = reshape(randint(0, 2, {n / 2}, &gen), {n / 2});
  CHECK(relative_error(nn::cross_entropy(logits, targets), nn::cross_entropy(logits.to(f64), targets)) < 1e-6);
}

TEST_CASE("large reductions: sums along any axes equal a float64 reference, empty and size-1 axes included") {
  Generator gen(3);
  for (const Shape& shape : {Shape{5, 1, 7}, Shape{0, 3}, Shape{3, 0}, Shape{2, 3, 4, 5}, Shape{1}, Shape{}, Shape{300, 9}}) {
    const Tensor x = uniform(shape, -1, 1, f64, &gen);
    const auto rank = static_cast<std::int64_t>(shape.size());
    for (std::int64_t mask = 1; mask < (std::int64_t{1} << rank); ++mask) {
      std::vector<std::int64_t> axes;
      for (std::int64_t a = 0; a < rank; ++a)
        if (mask >> a & 1) axes.push_back(a);
      INFO("shape ", to_string(shape), " axes ", axes.size());
      // reference: reduce one axis at a time from the last, with keepdim
      Tensor reference = x;
      for (auto a = axes.rbegin(); a != axes.rend(); ++a) {
        Shape keep = reference.shape();
        keep[*a] = 1;
        Tensor acc = zeros(keep, f64);
        for (std::int64_t i = 0; i < reference.shape()[*a]; ++i) acc = acc + slice(reference, *a, i, i + 1);
        reference = acc;
      }
      check_close(sum(x, axes, true), reference, 1e-12);
    }
  }
}

TEST_CASE("edge values: on random inputs the vectorised ops stay within 4 ulp of the std:: formula") {
  Generator gen(11);
  for (Dtype dtype : {f32, f64}) {
    const Tensor x = uniform({1001}, -40, 40, dtype, &gen);
    const auto v = x.to(f64).to_vector<double>();
    auto check = [&](const char* name, const Tensor& y, auto formula) {
      const auto got = y.to(f64).to_vector<double>();
      int bad = 0;
      for (std::size_t i = 0; i < v.size(); ++i) {
        const double want = dtype == f32 ? static_cast<double>(formula(static_cast<float>(v[i]))) : formula(v[i]);
        const double eps = dtype == f32 ? 1.2e-7 : 2.3e-16;
        if (!(std::abs(got[i] - want) <= 4 * eps * std::abs(want))) ++bad;
      }
      INFO(name, " in ", dtype_name(dtype));
      CHECK(bad == 0);
    };
    check("exp", xgrad::exp(x), [](auto t) { return std::exp(t); });
    check("sigmoid", sigmoid(x), [](auto t) { return decltype(t)(1) / (decltype(t)(1) + std::exp(-t)); });
    check("softplus", softplus(x), [](auto t) { return t > 20 ? t : std::log1p(std::exp(t)); });
    check("log", xgrad::log(xgrad::abs(x)), [](auto t) { return std::log(std::abs(t)); });
  }
}
