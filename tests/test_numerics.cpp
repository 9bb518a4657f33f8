// Numerical stability of the log-sum-exp family for float32 logits far from zero.
#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

/// Reference log-sum-exp of one row in long double.
long double reference_lse(const std::vector<float>& row) {
  long double m = *std::max_element(row.begin(), row.end());
  long double s = 0;
  for (float v : row) s += std::exp(static_cast<long double>(v) - m);
  return m + std::log(s);
}

bool close(double got, long double want) {
  return std::abs(got - static_cast<double>(want)) <= 1e-6 * std::abs(static_cast<double>(want)) + 1e-5;
}

}  // namespace

TEST_CASE("logsumexp and log_softmax: float32 logits in [-2000, 900] stay finite and accurate") {
  Generator gen(21);
  const int rows = 64, cols = 50;
  Tensor wide = uniform({rows, cols}, -2000, 900, f32, &gen);
  Tensor lse = logsumexp(wide, 1);
  Tensor lsm = log_softmax(wide, 1);
  auto values = wide.to_vector<float>();
  auto lse_v = lse.to_vector<double>();
  auto lsm_v = lsm.to_vector<double>();
  for (int r = 0; r < rows; ++r) {
    std::vector<float> row(values.begin() + r * cols, values.begin() + (r + 1) * cols);
    long double want = reference_lse(row);
    CHECK(std::isfinite(lse_v[r]));
    CHECK(close(lse_v[r], want));
    for (int c = 0; c < cols; ++c) {
      CHECK(std::isfinite(lsm_v[r * cols + c]));
      INFO("row ", r, " col ", c, ": ", lsm_v[r * cols + c], " vs ", static_cast<double>(row[c] - want));
      CHECK(close(lsm_v[r * cols + c], static_cast<long double>(row[c]) - want));
    }
  }
  Tensor extremes = tensor({{900, -2000, -2000, -2000}, {-2000, -2000, -2000, -2000}, {900, 900, 900, 900}});
  auto e = logsumexp(extremes, 1).to_vector<double>();
  CHECK(e[0] == doctest::Approx(900).epsilon(1e-7));
  CHECK(e[1] == doctest::Approx(-2000 + std::log(4.0)).epsilon(1e-7));
  CHECK(e[2] == doctest::Approx(900 + std::log(4.0)).epsilon(1e-7));
  Tensor sm = softmax(extremes, 1);
  auto s = sm.to_vector<double>();
  CHECK(s[0] == doctest::Approx(1.0));
  CHECK(s[1] == 0.0);
  CHECK(s[4] == doctest::Approx(0.25));
}

TEST_CASE("logsumexp of all -inf is -inf with a zero, non-NaN gradient") {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = tensor({{-inf, -inf, -inf}, {0.0, -inf, 1.0}}, f64).requires_grad_();
  Tensor y = logsumexp(x, 1);
  auto v = y.to_vector<double>();
  CHECK(v[0] == -inf);
  CHECK(v[1] == doctest::Approx(std::log(1 + std::exp(1.0))).epsilon(1e-14));
  y.backward(tensor({1.0, 1.0}, f64));
  auto g = x.grad().to_vector<double>();
  for (double gi : g) CHECK_FALSE(std::isnan(gi));
  CHECK(g[0] == 0.0);
  CHECK(g[1] == 0.0);
  CHECK(g[2] == 0.0);
  CHECK(g[4] == 0.0);  // exp(-inf - lse)
  CHECK(g[3] + g[5] == doctest::Approx(1.0).epsilon(1e-14));
}

TEST_CASE("softmax gradients stay finite for float32 logits of large magnitude") {
  Tensor x = tensor({{800, -1500, 10}, {-2000, -1999, -1998}}).requires_grad_();
  Tensor y = sum(log_softmax(x, 1) * tensor({{1, 0, 0}, {0, 0, 1}}));
  y.backward();
  auto g = x.grad().to_vector<double>();
  for (double gi : g) CHECK(std::isfinite(gi));
  CHECK(g[0] == doctest::Approx(0).scale(1));
  CHECK(g[5] == doctest::Approx(1 - 1 / (1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-5));
}
