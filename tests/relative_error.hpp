#pragma once
// The deviation of a result from a PyTorch reference relative to the reference's scale, as the
// parity tests report it (test_parity, test_layer_options).
#include <algorithm>
#include <cmath>

#include "testing.hpp"

namespace xgrad::testing {

/// max |got - want| / max |want|: the deviation relative to the tensor's scale.
inline double relative_error(const Tensor& got, const Tensor& want) {
  REQUIRE(got.shape() == want.shape());
  const auto a = got.to_vector<double>(), b = want.to_vector<double>();
  double diff = 0, scale = 1e-30;
  for (std::size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(a[i] - b[i]));
    scale = std::max(scale, std::abs(b[i]));
  }
  return diff / scale;
}

}  // namespace xgrad::testing
