// Composites: built from the primitives, so they need no backward of their own.
#include <vector>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/error.hpp"

namespace xgrad {

Tensor square(const Tensor& x) { return x * x; }

Tensor minimum(const Tensor& a, const Tensor& b) { return neg(maximum(neg(a), neg(b))); }

Tensor cosine_similarity(const Tensor& a, const Tensor& b, std::int64_t axis, double eps) {
  if (a.dtype() != b.dtype())
    fail("cosine_similarity: dtypes differ: {} {} and {} {}", dtype_name(a.dtype()), a.shape(),
         dtype_name(b.dtype()), b.shape());
  if (!is_floating(a.dtype()))
    fail("cosine_similarity: expects floating tensors (f32 or f64), got i64 {} and {}", a.shape(), b.shape());
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), "cosine_similarity");
  const auto rank = static_cast<std::int64_t>(shape.size());
  if (axis < -rank || axis >= rank)
    fail("cosine_similarity: axis {} is out of range for shapes {} and {} (broadcast {})", axis, a.shape(),
         b.shape(), shape);
  // PyTorch 1.13's form: each operand, broadcast, over its own norm clamped below at eps, then
  // the sum of their product. The clamp is taken on the squared norm, so that a zero vector has a
  // gradient (b / (|b| eps)) and not sqrt's 0/0 at 0.
  auto unit = [&](const Tensor& v) {
    Tensor e = v.shape() == shape ? v : expand(v, shape);
    return e / sqrt(maximum(sum(e * e, axis, true), scalar(eps * eps, v.dtype())));
  };
  return sum(unit(a) * unit(b), axis);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  if (broadcast_shapes(x.shape(), mask.shape(), "masked_fill") != x.shape())
    fail("masked_fill: mask {} does not broadcast to the tensor's shape {}", mask.shape(), x.shape());
  return where(mask, scalar(value, x.dtype()), x);
}

Tensor flip(const Tensor& x, const Axes& axes) {
  Tensor y = x;
  std::vector<bool> seen(x.shape().size());
  for (std::int64_t axis : axes.list) {
    const int a = normalize_axis(axis, x.shape().size(), "flip", x.shape());
    if (seen[a]) fail("flip: axis {} appears twice (shape {})", axis, x.shape());
    seen[a] = true;
    const auto n = static_cast<double>(x.shape()[a]);
    y = index_select(y, a, arange(n - 1, -1, -1, i64));
  }
  return y;
}

Tensor roll(const Tensor& x, std::int64_t shift, std::int64_t axis) {
  const std::int64_t n = x.shape()[normalize_axis(axis, x.shape().size(), "roll", x.shape())];
  const std::int64_t s = n == 0 ? 0 : (shift % n + n) % n;  // in [0, n): the last s elements come first
  return concat({slice(x, axis, n - s, n), slice(x, axis, 0, n - s)}, axis);
}

}  // namespace xgrad
