#pragma once
// The consumer's own core/tensor.hpp: same path as xgrad's core/tensor.hpp, first on the include
// path. If an xgrad header still included "core/tensor.hpp" (unprefixed), it would get this file
// and xgrad::Tensor would be missing.
#include <vector>

namespace app {
struct Series {
  std::vector<double> values;
  double sum() const {
    double s = 0;
    for (double v : values) s += v;
    return s;
  }
};
}  // namespace app
