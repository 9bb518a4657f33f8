// Reductions: sum, mean, max with indices (logsumexp lives with softmax, in ops_softmax.cpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>


#include "xgrad/autograd/op_impl.hpp"
#include "xgrad/core/loops.hpp"

namespace xgrad {

namespace {

Axes all_axes(const Tensor& x) {
  std::vector<std::int64_t> all(x.shape().size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::int64_t>(i);
  return Axes(all);
}

std::int64_t count_over(const Shape& shape, const std::vector<std::size_t>& axes) {
  std::int64_t n = 1;
  for (auto a : axes) n *= shape[a];
  return n;
}

}  // namespace

std::vector<std::size_t> detail::reduce_axes(const Axes& axes, const Shape& shape, const char* op) {
  std::vector<std::size_t> out;
  for (auto a : axes.list) out.push_back(static_cast<std::size_t>(normalize_axis(a, shape.size(), op, shape)));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end())
    fail("{}: repeated axis in the axes of a reduction over shape {}", op, shape);
  return out;
}

Shape detail::reduced_shape(const Shape& shape, const std::vector<std::size_t>& axes, bool keepdim) {
  Shape out;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    bool reduced = std::binary_search(axes.begin(), axes.end(), i);
    if (!reduced) out.push_back(shape[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

// --- sum, mean ---------------------------------------------------------------------------------

Tensor sum(const Tensor& x, const Axes& axes, bool keepdim) {
  auto ax = reduce_axes(axes, x.shape(), "sum");
  Shape keep_shape = reduced_shape(x.shape(), ax, true);
  Tensor y = zeros(keep_shape, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    detail::sum_into(x.shape(), x.data<T>(), keep_shape, y.data<T>());
  });
  if (!keepdim) y = reshape(y, reduced_shape(x.shape(), ax, false));
  return record("sum", y, {x}, [keep_shape, sx = x.shape()](const Tensor& g) -> Grads {
    return {expand(reshape(g, keep_shape), sx)};
  });
}

Tensor sum(const Tensor& x) { return sum(x, all_axes(x)); }

Tensor mean(const Tensor& x, const Axes& axes, bool keepdim) {
  if (!is_floating(x.dtype())) fail("mean: expects a floating tensor (f32 or f64), got i64 {}", x.shape());
  auto n = count_over(x.shape(), reduce_axes(axes, x.shape(), "mean"));
  return sum(x, axes, keepdim) / static_cast<double>(n);
}

Tensor mean(const Tensor& x) { return mean(x, all_axes(x)); }

// --- max -----------------------------------------------------------------------------------------

namespace {

/// Whether v replaces the maximum so far: NaN propagates (a NaN is never replaced) and ties keep
/// the first index, as in PyTorch. Bitwise, not short-circuit: the data decides, so no branch.
template <class T>
bool beats(T v, T best) {
  return (v > best) | ((v != v) & (best == best));
}

/// Maxima and their indices down `width` columns of an [n, stride] block: a running maximum per
/// column, swept row by row (vectorised: selects, no branches).
template <class T>
void running_max(const T* __restrict p, T* __restrict values, std::int64_t* __restrict indices, std::int64_t n,
                 std::int64_t stride, std::int64_t width) {
  std::copy_n(p, width, values);
  std::fill_n(indices, width, std::int64_t{0});
  for (std::int64_t k = 1; k < n; ++k)
    for (std::int64_t i = 0; i < width; ++i) {
      const T candidate = p[k * stride + i], best = values[i];
      const bool wins = beats(candidate, best);
      values[i] = wins ? candidate : best;
      indices[i] = wins ? k : indices[i];
    }
}

}  // namespace

MaxResult max(const Tensor& x, std::int64_t axis, bool keepdim) {
  const int a = normalize_axis(axis, x.shape().size(), "max", x.shape());
  const std::int64_t n = x.shape()[a];
  if (n == 0) fail("max: cannot reduce over axis {} of size 0 (shape {})", axis, x.shape());
  std::vector<std::size_t> ax{static_cast<std::size_t>(a)};
  Shape keep_shape = reduced_shape(x.shape(), ax, true);
  Shape out_shape = reduced_shape(x.shape(), ax, keepdim);
  std::int64_t outer = 1, inner = 1;  // products, not numel / (n * inner): inner may be 0
  for (int i = 0; i < a; ++i) outer *= x.shape()[i];
  for (std::size_t i = a + 1; i < x.shape().size(); ++i) inner *= x.shape()[i];

  Tensor values = empty(out_shape, x.dtype());
  Tensor indices = empty(out_shape, i64);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    std::int64_t* pi = indices.data<std::int64_t>();
    if (inner == 1) {  // each reduction a contiguous row
      detail::parallel_items(outer, n, [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t r = begin; r < end; ++r) {
          const T* p = px + r * n;
          T best = p[0];
          std::int64_t at = 0;
          for (std::int64_t k = 1; k < n; ++k) {
            const bool wins = beats(p[k], best);
            best = wins ? p[k] : best;
            at = wins ? k : at;
          }
          pv[r] = best;
          pi[r] = at;
        }
      });
      return;
    }
    // otherwise the columns (outer * inner of them) are split across threads
    detail::parallel_items(outer * inner, n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end;) {
        const std::int64_t o = r / inner, first = r % inner, last = std::min(inner, first + (end - r));
        running_max(px + o * n * inner + first, pv + o * inner + first, pi + o * inner + first, n, inner,
                    last - first);
        r += last - first;
      }
    });
  });
  Tensor index_keep = reshape(indices, keep_shape);
  values = record("max", values, {x}, [index_keep, keep_shape, a, sx = x.shape()](const Tensor& g) -> Grads {
    return {scatter_add(sx, a, index_keep, reshape(g, keep_shape))};
  });
  return {values, indices};
}

Tensor max(const Tensor& x) {
  if (x.numel() == 0) fail("max: cannot reduce an empty tensor (shape {})", x.shape());
  Tensor m = max(reshape(x.detach(), {-1}), 0).values;
  return record("max", m, {x}, [x](const Tensor& g, const Tensor& m) -> Grads {
    // PyTorch: the gradient is shared evenly by every element equal to the maximum (every NaN,
    // when the maximum is NaN). The share is constant: max is piecewise linear.
    const Tensor v = x.detach(), top = m.detach();
    const Tensor at_max = eq(v, top) + ne(v, v) * ne(top, top);
    return {g * (at_max / sum(at_max))};
  });
}

// --- argmax, argmin ----------------------------------------------------------------------------

Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim) { return max(x.detach(), axis, keepdim).indices; }
Tensor argmax(const Tensor& x) { return argmax(reshape(x.detach(), {-1}), 0); }
// -x keeps NaN a NaN, which max picks first: argmin returns the first NaN too (PyTorch).
Tensor argmin(const Tensor& x, std::int64_t axis, bool keepdim) { return argmax(neg(x.detach()), axis, keepdim); }
Tensor argmin(const Tensor& x) { return argmax(neg(x.detach())); }

// --- norm ----------------------------------------------------------------------------------------

namespace {

/// max(|x|) over axes, NaN propagating: the reduced axes moved last and flattened into one.
Tensor max_abs(const Tensor& x, const std::vector<std::size_t>& axes, bool keepdim) {
  std::vector<std::int64_t> order;
  for (std::size_t i = 0; i < x.shape().size(); ++i)
    if (!std::binary_search(axes.begin(), axes.end(), i)) order.push_back(static_cast<std::int64_t>(i));
  Shape kept;
  for (auto i : order) kept.push_back(x.shape()[i]);
  for (auto a : axes) order.push_back(static_cast<std::int64_t>(a));
  kept.push_back(count_over(x.shape(), axes));
  if (kept.back() == 0) fail("norm: the inf-norm of an empty reduction (shape {}) has no maximum", x.shape());
  Tensor m = max(reshape(permute(abs(x), order), kept), -1).values;
  return reshape(m, reduced_shape(x.shape(), axes, keepdim));
}

}  // namespace

Tensor norm(const Tensor& x, double p, const Axes& axes, bool keepdim) {
  if (!is_floating(x.dtype())) fail("norm: expects a floating tensor (f32 or f64), got i64 {}", x.shape());
  if (!(p > 0)) fail("norm: p must be positive or inf, got {} (shape {})", p, x.shape());
  const auto ax = reduce_axes(axes, x.shape(), "norm");
  const Axes over(std::vector<std::int64_t>(ax.begin(), ax.end()));
  const Shape keep_shape = reduced_shape(x.shape(), ax, true);
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    const Tensor v = x.detach();
    if (std::isinf(p)) y = max_abs(v, ax, true);
    else if (p == 1) y = sum(abs(v), over, true);
    else if (p == 2) y = sqrt(sum(v * v, over, true));
    else y = pow(sum(pow(abs(v), p), over, true), 1 / p);
  }
  Tensor out = keepdim ? y : reshape(y, reduced_shape(x.shape(), ax, false));
  return record("norm", out, {x}, [x, p, over, keep_shape](const Tensor& g, const Tensor& out) -> Grads {
    // PyTorch's formulas: sign(x) |x|^(p-1) / y^(p-1), 0 where y = 0; for p = inf the gradient
    // goes to the entries with |x| = y (or NaN), shared evenly among them.
    const Tensor gk = reshape(g, keep_shape), yk = reshape(out, keep_shape);
    if (std::isinf(p)) {
      const Tensor ax_abs = abs(x);
      const Tensor at_max = eq(ax_abs, yk.detach()) + ne(ax_abs, ax_abs);
      return {sign(x) * at_max * (gk / sum(at_max, over, true))};
    }
    if (p == 1) return {sign(x) * gk};
    // where() picks 0 at a zero norm; the safe denominator keeps the unpicked branch finite, so
    // that gradients of this gradient are not 0 * inf there
    const Tensor zero = scalar(0, x.dtype()), at_zero = eq(yk, zero);
    const Tensor denominator = where(at_zero, scalar(1, x.dtype()), p == 2 ? yk : pow(yk, p - 1));
    const Tensor scale = where(at_zero, zero, gk / denominator);
    return {(p == 2 ? x : sign(x) * pow(abs(x), p - 1)) * scale};
  });
}

Tensor norm(const Tensor& x, double p) { return norm(x, p, all_axes(x)); }

// --- cumsum ---------------------------------------------------------------------------------------

namespace {

/// Running sums along axis a, from the start or (reverse) from the end; accumulated in double
/// for floating dtypes, like PyTorch's CPU kernel.
Tensor scan(const Tensor& x, int a, bool reverse) {
  const std::int64_t n = x.shape()[a];
  std::int64_t outer = 1, inner = 1;
  for (int i = 0; i < a; ++i) outer *= x.shape()[i];
  for (std::size_t i = a + 1; i < x.shape().size(); ++i) inner *= x.shape()[i];
  Tensor y = empty(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_floating_point_v<T>, double, T>;
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for (std::int64_t o = 0; o < outer; ++o)
      for (std::int64_t i = 0; i < inner; ++i) {
        Acc acc = 0;
        for (std::int64_t k = 0; k < n; ++k) {
          const std::int64_t at = (o * n + (reverse ? n - 1 - k : k)) * inner + i;
          acc += static_cast<Acc>(px[at]);
          py[at] = static_cast<T>(acc);
        }
      }
  });
  return record(reverse ? "cumsum_reverse" : "cumsum", y, {x},
                [a, reverse](const Tensor& g) -> Grads { return {scan(g, a, !reverse)}; });
}

}  // namespace

Tensor cumsum(const Tensor& x, std::int64_t axis) {
  return scan(x, normalize_axis(axis, x.shape().size(), "cumsum", x.shape()), false);
}

}  // namespace xgrad
