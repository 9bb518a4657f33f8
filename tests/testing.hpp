#pragma once
// Shared helpers for the tests: float64 inputs, gradient checks, regex matching of errors.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include <xgrad/xgrad.hpp>

namespace xgrad::testing {

/// The inputs a checked function receives.
using Inputs = std::vector<Tensor>;

/// A fresh directory under the system's temp dir, named for the test and this process, removed
/// with everything in it at the end of the scope.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag)
      : path(std::filesystem::temp_directory_path() / ("xgrad_test_" + tag + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

/// f64 values uniform in [low, high), requiring grad (seeded: every run sees the same numbers).
inline Tensor input(const Shape& shape, double low = -1, double high = 1, std::uint64_t seed = 1) {
  Generator gen(seed);
  return uniform(shape, low, high, f64, &gen).requires_grad_();
}

/// Like input(), but with |x| in [0.5, 1.5]: away from the kinks of relu, abs and sign.
inline Tensor input_away_from_zero(const Shape& shape, std::uint64_t seed = 1) {
  Generator gen(seed);
  Tensor magnitude = uniform(shape, 0.5, 1.5, f64, &gen);
  Tensor signs = sign(uniform(shape, -1, 1, f64, &gen));
  return (magnitude * signs).detach().requires_grad_();
}

/// gradcheck and gradgradcheck, reporting the failing message through doctest.
inline void check_gradients(const TensorFunction& f, const std::vector<Tensor>& inputs, bool second_order = true) {
  CHECK_NOTHROW(gradcheck(f, inputs));
  if (second_order) CHECK_NOTHROW(gradgradcheck(f, inputs));
}

/// The message of the xgrad::Error that `f` throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

inline bool matches(const std::string& text, const std::string& pattern) {
  return std::regex_search(text, std::regex(pattern));
}

/// The same values to the bit (the sign of zero included), NaN where the other has NaN (a NaN's
/// sign and payload depend on the order of a commutative instruction's operands).
inline bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const auto x = a.to_vector<double>(), y = b.to_vector<double>();
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i]) && std::isnan(y[i])) continue;
    if (std::memcmp(&x[i], &y[i], sizeof(double)) != 0) {
      MESSAGE("element ", i, ": ", x[i], " vs ", y[i]);
      return false;
    }
  }
  return true;
}

/// Max |a - b| over all elements (shapes must match).
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  auto x = a.to_vector<double>();
  auto y = b.to_vector<double>();
  double worst = 0;
  for (std::size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(x[i] - y[i]));
  return worst;
}

/// Checks shape and row-major values exactly (small, exactly representable cases).
inline void check_values(const Tensor& t, const Shape& shape, const std::vector<double>& values) {
  INFO("got ", to_string(t));
  CHECK(t.shape() == shape);
  CHECK(t.to_vector<double>() == values);
}

/// Checks shape and values against a reference computed another way.
inline void check_close(const Tensor& got, const Tensor& expected, double tolerance = 1e-12) {
  INFO("got ", to_string(got), "\nexpected ", to_string(expected));
  REQUIRE(got.shape() == expected.shape());
  CHECK(max_abs_diff(got, expected) <= tolerance);
}

/// How closely a result must agree with a PyTorch reference: NaN where PyTorch has NaN, the same
/// infinity where it has one; elsewhere within `ulps` units in the last place of the expected
/// value (libm and PyTorch's vectorised math may round the last bit differently; 0 and -0 count
/// as equal), plus `scaled` units of the largest expected magnitude (for composites, whose tiny
/// elements carry the rounding of their larger terms).
struct Agreement {
  double ulps = 4;
  double scaled = 0;
};

/// The elements (row-major positions) where got and expected disagree; throws on another shape
/// or dtype.
inline std::vector<std::size_t> mismatched(const Tensor& got, const Tensor& expected, Agreement agreement = {}) {
  if (got.shape() != expected.shape() || got.dtype() != expected.dtype())
    fail("shape/dtype {} {} vs PyTorch's {} {}", to_string(got.shape()), dtype_name(got.dtype()),
         to_string(expected.shape()), dtype_name(expected.dtype()));
  const double eps = got.dtype() == f32 ? std::numeric_limits<float>::epsilon() : std::numeric_limits<double>::epsilon();
  const double tiny = got.dtype() == f32 ? std::numeric_limits<float>::min() : std::numeric_limits<double>::min();
  const auto a = got.to_vector<double>(), b = expected.to_vector<double>();
  double largest = 0;
  for (double v : b)
    if (std::isfinite(v)) largest = std::max(largest, std::abs(v));
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double bound = (agreement.ulps * std::abs(b[i]) + agreement.scaled * largest) * eps + tiny;
    const bool ok = std::isnan(b[i]) ? std::isnan(a[i]) : std::isinf(b[i]) ? a[i] == b[i] : std::abs(a[i] - b[i]) <= bound;
    if (!ok) out.push_back(i);
  }
  return out;
}

/// The elements at `positions`, described: "[i] got vs PyTorch's expected; ...".
inline std::string describe(const std::vector<std::size_t>& positions, const Tensor& got, const Tensor& expected) {
  const auto a = got.to_vector<double>(), b = expected.to_vector<double>();
  std::string out;
  for (std::size_t i : positions) out += fmt::format("[{}] {} vs PyTorch's {}; ", i, a[i], b[i]);
  return out;
}

/// Where xgrad deliberately differs from PyTorch (documented in the README): the elements of one
/// fixture tensor, and why.
struct KnownDifference {
  std::vector<std::size_t> elements;
  std::string why;
};
using KnownDifferences = std::map<std::string, KnownDifference>;

/// Checks got against the fixture tensor `key`: exactly the elements `known` lists for that key
/// may disagree, and they must (so a stale entry fails as a new disagreement does).
inline void check_against_pytorch(const std::string& key, const Tensor& got, const Tensor& expected,
                                  Agreement agreement, const KnownDifferences& known = {}) {
  std::vector<std::size_t> bad;
  try {
    bad = mismatched(got, expected, agreement);
  } catch (const Error& e) {
    FAIL_CHECK(key, ": ", e.what());
    return;
  }
  const auto it = known.find(key);
  const std::vector<std::size_t> allowed = it == known.end() ? std::vector<std::size_t>{} : it->second.elements;
  CHECK_MESSAGE(bad == allowed, key, ": differ at ", describe(bad, got, expected),
                it == known.end() ? std::string() : " (known: " + it->second.why + ")");
}

#ifdef XGRAD_FIXTURES
/// A safetensors file of reference values made by tests/fixtures/make_fixtures.py (PyTorch).
struct Fixture {
  std::map<std::string, Tensor> tensors;
  explicit Fixture(const std::string& name) {
    for (auto& [key, t] : load_safetensors(std::string(XGRAD_FIXTURES) + "/" + name + ".safetensors"))
      tensors.emplace(key, t);
  }
  const Tensor& operator[](const std::string& key) const {
    auto it = tensors.find(key);
    if (it == tensors.end()) fail("fixture has no '{}'", key);
    return it->second;
  }
  bool has(const std::string& key) const { return tensors.count(key) > 0; }
};
#endif

/// 0, 1, 2, ... in f64, of the given shape.
/// An f64 tensor of `shape` holding `values` (row-major).
inline Tensor f64_tensor(const std::vector<double>& values, const Shape& shape) {
  Tensor t = empty(shape, f64);
  REQUIRE(static_cast<std::int64_t>(values.size()) == t.numel());
  std::copy(values.begin(), values.end(), t.data<double>());
  return t;
}

inline Tensor iota(const Shape& shape) { return reshape(arange(static_cast<double>(numel(shape)), f64), shape); }

}  // namespace xgrad::testing
