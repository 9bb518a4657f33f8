// Composites: built from the primitives, so they need no backward of their own.
#include "autograd/ops.hpp"

namespace xgrad {

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  // Shift by the (finite) row maximum first: log_softmax(x) = log_softmax(x - c) for any constant
  // c, and x - max is exact in floating point, so no large intermediate sum swallows precision.
  Tensor m = max(x, axis, true).values.detach();
  Tensor shifted = x - where(isfinite(m), m, zeros_like(m));
  return shifted - logsumexp(shifted, axis, true);
}

Tensor softmax(const Tensor& x, std::int64_t axis) { return exp(log_softmax(x, axis)); }

Tensor square(const Tensor& x) { return x * x; }

Tensor minimum(const Tensor& a, const Tensor& b) { return neg(maximum(neg(a), neg(b))); }

}  // namespace xgrad
