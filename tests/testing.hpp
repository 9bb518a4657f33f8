#pragma once
// Shared helpers for the tests: float64 inputs, gradient checks, regex matching of errors.
#include <unistd.h>

#include <filesystem>
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
inline Tensor iota(const Shape& shape) { return reshape(arange(static_cast<double>(numel(shape)), f64), shape); }

}  // namespace xgrad::testing
