// softmax and log_softmax: primitives with their own row kernels, because over a language
// model's [tokens, vocabulary] logits the composed form (max, shift, exp, sum, log, subtract)
// makes six passes over the largest tensor of the step and these make two.
//
// Along `axis` a tensor is [outer, n, inner]; each (outer, inner) pair is one row of n elements
// at stride `inner`. Backward: first-order gradients run fused row kernels; under create_graph
// the same formulas are composed from ops, so gradients of gradients work as for any op.
#include <cmath>

#include <xsimd/xsimd.hpp>

#include "autograd/op_impl.hpp"

namespace xgrad {

namespace {

struct Rows {
  std::int64_t outer = 1, n = 1, inner = 1;
  Rows(const Shape& shape, std::int64_t axis) {
    for (std::int64_t d = 0; d < static_cast<std::int64_t>(shape.size()); ++d)
      (d < axis ? outer : d == axis ? n : inner) *= shape[d];
  }
  /// Calls f(offset) with the offset of the first element of every row.
  template <class F>
  void each(F f) const {
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) f(o * n * inner + i);
  }
};

/// The shift that makes exp(x - shift) safe: the row maximum, or 0 where it is not finite
/// (a row of -inf gives exp(-inf) = 0 and log 0 = -inf, as the limit says).
template <class T>
T row_shift(const T* x, std::int64_t n, std::int64_t stride) {
  T m = -INFINITY;
  for (std::int64_t j = 0; j < n; ++j) m = x[j * stride] > m ? x[j * stride] : m;
  return std::isfinite(m) ? m : T(0);
}

/// y[j] = exp(x[j] - shift), returning the sum of y (y may be x itself; y = nullptr: sum only).
/// The contiguous case runs on xsimd batches: std::exp is a scalar libm call.
template <class T>
T exp_shifted(const T* x, T* y, std::int64_t n, std::int64_t stride, T shift) {
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = B::size;
  std::int64_t j = 0;
  T total = 0;
  if (stride == 1 && n >= W) {
    B acc(T(0)), s(shift);
    for (; j + W <= n; j += W) {
      B e = xsimd::exp(B::load_unaligned(x + j) - s);
      if (y) e.store_unaligned(y + j);
      acc += e;
    }
    total = xsimd::hadd(acc);
  }
  for (; j < n; ++j) {
    const T e = std::exp(x[j * stride] - shift);
    if (y) y[j * stride] = e;
    total += e;
  }
  return total;
}

template <class T>
T row_sum(const T* x, std::int64_t n, std::int64_t stride) {
  T total = 0;
  for (std::int64_t j = 0; j < n; ++j) total += x[j * stride];
  return total;
}

template <class T>
T row_dot(const T* x, const T* y, std::int64_t n, std::int64_t stride) {
  T total = 0;
  for (std::int64_t j = 0; j < n; ++j) total += x[j * stride] * y[j * stride];
  return total;
}

std::int64_t softmax_axis(const Tensor& x, std::int64_t axis, const char* op) {
  if (x.dim() == 0) fail("{}: expects a tensor with at least one axis, got a scalar", op);
  return normalize_axis(axis, x.dim(), op, x.shape());
}

}  // namespace

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  const std::int64_t a = softmax_axis(x, axis, "log_softmax");
  const Rows rows(x.shape(), a);
  Tensor y = dispatch_floating(x.dtype(), "log_softmax", [&](auto tag) {
    using T = decltype(tag);
    Tensor out = empty(x.shape(), x.dtype());
    const T* px = x.data<T>();
    T* py = out.data<T>();
    rows.each([&](std::int64_t r) {
      const T shift = row_shift(px + r, rows.n, rows.inner);
      // x - shift is exact, so shifting first keeps the small differences of large logits
      const T log_sum = std::log(exp_shifted<T>(px + r, nullptr, rows.n, rows.inner, shift));
      for (std::int64_t j = 0; j < rows.n; ++j) py[r + j * rows.inner] = (px[r + j * rows.inner] - shift) - log_sum;
    });
    return out;
  });
  return record("log_softmax", y, {x}, [a, rows](const Tensor& g, const Tensor& y) -> Grads {
    // d/dx: g - softmax * sum(g) along the axis, with softmax = exp(y)
    if (autograd::grad_enabled()) return {g - exp(y) * sum(g, a, true)};
    return {dispatch_floating(y.dtype(), "log_softmax backward", [&](auto tag) {
      using T = decltype(tag);
      Tensor gx = empty(y.shape(), y.dtype());
      const T *pg = g.data<T>(), *py = y.data<T>();
      T* out = gx.data<T>();
      rows.each([&](std::int64_t r) {
        const T s = row_sum(pg + r, rows.n, rows.inner);
        exp_shifted<T>(py + r, out + r, rows.n, rows.inner, T(0));
        for (std::int64_t j = 0; j < rows.n; ++j) {
          const std::int64_t k = r + j * rows.inner;
          out[k] = pg[k] - out[k] * s;
        }
      });
      return gx;
    })};
  });
}

Tensor softmax(const Tensor& x, std::int64_t axis) {
  const std::int64_t a = softmax_axis(x, axis, "softmax");
  const Rows rows(x.shape(), a);
  Tensor y = dispatch_floating(x.dtype(), "softmax", [&](auto tag) {
    using T = decltype(tag);
    Tensor out = empty(x.shape(), x.dtype());
    const T* px = x.data<T>();
    T* py = out.data<T>();
    rows.each([&](std::int64_t r) {
      const T shift = row_shift(px + r, rows.n, rows.inner);
      const T scale = T(1) / exp_shifted<T>(px + r, py + r, rows.n, rows.inner, shift);
      for (std::int64_t j = 0; j < rows.n; ++j) py[r + j * rows.inner] *= scale;
    });
    return out;
  });
  return record("softmax", y, {x}, [a, rows](const Tensor& g, const Tensor& y) -> Grads {
    // d/dx: y * (g - sum(g * y)) along the axis
    if (autograd::grad_enabled()) return {y * (g - sum(g * y, a, true))};
    return {dispatch_floating(y.dtype(), "softmax backward", [&](auto tag) {
      using T = decltype(tag);
      Tensor gx = empty(y.shape(), y.dtype());
      const T *pg = g.data<T>(), *py = y.data<T>();
      T* out = gx.data<T>();
      rows.each([&](std::int64_t r) {
        const T s = row_dot(pg + r, py + r, rows.n, rows.inner);
        for (std::int64_t j = 0; j < rows.n; ++j) {
          const std::int64_t k = r + j * rows.inner;
          out[k] = py[k] * (pg[k] - s);
        }
      });
      return gx;
    })};
  });
}

}  // namespace xgrad
