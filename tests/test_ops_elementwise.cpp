// Elementwise ops: float64 gradcheck + gradgradcheck over several shapes (broadcasting, size-1,
// rank-0, zero-size), closed-form derivatives, exact forward values, and error messages.
#include <cmath>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <fmt/ranges.h>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {


/// Unary shape cases: plain, a size-1 dim, rank 0, zero-size.
const std::vector<Shape> kUnaryShapes = {{2, 3}, {3, 1, 4}, {}, {0, 3}};

/// Binary shape cases: same shape, broadcasting both ways, size-1 dims, rank 0, zero-size.
const std::vector<std::pair<Shape, Shape>> kBinaryShapes = {
    {{2, 3}, {2, 3}}, {{3, 1, 4}, {5, 4}}, {{1, 3}, {2, 1}}, {{2, 3}, {}}, {{}, {}}, {{0, 3}, {1, 3}},
};

/// check_gradients of f over every unary shape case, its input made by make(shape).
void check_unary(const TensorFunction& f, const std::function<Tensor(const Shape&)>& make) {
  for (const Shape& s : kUnaryShapes) {
    INFO("shape ", to_string(s));
    check_gradients(f, {make(s)});
  }
}

/// check_gradients of f over every binary shape case, its inputs made by make_a and make_b.
void check_binary(const TensorFunction& f, const std::function<Tensor(const Shape&)>& make_a,
                  const std::function<Tensor(const Shape&)>& make_b) {
  for (const auto& [sa, sb] : kBinaryShapes) {
    INFO("shapes ", to_string(sa), " and ", to_string(sb));
    check_gradients(f, {make_a(sa), make_b(sb)});
  }
}

Tensor uniform_a(const Shape& s) { return input(s, -1, 1, 1); }
Tensor uniform_b(const Shape& s) { return input(s, -1, 1, 2); }
Tensor positive(const Shape& s) { return input(s, 0.5, 2.0, 3); }

/// autograd::grad of f(x) with a random upstream gradient v against v * df(x), on plain doubles.
void check_closed_form(const std::function<Tensor(const Tensor&)>& f, const std::function<double(double)>& df,
                       const Tensor& x) {
  Tensor v = input(x.shape(), -1, 1, 9).detach();
  Tensor g = autograd::grad({f(x)}, {x}, {v})[0];
  auto xs = x.to_vector<double>(), vs = v.to_vector<double>(), gs = g.to_vector<double>();
  REQUIRE(gs.size() == xs.size());
  double worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::abs(gs[i] - vs[i] * df(xs[i])));
  CHECK(worst <= 1e-12);
}

}  // namespace

// --- unary --------------------------------------------------------------------------------------

TEST_CASE("neg: gradcheck, values") {
  check_unary([](const Inputs& in) { return neg(in[0]); }, uniform_a);
  check_unary([](const Inputs& in) { return -in[0]; }, uniform_a);
  check_values(neg(tensor({1, -2.5, 0}, f64)), {3}, {-1, 2.5, 0});
  Tensor n = neg(tensor({1, -2}, i64));
  CHECK(n.dtype() == i64);
  check_values(n, {2}, {-1, 2});
}

TEST_CASE("exp: gradcheck, closed form") {
  check_unary([](const Inputs& in) { return exp(in[0]); }, uniform_a);
  // d exp = exp, through x.backward with an upstream gradient
  Tensor x = input({3, 4});
  Tensor v = input({3, 4}, -1, 1, 5).detach();
  exp(x).backward(v);
  auto xs = x.to_vector<double>(), vs = v.to_vector<double>(), gs = x.grad().to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) worst = std::max(worst, std::abs(gs[i] - vs[i] * std::exp(xs[i])));
  CHECK(worst <= 1e-12);
  check_values(exp(tensor({0.0}, f64)), {1}, {1});
}

TEST_CASE("log: gradcheck, closed form") {
  check_unary([](const Inputs& in) { return log(in[0]); }, positive);
  check_closed_form([](const Tensor& x) { return log(x); }, [](double x) { return 1 / x; }, positive({3, 4}));
  check_values(log(tensor({1.0}, f64)), {1}, {0});
}

TEST_CASE("tanh: gradcheck, closed form") {
  check_unary([](const Inputs& in) { return tanh(in[0]); }, uniform_a);
  check_closed_form([](const Tensor& x) { return tanh(x); },
                    [](double x) { return 1 - std::tanh(x) * std::tanh(x); }, input({3, 4}, -3, 3));
  check_values(tanh(tensor({0.0}, f64)), {1}, {0});
}

TEST_CASE("sigmoid: gradcheck, closed form") {
  check_unary([](const Inputs& in) { return sigmoid(in[0]); }, uniform_a);
  auto s = [](double x) { return 1 / (1 + std::exp(-x)); };
  check_closed_form([](const Tensor& x) { return sigmoid(x); }, [&](double x) { return s(x) * (1 - s(x)); },
                    input({3, 4}, -4, 4));
  check_values(sigmoid(tensor({0.0}, f64)), {1}, {0.5});
}

TEST_CASE("relu: gradcheck, values") {
  check_unary([](const Inputs& in) { return relu(in[0]); }, [](const Shape& s) { return input_away_from_zero(s); });
  check_closed_form([](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? 1.0 : 0.0; },
                    input_away_from_zero({3, 4}));
  check_values(relu(tensor({-1, 0, 2.5}, f64)), {3}, {0, 0, 2.5});
}

TEST_CASE("tanh, sigmoid, relu: the fused first-order backward equals the composed one of create_graph") {
  for (Dtype d : {f64, f32}) {
    Tensor x = input_away_from_zero({3, 7}).detach().to(d).requires_grad_();
    Tensor v = input({3, 7}, -1, 1, 2).detach().to(d);
    for (auto f : {+[](const Tensor& t) { return tanh(t); }, +[](const Tensor& t) { return sigmoid(t); },
                   +[](const Tensor& t) { return relu(t); }}) {
      Tensor fused = autograd::grad({f(x)}, {x}, {v})[0];
      Tensor composed = autograd::grad({f(x)}, {x}, {v}, true)[0];
      CHECK(max_abs_diff(fused, composed) <= (d == f64 ? 1e-15 : 1e-7));
    }
  }
}

TEST_CASE("sqrt: gradcheck, closed form") {
  check_unary([](const Inputs& in) { return sqrt(in[0]); }, positive);
  check_closed_form([](const Tensor& x) { return sqrt(x); }, [](double x) { return 1 / (2 * std::sqrt(x)); },
                    positive({3, 4}));
  check_values(sqrt(tensor({4, 9, 0.25}, f64)), {3}, {2, 3, 0.5});
}

TEST_CASE("abs: gradcheck, values") {
  check_unary([](const Inputs& in) { return abs(in[0]); }, [](const Shape& s) { return input_away_from_zero(s); });
  check_closed_form([](const Tensor& x) { return abs(x); }, [](double x) { return x > 0 ? 1.0 : -1.0; },
                    input_away_from_zero({3, 4}));
  check_values(abs(tensor({-1.5, 2}, f64)), {2}, {1.5, 2});
  check_values(abs(tensor({-3, 4}, i64)), {2}, {3, 4});
}

TEST_CASE("pow(x, p): gradcheck, closed form") {
  check_unary([](const Inputs& in) { return pow(in[0], 2.0); }, uniform_a);
  for (double p : {3.0, -1.5, 0.5}) {
    INFO("p = ", p);
    check_unary([p](const Inputs& in) { return pow(in[0], p); }, positive);
    check_closed_form([p](const Tensor& x) { return pow(x, p); },
                      [p](double x) { return p * std::pow(x, p - 1); }, positive({3, 4}));
  }
  check_values(pow(tensor({2, -3}, f64), 2.0), {2}, {4, 9});
  check_values(pow(tensor({4.0}, f64), -1.5), {1}, {0.125});
}

// --- binary -------------------------------------------------------------------------------------

TEST_CASE("add: gradcheck, broadcasting values") {
  check_binary([](const Inputs& in) { return add(in[0], in[1]); }, uniform_a, uniform_b);
  // [3, 1] + [4] -> [3, 4]
  Tensor y = reshape(tensor({0, 10, 20}, f64), {3, 1}) + tensor({1, 2, 3, 4}, f64);
  check_values(y, {3, 4}, {1, 2, 3, 4, 11, 12, 13, 14, 21, 22, 23, 24});
  // the gradient of a broadcast operand is summed over the broadcast axes
  Tensor a = input({3, 1}), b = input({4}, -1, 1, 2);
  sum(a + b).backward();
  check_values(a.grad(), {3, 1}, {4, 4, 4});
  check_values(b.grad(), {4}, {3, 3, 3, 3});
  // zero-size: the broadcast operand still gets a (zero) gradient of its own shape
  Tensor e = input({0, 3}), f = input({3}, -1, 1, 2);
  sum(e + f).backward();
  check_values(f.grad(), {3}, {0, 0, 0});
}

TEST_CASE("sub: gradcheck, values") {
  check_binary([](const Inputs& in) { return sub(in[0], in[1]); }, uniform_a, uniform_b);
  check_values(reshape(tensor({5, 7}, f64), {2, 1}) - tensor({1, 2, 3}, f64), {2, 3}, {4, 3, 2, 6, 5, 4});
  Tensor a = input({2}), b = input({2}, -1, 1, 2);
  sum(a - b).backward();
  check_values(a.grad(), {2}, {1, 1});
  check_values(b.grad(), {2}, {-1, -1});
}

TEST_CASE("mul: gradcheck, closed form") {
  check_binary([](const Inputs& in) { return mul(in[0], in[1]); }, uniform_a, uniform_b);
  check_values(tensor({1, 2, 3}, f64) * tensor({4, 5, 6}, f64), {3}, {4, 10, 18});
  // d/da = b, d/db = a
  Tensor a = input({2, 3}), b = input({2, 3}, -1, 1, 2);
  auto g = autograd::grad({sum(a * b)}, {a, b});
  CHECK(max_abs_diff(g[0], b) == 0);
  CHECK(max_abs_diff(g[1], a) == 0);
}

TEST_CASE("div: gradcheck, closed form") {
  check_binary([](const Inputs& in) { return div(in[0], in[1]); }, uniform_a,
               [](const Shape& s) { return input_away_from_zero(s, 2); });
  check_values(tensor({1, 6, -3}, f64) / tensor({2, 3, 4}, f64), {3}, {0.5, 2, -0.75});
  // d/da = 1/b, d/db = -a/b^2
  Tensor a = tensor({3.0, -1.0}, f64).requires_grad_(), b = tensor({2.0, 4.0}, f64).requires_grad_();
  auto g = autograd::grad({sum(a / b)}, {a, b});
  check_values(g[0], {2}, {0.5, 0.25});
  check_values(g[1], {2}, {-0.75, 0.0625});
}

TEST_CASE("pow(a, b): gradcheck, closed form") {
  check_binary([](const Inputs& in) { return pow(in[0], in[1]); }, positive,
               [](const Shape& s) { return input(s, -2, 2, 4); });
  check_values(pow(tensor({2, 3, 4}, f64), tensor({3, 2, 0.5}, f64)), {3}, {8, 9, 2});
  // d/da = b a^(b-1), d/db = a^b ln a
  Tensor a = positive({3, 2}), b = input({2}, -2, 2, 4);
  auto g = autograd::grad({sum(pow(a, b))}, {a, b});
  auto as = a.to_vector<double>(), bs = b.to_vector<double>(), ga = g[0].to_vector<double>(),
       gb = g[1].to_vector<double>();
  double worst = 0, gb_expected[2] = {0, 0};
  for (std::size_t i = 0; i < as.size(); ++i) {
    double x = as[i], p = bs[i % 2];
    worst = std::max(worst, std::abs(ga[i] - p * std::pow(x, p - 1)));
    gb_expected[i % 2] += std::pow(x, p) * std::log(x);
  }
  for (int j = 0; j < 2; ++j) worst = std::max(worst, std::abs(gb[j] - gb_expected[j]));
  CHECK(worst <= 1e-12);
}

TEST_CASE("maximum: gradcheck, values, ties") {
  check_binary([](const Inputs& in) { return maximum(in[0], in[1]); }, uniform_a, uniform_b);
  check_values(maximum(reshape(tensor({1, 5}, f64), {2, 1}), tensor({0, 3, 7}, f64)), {2, 3}, {1, 3, 7, 5, 5, 7});
  // the gradient goes to the larger operand, halved at ties
  Tensor a = tensor({1, 4, 2}, f64).requires_grad_(), b = tensor({1, 3, 5}, f64).requires_grad_();
  auto g = autograd::grad({sum(maximum(a, b))}, {a, b});
  check_values(g[0], {3}, {0.5, 1, 0});
  check_values(g[1], {3}, {0.5, 0, 1});
}

TEST_CASE("where: gradcheck, values") {
  // shapes of (cond, a, b): same, broadcasting, rank 0, zero-size
  const std::vector<std::vector<Shape>> cases = {
      {{2, 3}, {2, 3}, {2, 3}}, {{5, 1}, {3, 1, 4}, {5, 4}}, {{}, {2, 3}, {}}, {{2, 1}, {1, 3}, {2, 3}},
      {{0, 3}, {3}, {0, 1}}};
  for (const auto& s : cases) {
    INFO("shapes ", to_string(s[0]), ", ", to_string(s[1]), ", ", to_string(s[2]));
    Tensor cond = gt(input(s[0], -1, 1, 7).detach(), scalar(0, f64));
    check_gradients([cond](const Inputs& in) { return where(cond, in[0], in[1]); },
                    {uniform_a(s[1]), uniform_b(s[2])});
  }
  Tensor cond = tensor({1, 0, 1}, i64);
  Tensor a = tensor({1, 2, 3}, f64).requires_grad_(), b = tensor({-1, -2, -3}, f64).requires_grad_();
  Tensor y = where(cond, a, b);
  check_values(y, {3}, {1, -2, 3});
  auto g = autograd::grad({sum(y)}, {a, b});
  check_values(g[0], {3}, {1, 0, 1});
  check_values(g[1], {3}, {0, 1, 0});
}

TEST_CASE("tensor-scalar operators: gradcheck, values, dtype") {
  const std::vector<std::pair<const char*, TensorFunction>> ops = {
      {"x * 2", [](const Inputs& in) { return in[0] * 2.0; }},
      {"1 - x", [](const Inputs& in) { return 1.0 - in[0]; }},
      {"2 / x", [](const Inputs& in) { return 2.0 / in[0]; }},
      {"x + 3", [](const Inputs& in) { return in[0] + 3.0; }},
      {"x - 0.5", [](const Inputs& in) { return in[0] - 0.5; }},
      {"x / 4", [](const Inputs& in) { return in[0] / 4.0; }},
      {"3 * x", [](const Inputs& in) { return 3.0 * in[0]; }},
      {"2 + x", [](const Inputs& in) { return 2.0 + in[0]; }},
  };
  for (const auto& [name, f] : ops) {
    INFO(name);
    check_unary(f, [](const Shape& s) { return input_away_from_zero(s); });
  }
  Tensor x = tensor({1, 2, 4}, f64);
  check_values(x * 2.0, {3}, {2, 4, 8});
  check_values(1.0 - x, {3}, {0, -1, -3});
  check_values(2.0 / x, {3}, {2, 1, 0.5});
  check_values(x + 3.0, {3}, {4, 5, 7});
  check_values(x - 0.5, {3}, {0.5, 1.5, 3.5});
  check_values(x / 4.0, {3}, {0.25, 0.5, 1});
  check_values(3.0 * x, {3}, {3, 6, 12});
  check_values(2.0 + x, {3}, {3, 4, 6});
  // the scalar takes the tensor's dtype
  CHECK((tensor({1, 2}) * 2.0).dtype() == f32);
  Tensor k = tensor({1, 2}, i64) + 3.0;
  CHECK(k.dtype() == i64);
  check_values(k, {2}, {4, 5});
}

// --- comparisons --------------------------------------------------------------------------------

TEST_CASE("comparisons: 0/1 values in the input dtype") {
  for (Dtype dt : {f32, f64, i64}) {
    INFO("dtype ", dtype_name(dt));
    Tensor a = tensor({1, 2, 3}, dt), b = tensor({2, 2, 2}, dt);
    const std::vector<std::pair<Tensor, std::vector<double>>> cases = {
        {eq(a, b), {0, 1, 0}}, {ne(a, b), {1, 0, 1}}, {lt(a, b), {1, 0, 0}},
        {le(a, b), {1, 1, 0}}, {gt(a, b), {0, 0, 1}}, {ge(a, b), {0, 1, 1}},
    };
    for (const auto& [y, expected] : cases) {
      CHECK(y.dtype() == dt);
      check_values(y, {3}, expected);
    }
  }
  // broadcasting [2, 1] against [3]
  check_values(gt(reshape(tensor({1, 3}, f64), {2, 1}), tensor({2, 0, 4}, f64)), {2, 3}, {0, 1, 0, 1, 1, 0});
  // never differentiated
  Tensor x = input({3});
  CHECK_FALSE(lt(x, scalar(0, f64)).requires_grad());
}

// --- errors -------------------------------------------------------------------------------------

TEST_CASE("binary ops: errors name the op and both shapes") {
  using Binary = std::function<Tensor(const Tensor&, const Tensor&)>;
  const std::vector<std::pair<std::string, Binary>> ops = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); }},
      {"where", [](const Tensor& a, const Tensor& b) { return where(ones(a.shape(), f64), a, b); }},
      {"pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); }},
  };
  for (const auto& [name, op] : ops) {
    INFO(name);
    std::string broadcast = error_of([&] { op(ones({2, 3}, f64), ones({4, 3}, f64)); });
    CHECK_MESSAGE(matches(broadcast, name + R"(: .*\[2, 3\].*\[4, 3\])"), broadcast);
    std::string dtypes = error_of([&] { op(ones({2, 3}, f32), ones({3}, f64)); });
    CHECK_MESSAGE(matches(dtypes, name + R"(: .*f32.*\[2, 3\].*f64.*\[3\])"), dtypes);
  }
}

TEST_CASE("floating-only ops on i64: errors name the op") {
  const Tensor k = tensor({1, 2}, i64);
  const std::vector<std::pair<std::string, std::function<void()>>> ops = {
      {"exp", [&] { exp(k); }},         {"log", [&] { log(k); }},         {"tanh", [&] { tanh(k); }},
      {"sigmoid", [&] { sigmoid(k); }}, {"sqrt", [&] { sqrt(k); }},       {"pow", [&] { pow(k, 2.0); }},
      {"div", [&] { div(k, k); }},      {"pow", [&] { pow(k, k); }},
  };
  for (const auto& [name, op] : ops) {
    std::string message = error_of(op);
    CHECK_MESSAGE(matches(message, name + R"(: .*i64)"), name, ": ", message);
  }
}

TEST_CASE("to and minimum: values, gradcheck and gradgradcheck (broadcasting, ties split evenly)") {
  // to(f64) of a float64 tensor is a recorded copy; to(f32) and back carries gradients across dtypes
  check_gradients([](const std::vector<Tensor>& in) { return in[0].to(f64) * in[0]; }, {input({2, 3})});
  Tensor x = input({4});
  sum(x.to(f32).to(f64) * 3.0).backward();
  check_values(x.grad(), {4}, {3, 3, 3, 3});
  CHECK(x.to(f32).dtype() == f32);
  // minimum: the smaller input gets the gradient, half each at ties (as maximum)
  check_values(minimum(tensor({1.0, 5.0, 2.0}, f64), tensor({3.0, 4.0, 2.0}, f64)), {3}, {1, 4, 2});
  Tensor a = tensor({1.0, 5.0, 2.0}, f64).requires_grad_(), b = tensor({3.0, 4.0, 2.0}, f64).requires_grad_();
  sum(minimum(a, b)).backward();
  check_values(a.grad(), {3}, {1, 0, 0.5});
  check_values(b.grad(), {3}, {0, 1, 0.5});
  check_gradients([](const std::vector<Tensor>& in) { return minimum(in[0], in[1]) * in[0]; },
                  {input_away_from_zero({2, 3}, 1), input_away_from_zero({3}, 2)});
}
