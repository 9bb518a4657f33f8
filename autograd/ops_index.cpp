// Indexing primitives and their adjoints: index_select <-> index_add, gather <-> scatter_add,
// unfold <-> fold. Each adjoint's backward is the forward op, so all of them differentiate twice.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <type_traits>
#include <vector>

#include "xgrad/autograd/op_impl.hpp"
#include "xgrad/core/loops.hpp"

namespace xgrad {

namespace {

struct AxisLayout {  // a tensor seen as [outer, length, inner] around one axis
  std::int64_t outer = 1, length = 1, inner = 1;
};

AxisLayout layout_around(const Shape& s, int axis) {
  AxisLayout l;
  for (int i = 0; i < axis; ++i) l.outer *= s[i];
  l.length = s[axis];
  for (std::size_t i = axis + 1; i < s.size(); ++i) l.inner *= s[i];
  return l;
}

/// Row-major element strides of a shape.
Shape strides_of(const Shape& s) {
  Shape st(s.size(), 1);
  for (std::size_t i = s.size(); i-- > 1;) st[i - 1] = st[i] * s[i];
  return st;
}

/// Calls f(index_position, data_position) for every element of an index tensor of shape
/// `index_shape` (rank of `data_shape`), where data_position replaces the coordinate along
/// `axis` by the index value (the addressing of gather and scatter_add).
template <class F>
void for_each_gather(const Shape& index_shape, const Shape& data_shape, int axis, const std::int64_t* idx, F f) {
  bool aligned = true;  // the usual case: the index spans the data on every other axis
  for (std::size_t d = 0; d < data_shape.size(); ++d)
    aligned = aligned && (static_cast<int>(d) == axis || index_shape[d] == data_shape[d]);
  if (aligned) {  // outer slices in parallel: a slice's positions lie in its own slice of the data
    const AxisLayout data = layout_around(data_shape, axis);
    const std::int64_t picks = index_shape[axis];
    detail::parallel_items(data.outer, picks * data.inner, [&](std::int64_t begin, std::int64_t end) {
      std::int64_t k = begin * picks * data.inner;
      for (std::int64_t o = begin; o < end; ++o)
        for (std::int64_t j = 0; j < picks; ++j)
          for (std::int64_t i = 0; i < data.inner; ++i, ++k) f(k, (o * data.length + idx[k]) * data.inner + i);
    });
    return;
  }
  const Shape dst = strides_of(data_shape);
  Shape coord(index_shape.size(), 0);
  const std::int64_t n = numel(index_shape);
  for (std::int64_t k = 0; k < n; ++k) {
    std::int64_t pos = 0;
    for (std::size_t d = 0; d < coord.size(); ++d) pos += (static_cast<int>(d) == axis ? idx[k] : coord[d]) * dst[d];
    f(k, pos);
    for (std::size_t d = coord.size(); d-- > 0;) {  // advance the row-major counter
      if (++coord[d] < index_shape[d]) break;
      coord[d] = 0;
    }
  }
}

/// Whether an index picks exactly one position on every line along `axis` of the data (a max's
/// indices along an axis, kept as an axis of 1; the targets log_softmax_gather picks): then
/// scatter_add writes each line once.
bool one_pick_per_line(const Shape& index_shape, const Shape& data_shape, int axis) {
  for (std::size_t d = 0; d < data_shape.size(); ++d)
    if (index_shape[d] != (static_cast<int>(d) == axis ? 1 : data_shape[d])) return false;
  return true;
}

/// y = scatter_add into zeros of one pick per line, slice by slice while the slice is in cache:
/// zero it, then store 0 + each line's source value where the index picks (the sum that zeros
/// then += makes, -0 included).
template <class T>
void scatter_one_pick(const Shape& shape, int axis, const std::int64_t* idx, const Tensor& src, const Tensor& y) {
  const AxisLayout l = layout_around(shape, axis);
  const T* ps = src.data<T>();
  T* py = y.data<T>();
  detail::parallel_items(l.outer, l.length * l.inner, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t o = begin; o < end; ++o) {
      const std::int64_t* pick = idx + o * l.inner;
      const T* s = ps + o * l.inner;
      T* slice = py + o * l.length * l.inner;
      std::fill_n(slice, l.length * l.inner, T(0));
      for (std::int64_t i = 0; i < l.inner; ++i) slice[pick[i] * l.inner + i] = static_cast<T>(T(0) + s[i]);
    }
  });
}

void check_gather_shapes(const char* op, const Shape& index_shape, const Shape& data_shape, int axis) {
  bool ok = index_shape.size() == data_shape.size();
  for (std::size_t d = 0; ok && d < data_shape.size(); ++d)
    ok = static_cast<int>(d) == axis || index_shape[d] <= data_shape[d];
  if (!ok) fail("{}: index shape {} does not fit data shape {} (axis {})", op, index_shape, data_shape, axis);
}

/// y[0, n) += x[0, n) over distinct memory (vectorised).
template <class T>
void add_run(const T* __restrict x, T* __restrict y, std::int64_t n) {
  for (std::int64_t j = 0; j < n; ++j) y[j] += x[j];
}

struct Windows {  // unfold geometry along one axis
  std::int64_t count, size, step, dilation;
};

Windows window_geometry(const char* op, std::int64_t length, std::int64_t size, std::int64_t step,
                        std::int64_t dilation) {
  if (size < 1 || step < 1 || dilation < 1)
    fail("{}: size, step and dilation must be positive, got {}, {}, {}", op, size, step, dilation);
  // a window spans dilation * (size - 1) + 1 elements; compared by division, so that a huge size
  // or dilation cannot overflow
  if (length < 1 || (size - 1) > (length - 1) / dilation) return {0, size, step, dilation};
  return {(length - 1 - dilation * (size - 1)) / step + 1, size, step, dilation};
}

Shape unfolded_shape(const Shape& s, int axis, const Windows& w) {
  Shape out = s;
  out[axis] = w.count;
  out.push_back(w.size);
  return out;
}

/// Visits the windows of an unfold for the outer slices [begin, end), one run per window column:
/// f(k, pos, size, jump) pairs window elements k .. k + size - 1 (contiguous) with source
/// elements pos, pos + jump, ... (contiguous too when jump is 1: no dilation, no inner axis).
template <class F>
void for_each_window(const AxisLayout& l, const Windows& w, std::int64_t begin, std::int64_t end, F& f) {
  std::int64_t k = begin * w.count * l.inner * w.size;
  const std::int64_t jump = w.dilation * l.inner;  // from one element of a window to the next
  for (std::int64_t o = begin; o < end; ++o)
    for (std::int64_t c = 0; c < w.count; ++c) {
      const std::int64_t first = (o * l.length + c * w.step) * l.inner;
      for (std::int64_t i = 0; i < l.inner; ++i, k += w.size) f(k, first + i, w.size, jump);
    }
}

/// The same for every slice, the slices split across the thread pool (windows overlap only
/// within a slice, so parts never write the same element).
template <class F>
void for_each_window(const AxisLayout& l, const Windows& w, F f) {
  const std::int64_t per_slice = w.count * l.inner * w.size;
  detail::parallel_items(l.outer, per_slice, [&](std::int64_t begin, std::int64_t end) {
    for_each_window(l, w, begin, end, f);
  });
}

}  // namespace

const std::int64_t* detail::checked_index(const Tensor& index, const char* op, std::int64_t bound, std::int64_t axis,
                                          const Shape& shape) {
  if (index.dtype() != Dtype::i64) fail("{}: index must be i64, got {} {}", op, dtype_name(index.dtype()), index.shape());
  const std::int64_t* p = index.data<std::int64_t>();
  const std::int64_t n = index.numel();
  // One branch-free pass that vectorises (a max pool's backward checks every window's index),
  // then the first bad index for the message. 0 <= i <= bound - 1 exactly when neither i nor
  // bound - 1 - i is negative: the top bit of either, ORed over all, flags a bad one (in unsigned
  // arithmetic, which wraps instead of overflowing).
  const auto last = static_cast<std::uint64_t>(bound - 1);
  std::uint64_t signs = 0;
  for (std::int64_t k = 0; k < n; ++k) signs |= static_cast<std::uint64_t>(p[k]) | (last - static_cast<std::uint64_t>(p[k]));
  if (signs >> 63) {
    const auto out_of_range = [bound](std::int64_t i) { return i < 0 || i >= bound; };
    const std::int64_t bad = *std::find_if(p, p + n, out_of_range);
    fail("{}: index {} is out of range for axis {} of size {} (shape {})", op, bad, axis, bound, shape);
  }
  return p;
}

// --- index_select <-> index_add ------------------------------------------------------------------

Tensor index_select(const Tensor& x, std::int64_t axis, const Tensor& index) {
  int a = normalize_axis(axis, x.shape().size(), "index_select", x.shape());
  if (index.dim() != 1) fail("index_select: index must be 1-D, got shape {}", index.shape());
  const std::int64_t* idx = checked_index(index, "index_select", x.shape()[a], axis, x.shape());
  AxisLayout l = layout_around(x.shape(), a);
  Shape out = x.shape();
  out[a] = index.numel();
  Tensor y = empty(out, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const std::int64_t n = index.numel();
    for (std::int64_t o = 0; o < l.outer; ++o)
      for (std::int64_t k = 0; k < n; ++k)
        std::copy_n(px + (o * l.length + idx[k]) * l.inner, l.inner, py + (o * n + k) * l.inner);
  });
  return record("index_select", y, {x}, [sx = x.shape(), a, index](const Tensor& g) -> Grads {
    return {index_add(sx, a, index, g)};
  });
}

Tensor index_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& src) {
  int a = normalize_axis(axis, shape.size(), "index_add", shape);
  if (index.dim() != 1) fail("index_add: index must be 1-D, got shape {}", index.shape());
  Shape expected = shape;
  expected[a] = index.numel();
  if (src.shape() != expected)
    fail("index_add: source shape {} does not match {} (shape {} with {} indices along axis {})", src.shape(),
         expected, shape, index.numel(), axis);
  const std::int64_t* idx = checked_index(index, "index_add", shape[a], axis, shape);
  AxisLayout l = layout_around(shape, a);
  Tensor y = zeros(shape, src.dtype());
  dispatch(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* ps = src.data<T>();
    T* py = y.data<T>();
    const std::int64_t n = index.numel();
    for (std::int64_t o = 0; o < l.outer; ++o)
      for (std::int64_t k = 0; k < n; ++k) {
        T* dst = py + (o * l.length + idx[k]) * l.inner;
        const T* s = ps + (o * n + k) * l.inner;
        for (std::int64_t i = 0; i < l.inner; ++i) dst[i] += s[i];
      }
  });
  return record("index_add", y, {src}, [a, index](const Tensor& g) -> Grads { return {index_select(g, a, index)}; });
}

// --- gather <-> scatter_add -----------------------------------------------------------------------

Tensor gather(const Tensor& x, std::int64_t axis, const Tensor& index) {
  int a = normalize_axis(axis, x.shape().size(), "gather", x.shape());
  check_gather_shapes("gather", index.shape(), x.shape(), a);
  const std::int64_t* idx = checked_index(index, "gather", x.shape()[a], axis, x.shape());
  Tensor y = empty(index.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for_each_gather(index.shape(), x.shape(), a, idx, [&](std::int64_t k, std::int64_t pos) { py[k] = px[pos]; });
  });
  return record("gather", y, {x}, [sx = x.shape(), a, index](const Tensor& g) -> Grads {
    return {scatter_add(sx, a, index, g)};
  });
}

Tensor scatter_add(const Shape& shape, std::int64_t axis, const Tensor& index, const Tensor& src) {
  int a = normalize_axis(axis, shape.size(), "scatter_add", shape);
  if (src.shape() != index.shape())
    fail("scatter_add: source shape {} differs from index shape {}", src.shape(), index.shape());
  check_gather_shapes("scatter_add", index.shape(), shape, a);
  const std::int64_t* idx = checked_index(index, "scatter_add", shape[a], axis, shape);
  if (one_pick_per_line(index.shape(), shape, a)) {  // a max's backward: one pass, no zeroing first
    Tensor y = empty(shape, src.dtype());
    dispatch(src.dtype(), [&](auto tag) { scatter_one_pick<decltype(tag)>(shape, a, idx, src, y); });
    return record("scatter_add", y, {src}, [a, index](const Tensor& g) -> Grads { return {gather(g, a, index)}; });
  }
  Tensor y = zeros(shape, src.dtype());
  dispatch(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* ps = src.data<T>();
    T* py = y.data<T>();
    for_each_gather(index.shape(), shape, a, idx, [&](std::int64_t k, std::int64_t pos) { py[pos] += ps[k]; });
  });
  return record("scatter_add", y, {src}, [a, index](const Tensor& g) -> Grads { return {gather(g, a, index)}; });
}

// --- unfold <-> fold -----------------------------------------------------------------------------------

Tensor unfold(const Tensor& x, std::int64_t axis, std::int64_t size, std::int64_t step, std::int64_t dilation) {
  int a = normalize_axis(axis, x.shape().size(), "unfold", x.shape());
  Windows w = window_geometry("unfold", x.shape()[a], size, step, dilation);
  Tensor y = empty(unfolded_shape(x.shape(), a, w), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    const auto copy = [&](std::int64_t k, std::int64_t pos, std::int64_t n, std::int64_t jump) {
      if (jump == 1) return void(std::copy_n(px + pos, n, py + k));
      for (std::int64_t j = 0; j < n; ++j) py[k + j] = px[pos + j * jump];
    };
    for_each_window(layout_around(x.shape(), a), w, copy);
  });
  return record("unfold", y, {x}, [sx = x.shape(), a, size, step, dilation](const Tensor& g) -> Grads {
    return {fold(g, sx, a, size, step, dilation)};
  });
}

Tensor fold(const Tensor& windows, const Shape& shape, std::int64_t axis, std::int64_t size, std::int64_t step,
            std::int64_t dilation) {
  int a = normalize_axis(axis, shape.size(), "fold", shape);
  Windows w = window_geometry("fold", shape[a], size, step, dilation);
  Shape expected = unfolded_shape(shape, a, w);
  if (windows.shape() != expected)
    fail("fold: windows of shape {} do not match {} (the unfold of {} along axis {})", windows.shape(), expected, shape,
         axis);
  Tensor y = zeros(shape, windows.dtype());
  dispatch(windows.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pw = windows.data<T>();
    T* py = y.data<T>();
    const auto add = [&](std::int64_t k, std::int64_t pos, std::int64_t n, std::int64_t jump) {
      if (jump == 1) return add_run(pw + k, py + pos, n);
      for (std::int64_t j = 0; j < n; ++j) py[pos + j * jump] += pw[k + j];
    };
    for_each_window(layout_around(shape, a), w, add);
  });
  return record("fold", y, {windows}, [a, size, step, dilation](const Tensor& g) -> Grads {
    return {unfold(g, a, size, step, dilation)};
  });
}

// --- sort, topk, one_hot -----------------------------------------------------------------------

namespace {

/// NaN above everything (PyTorch's order for sort and topk).
template <class T>
bool below(T u, T v) {
  if constexpr (std::is_floating_point_v<T>) return !std::isnan(u) && (std::isnan(v) || u < v);
  else return u < v;
}

/// The first `keep` positions of each line along axis a in sorted order (stable), as an i64
/// tensor of x's shape with `keep` along a.
Tensor sorted_positions(const Tensor& x, int a, bool descending, std::int64_t keep) {
  const AxisLayout l = layout_around(x.shape(), a);
  Shape out_shape = x.shape();
  out_shape[a] = keep;
  Tensor out = empty(out_shape, i64);
  std::int64_t* po = out.data<std::int64_t>();
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    detail::parallel_items(l.outer * l.inner, l.length, [&](std::int64_t begin, std::int64_t end) {
      std::vector<std::int64_t> order(l.length);
      for (std::int64_t r = begin; r < end; ++r) {  // r = o * inner + i
        const std::int64_t o = r / l.inner, i = r % l.inner;
        const T* line = px + o * l.length * l.inner + i;
        std::iota(order.begin(), order.end(), 0);
        std::stable_sort(order.begin(), order.end(), [&](std::int64_t j, std::int64_t k) {
          return descending ? below(line[k * l.inner], line[j * l.inner]) : below(line[j * l.inner], line[k * l.inner]);
        });
        for (std::int64_t j = 0; j < keep; ++j) po[(o * keep + j) * l.inner + i] = order[j];
      }
    });
  });
  return out;
}

}  // namespace

ValuesIndices sort(const Tensor& x, std::int64_t axis, bool descending) {
  const int a = normalize_axis(axis, x.shape().size(), "sort", x.shape());
  Tensor indices = sorted_positions(x, a, descending, x.shape()[a]);
  return {gather(x, a, indices), indices};
}

ValuesIndices topk(const Tensor& x, std::int64_t k, std::int64_t axis, bool largest) {
  const int a = normalize_axis(axis, x.shape().size(), "topk", x.shape());
  if (k < 0 || k > x.shape()[a])
    fail("topk: k = {} is out of range for axis {} of size {} (shape {})", k, axis, x.shape()[a], x.shape());
  Tensor indices = sorted_positions(x, a, largest, k);
  return {gather(x, a, indices), indices};
}

Tensor one_hot(const Tensor& index, std::int64_t num_classes) {
  if (index.dtype() != i64) fail("one_hot: expects an i64 index, got {} {}", dtype_name(index.dtype()), index.shape());
  const std::int64_t* idx = index.data<std::int64_t>();
  const std::int64_t n = index.numel();
  if (num_classes == -1) {
    if (n == 0) fail("one_hot: cannot infer the number of classes from an empty index (shape {})", index.shape());
    num_classes = *std::max_element(idx, idx + n) + 1;
  }
  if (num_classes < 0) fail("one_hot: num_classes must be -1 or at least 0, got {}", num_classes);
  Shape shape = index.shape();
  shape.push_back(num_classes);
  Tensor out = zeros(shape, i64);  // checks the size
  std::int64_t* po = out.data<std::int64_t>();
  for (std::int64_t k = 0; k < n; ++k) {
    if (idx[k] < 0 || idx[k] >= num_classes)
      fail("one_hot: class {} at position {} of index {} is outside [0, {})", idx[k], k, index.shape(), num_classes);
    po[k * num_classes + idx[k]] = 1;
  }
  return out;
}

}  // namespace xgrad
