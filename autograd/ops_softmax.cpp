// The softmax family, logsumexp, log_softmax and softmax: primitives with their own row
// kernels, because over a language model's [tokens, vocabulary] logits the composed form
// (max, shift, exp, sum, log, subtract) makes six passes over the largest tensor of the step
// and these make two.
//
// Along `axis` a tensor is [outer, n, inner]; each (outer, inner) pair is one row of n elements
// at stride `inner`. Backward: first-order gradients run fused row kernels; under create_graph
// the same formulas are composed from ops, so gradients of gradients work as for any op.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "xgrad/autograd/op_impl.hpp"
#include "xgrad/core/loops.hpp"

namespace xgrad {

namespace {

/// The stride of a contiguous row, known at compile time so that its loops vectorize.
using Unit = std::integral_constant<std::int64_t, 1>;
template <class Stride>
constexpr bool kContiguous = std::is_same_v<Stride, Unit>;

struct Rows {
  std::int64_t outer = 1, n = 1, inner = 1;
  Rows(const Shape& shape, std::int64_t axis) {
    for (std::int64_t d = 0; d < static_cast<std::int64_t>(shape.size()); ++d)
      (d < axis ? outer : d == axis ? n : inner) *= shape[d];
  }
  /// Calls f(first, index, stride) with the offset of each row's first element, the row's index
  /// (its position in the reduced [outer, inner] tensor) and the stride of its elements (Unit
  /// for the usual last axis); rows split across the thread pool.
  template <class F>
  void each(F f) const {
    detail::parallel_items(outer * inner, n, [&](std::int64_t begin, std::int64_t end) {
      if (inner == 1)
        for (std::int64_t k = begin; k < end; ++k) f(k * n, k, Unit{});
      else
        for (std::int64_t k = begin; k < end; ++k) f(k / inner * n * inner + k % inner, k, inner);
    });
  }
};

/// The sum of term(j) over a row of n elements: batch_term(j) (an xsimd batch of the elements at
/// j, j+1, ...) on contiguous rows, then term(j) for the rest. Float32 sums run only within blocks
/// of 64 elements, and in double across blocks: a 30 000-word vocabulary row keeps the error of a
/// few additions.
template <class T, class Stride, class BatchTerm, class Term>
double blocked_sum(std::int64_t n, Stride, BatchTerm batch_term, Term term) {
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = B::size, kBlock = 64 / W;
  std::int64_t j = 0;
  double total = 0;
  if constexpr (kContiguous<Stride>) {
    while (j + W <= n) {
      B acc(T(0));
      for (std::int64_t b = 0; b < kBlock && j + W <= n; ++b, j += W) acc += batch_term(j);
      total += xsimd::hadd(acc);
    }
  }
  for (; j < n; ++j) total += term(j);
  return total;
}

/// The shift that makes exp(x - shift) safe: the row maximum (NaN passed over). PyTorch's
/// softmax and log_softmax shift by it as it is, so a row holding +inf, or only -inf, is NaN
/// throughout; its logsumexp shifts by 0 where the maximum is infinite (`finite`), so that
/// logsumexp is +inf, or -inf, there as the limit says.
template <class T, class Stride>
T row_shift(const T* x, std::int64_t n, Stride stride, bool finite = false) {
  using B = xsimd::batch<T>;
  T m = -INFINITY;
  std::int64_t j = 0;
  if constexpr (kContiguous<Stride>) {
    if (n >= static_cast<std::int64_t>(B::size)) {
      B batch_max(m);
      for (; j + static_cast<std::int64_t>(B::size) <= n; j += B::size) {
        const B v = B::load_unaligned(x + j);
        batch_max = xsimd::select(v > batch_max, v, batch_max);  // as below: NaN is passed over
      }
      alignas(64) T lanes[B::size];
      batch_max.store_aligned(lanes);
      for (const T v : lanes) m = v > m ? v : m;
    }
  }
  for (; j < n; ++j) m = x[j * stride] > m ? x[j * stride] : m;
  return !finite || std::isfinite(m) ? m : T(0);
}

/// exp(v - shift). In float32, v - shift is rounded (by up to 2^-24 |v - shift|, which exp
/// turns into a relative error of the result): the scalar form takes the difference in double;
/// the vector form recovers the rounding error exactly (Knuth's two-sum) and applies it as
/// exp(d + e) = exp(d) (1 + e). Either way each value is good to a few units in the last place.
template <class T>
T exp_minus(T v, T shift) {
  return static_cast<T>(std::exp(static_cast<double>(v) - static_cast<double>(shift)));
}

template <class T>
xsimd::batch<T> exp_minus(xsimd::batch<T> v, xsimd::batch<T> shift) {
  using B = xsimd::batch<T>;
  if constexpr (std::is_same_v<T, double>) {
    return xsimd::exp(v - shift);
  } else {
    const B d = v - shift, back = d - v;
    const B e = (v - (d - back)) + (-shift - back);
    const B y = xsimd::exp(d);
    return xsimd::fma(y, xsimd::select(e == e, e, B(0)), y);  // e is NaN where v is infinite
  }
}

/// y[j] = exp(x[j] - shift) (y = nullptr: not stored), returning the sum of them.
template <class T, class Stride>
double exp_sum(const T* x, T* y, std::int64_t n, Stride stride, T shift) {
  using B = xsimd::batch<T>;
  const B s(shift);
  return blocked_sum<T>(
      n, stride,
      [&](std::int64_t j) {
        const B e = exp_minus(B::load_unaligned(x + j), s);
        if (y) e.store_unaligned(y + j);
        return e;
      },
      [&](std::int64_t j) {
        const T e = exp_minus(x[j * stride], shift);
        if (y) y[j * stride] = e;
        return e;
      });
}

template <class T, class Stride>
double row_sum(const T* x, std::int64_t n, Stride stride) {
  using B = xsimd::batch<T>;
  return blocked_sum<T>(
      n, stride, [&](std::int64_t j) { return B::load_unaligned(x + j); },
      [&](std::int64_t j) { return x[j * stride]; });
}

template <class T, class Stride>
double row_dot(const T* x, const T* y, std::int64_t n, Stride stride) {
  using B = xsimd::batch<T>;
  return blocked_sum<T>(
      n, stride, [&](std::int64_t j) { return B::load_unaligned(x + j) * B::load_unaligned(y + j); },
      [&](std::int64_t j) { return x[j * stride] * y[j * stride]; });
}

// --- row kernels: one row of n elements at `stride`, the formulas of the ops below ----------------

/// out = c * softmax(x) = c exp(x - shift) / sum(exp(x - shift)), shifted by the row maximum;
/// returns the sum.
template <class T, class Stride>
double softmax_row(const T* x, T* out, std::int64_t n, Stride stride, double c = 1, bool finite_shift = false) {
  const double total = exp_sum<T>(x, out, n, stride, row_shift(x, n, stride, finite_shift));
  const T scale = static_cast<T>(c / total);
  for (std::int64_t j = 0; j < n; ++j) out[j * stride] *= scale;
  return total;
}

/// out = exp(x - shift) * scale in one pass: with softmax_row's shift and scale (c / sum), its
/// values to the bit (the same vector body and scalar tail, the same roundings).
template <class T, class Stride>
void scaled_exp_row(const T* x, T* out, std::int64_t n, Stride stride, T shift, T scale) {
  using B = xsimd::batch<T>;
  constexpr std::int64_t W = B::size;
  std::int64_t j = 0;
  if constexpr (kContiguous<Stride>) {
    const B s(shift), c(scale);
    for (; j + W <= n; j += W) (exp_minus(B::load_unaligned(x + j), s) * c).store_unaligned(out + j);
  }
  for (; j < n; ++j) out[j * stride] = exp_minus(x[j * stride], shift) * scale;
}

/// out = log_softmax(x) = (x - shift) - log(sum(exp(x - shift))); x - shift is exact near the
/// maximum, so shifting first keeps the small differences of large logits.
template <class T, class Stride>
void log_softmax_row(const T* x, T* out, std::int64_t n, Stride stride) {
  const T shift = row_shift(x, n, stride);
  const T log_sum = static_cast<T>(std::log(exp_sum<T>(x, nullptr, n, stride, shift)));
  for (std::int64_t j = 0; j < n; ++j) out[j * stride] = (x[j * stride] - shift) - log_sum;
}

/// log(sum(exp(x))) of a row.
template <class T, class Stride>
T logsumexp_row(const T* x, std::int64_t n, Stride stride) {
  const T shift = row_shift(x, n, stride, /*finite=*/true);
  return static_cast<T>(shift + std::log(exp_sum<T>(x, nullptr, n, stride, shift)));
}

/// softmax backward: out = y * (g - sum(g * y)).
template <class T, class Stride>
void softmax_backward_row(const T* g, const T* y, T* out, std::int64_t n, Stride stride) {
  const T s = static_cast<T>(row_dot(g, y, n, stride));
  for (std::int64_t j = 0; j < n; ++j) out[j * stride] = y[j * stride] * (g[j * stride] - s);
}

/// log_softmax backward: out = g - exp(y) * sum(g).
template <class T, class Stride>
void log_softmax_backward_row(const T* g, const T* y, T* out, std::int64_t n, Stride stride) {
  const T s = static_cast<T>(row_sum(g, n, stride));
  exp_sum<T>(y, out, n, stride, T(0));
  for (std::int64_t j = 0; j < n; ++j) out[j * stride] = g[j * stride] - out[j * stride] * s;
}

std::int64_t softmax_axis(const Tensor& x, std::int64_t axis, const char* op) {
  if (x.dim() == 0) fail("{}: expects a tensor with at least one axis, got a scalar", op);
  return normalize_axis(axis, x.dim(), op, x.shape());
}

/// A new tensor of `shape` in `dtype` (or `into`, when given, of that shape), written row by row
/// across the pool: f(out, r, k, stride) for each row of `rows` (out: the tensor's data, r: the
/// offset of the row's first element in the input, k: the row's index).
template <class F>
Tensor by_rows(const Shape& shape, Dtype dtype, const Rows& rows, const char* op, F f, Tensor into = {}) {
  return dispatch_floating(dtype, op, [&](auto tag) {
    using T = decltype(tag);
    Tensor out = into.defined() ? std::move(into) : empty(shape, dtype);
    T* po = out.data<T>();
    rows.each([&](std::int64_t r, std::int64_t k, auto stride) { f(po, r, k, stride); });
    return out;
  });
}

/// The element type behind a data pointer that by_rows hands to its f.
template <class P>
using Elem = std::remove_pointer_t<P>;

/// logsumexp over one axis, keeping it (size 1).
Tensor logsumexp_axis(const Tensor& x, std::int64_t a) {
  const Rows rows(x.shape(), a);
  Shape keep_shape = x.shape();
  keep_shape[a] = 1;
  Tensor y =
      by_rows(keep_shape, x.dtype(), rows, "logsumexp", [&](auto* py, std::int64_t r, std::int64_t k, auto stride) {
        using T = Elem<decltype(py)>;
        py[k] = logsumexp_row(x.data<T>() + r, rows.n, stride);
      });
  return record("logsumexp", y, {x}, [x, a, rows](const Tensor& g, const Tensor& y) -> Grads {
    // d/dx = g exp(x - lse), the softmax, as PyTorch (NaN where x = lse = +inf, or lse is NaN),
    // except on a row of only -inf: lse = -inf whatever its elements do, so their gradient is 0
    // (PyTorch's exp(-inf + inf) is NaN)
    if (autograd::grad_enabled()) {
      const Tensor all_minus_inf = eq(y, scalar(-INFINITY, y.dtype()));
      return {expand(g, x.shape()) * exp(x - where(all_minus_inf, scalar(0, y.dtype()), y))};
    }
    // exp(x - max) / sum rather than exp(x - lse): lse is rounded, and at |lse| ~ 1000 that
    // rounding alone would cost float32 gradients 5e-5 of relative accuracy
    return {by_rows(
        x.shape(), x.dtype(), rows, "logsumexp backward", [&](auto* out, std::int64_t r, std::int64_t k, auto stride) {
          using T = Elem<decltype(out)>;
          out += r;
          // the maximum contributes e^0 = 1 to the sum, so it is 0 only on a row of only -inf
          if (softmax_row(x.data<T>() + r, out, rows.n, stride, g.data<T>()[k], /*finite_shift=*/true) == 0)
            for (std::int64_t j = 0; j < rows.n; ++j) out[j * stride] = 0;
        })};
  });
}

}  // namespace

Tensor logsumexp(const Tensor& x, const Axes& axes, bool keepdim) {
  const auto ax = reduce_axes(axes, x.shape(), "logsumexp");
  const Shape out_shape = reduced_shape(x.shape(), ax, keepdim);
  if (ax.size() == 1) return reshape(logsumexp_axis(x, static_cast<std::int64_t>(ax[0])), out_shape);
  // Several axes: move them to the end as one axis (a copy, in this rarer case)
  std::vector<std::int64_t> order;
  for (std::size_t d = 0; d < x.shape().size(); ++d)
    if (!std::binary_search(ax.begin(), ax.end(), d)) order.push_back(static_cast<std::int64_t>(d));
  const std::size_t kept = order.size();
  order.insert(order.end(), ax.begin(), ax.end());
  Shape rows = reduced_shape(x.shape(), ax, false);
  rows.push_back(-1);
  if (kept == 0) rows = {1, -1};
  return reshape(logsumexp_axis(reshape(permute(x, order), rows), -1 + static_cast<std::int64_t>(rows.size())),
                 out_shape);
}

Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  const std::int64_t a = softmax_axis(x, axis, "log_softmax");
  const Rows rows(x.shape(), a);
  Tensor y =
      by_rows(x.shape(), x.dtype(), rows, "log_softmax", [&](auto* py, std::int64_t r, std::int64_t, auto stride) {
        using T = Elem<decltype(py)>;
        log_softmax_row(x.data<T>() + r, py + r, rows.n, stride);
      });
  return record("log_softmax", y, {x}, [a, rows](const Tensor& g, const Tensor& y) -> Grads {
    // d/dx: g - softmax * sum(g) along the axis, with softmax = exp(y)
    if (autograd::grad_enabled()) return {g - exp(y) * sum(g, a, true)};
    return {by_rows(y.shape(), y.dtype(), rows, "log_softmax backward",
                    [&](auto* out, std::int64_t r, std::int64_t, auto stride) {
                      using T = Elem<decltype(out)>;
                      log_softmax_backward_row(g.data<T>() + r, y.data<T>() + r, out + r, rows.n, stride);
                    })};
  });
}

Tensor log_softmax_gather(const Tensor& x, std::int64_t axis, const Tensor& index) {
  const std::int64_t a = softmax_axis(x, axis, "log_softmax_gather");
  Shape picks = x.shape();
  picks[a] = 1;
  if (index.dtype() != i64 || index.shape() != picks)
    fail("log_softmax_gather: index must be i64 of shape {} (x {} with 1 along axis {}), got {} {}", picks, x.shape(),
         axis, dtype_name(index.dtype()), index.shape());
  const Rows rows(x.shape(), a);
  const std::int64_t* idx = checked_index(index, "log_softmax_gather", rows.n, axis, x.shape());
  // per row, the shift and sum(exp(x - shift)): backward's softmax is then one pass over the row
  const Tensor row_sums = empty({rows.outer * rows.inner, 2}, f64);
  double* sums = row_sums.data<double>();
  Tensor y =
      by_rows(picks, x.dtype(), rows, "log_softmax_gather", [&](auto* py, std::int64_t r, std::int64_t k, auto stride) {
        using T = Elem<decltype(py)>;
        const T* px = x.data<T>() + r;
        const T shift = row_shift(px, rows.n, stride);  // as log_softmax_row computes it
        const double total = exp_sum<T>(px, nullptr, rows.n, stride, shift);
        sums[2 * k] = shift;
        sums[2 * k + 1] = total;
        py[k] = (px[idx[k] * stride] - shift) - static_cast<T>(std::log(total));
      });
  return record("log_softmax_gather", y, {x}, [x, a, index, rows, row_sums](const Tensor& g, const Tensor&) -> Grads {
    if (autograd::grad_enabled()) return {scatter_add(x.shape(), a, index, g) - softmax(x, a) * g};
    // one pass per row: -g softmax(x), plus g at the picked element. Written over x itself
    // when nothing will read x again (cross_entropy's logits: at lstm_lm's [1120, 10000] the
    // step's peak then holds one such tensor, not two); each element is read before it is written.
    const std::int64_t* pi = index.data<std::int64_t>();
    const double* sums = row_sums.data<double>();
    return {by_rows(
        x.shape(), x.dtype(), rows, "log_softmax_gather backward",
        [&](auto* out, std::int64_t r, std::int64_t k, auto stride) {
          using T = Elem<decltype(out)>;
          const T gk = g.data<T>()[k];
          out += r;
          // softmax_row(x, out, n, stride, -gk) without finding the shift and the sum again
          const T shift = static_cast<T>(sums[2 * k]), scale = static_cast<T>(-gk / sums[2 * k + 1]);
          scaled_exp_row(x.data<T>() + r, out, rows.n, stride, shift, scale);
          out[pi[k] * stride] += gk;
        },
        autograd::detail::reusable_in_backward(x) ? x.detach() : Tensor())};
  });
}

Tensor softmax(const Tensor& x, std::int64_t axis) {
  const std::int64_t a = softmax_axis(x, axis, "softmax");
  const Rows rows(x.shape(), a);
  Tensor y = by_rows(x.shape(), x.dtype(), rows, "softmax", [&](auto* py, std::int64_t r, std::int64_t, auto stride) {
    using T = Elem<decltype(py)>;
    softmax_row(x.data<T>() + r, py + r, rows.n, stride);
  });
  return record("softmax", y, {x}, [a, rows](const Tensor& g, const Tensor& y) -> Grads {
    // d/dx: y * (g - sum(g * y)) along the axis
    if (autograd::grad_enabled()) return {y * (g - sum(g * y, a, true))};
    return {by_rows(y.shape(), y.dtype(), rows, "softmax backward",
                    [&](auto* out, std::int64_t r, std::int64_t, auto stride) {
                      using T = Elem<decltype(out)>;
                      softmax_backward_row(g.data<T>() + r, y.data<T>() + r, out + r, rows.n, stride);
                    })};
  });
}

}  // namespace xgrad
