// Reductions: sum, mean, max with indices (logsumexp lives with softmax, in ops_softmax.cpp).
#include <algorithm>
#include <cmath>
#include <limits>


#include "autograd/op_impl.hpp"
#include "core/loops.hpp"

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
    detail::parallel_items(outer * inner, n, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t r = begin; r < end; ++r) {  // r = o * inner + i
        const T* p = px + r / inner * n * inner + r % inner;
        std::int64_t best = 0;
        for (std::int64_t k = 1; k < n; ++k)  // NaN propagates: a NaN is never replaced
          if (p[k * inner] > p[best * inner] || (std::isnan(static_cast<double>(p[k * inner])) &&
                                                 !std::isnan(static_cast<double>(p[best * inner]))))
            best = k;
        pv[r] = p[best * inner];
        pi[r] = best;
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

}  // namespace xgrad
