#pragma once
// Internal: the loops behind broadcasting binary ops and reductions. Both walk an output
// shape in row-major order, with each operand addressed through strides that are 0 along
// broadcast (or reduced) axes; the innermost axis is a plain loop the compiler vectorises.
#include <algorithm>
#include <cstdint>

#include "core/parallel.hpp"
#include "core/shape.hpp"

namespace xgrad::detail {

/// Elementwise work below this many elements stays on one thread (waking a worker costs more).
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;

/// parallel_for over `count` independent items of `elements_per_item` elements each, in parts of
/// at least kParallelElements elements.
template <class F>
void parallel_items(std::int64_t count, std::int64_t elements_per_item, F&& f) {
  parallel_for(count, std::max<std::int64_t>(1, kParallelElements / std::max<std::int64_t>(elements_per_item, 1)), f);
}

/// Row-major strides of `shape` as seen from an output of rank `rank` (right-aligned, as NumPy
/// broadcasting aligns), with 0 where the operand's extent is 1 (or missing).
inline Shape broadcast_strides(const Shape& shape, std::size_t rank) {
  Shape strides(rank, 0);
  std::int64_t stride = 1;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const std::size_t axis = shape.size() - 1 - i, out_axis = rank - 1 - i;
    strides[out_axis] = shape[axis] == 1 ? 0 : stride;
    stride *= shape[axis];
  }
  return strides;
}

/// Calls inner(out_offset, a_offset, b_offset, n, a_step, b_step) for every run of the last axis
/// of `shape`, where operand offsets follow the given strides.
template <class Inner>
void for_each_run(const Shape& shape, const Shape& a_strides, const Shape& b_strides, Inner inner) {
  const std::size_t rank = shape.size();
  if (rank == 0) {
    inner(0, 0, 0, 1, 0, 0);
    return;
  }
  const std::int64_t n = shape[rank - 1], total = numel(shape);
  if (total == 0) return;
  Shape index(rank, 0);
  std::int64_t a = 0, b = 0;
  for (std::int64_t out = 0; out < total; out += n) {
    inner(out, a, b, n, a_strides[rank - 1], b_strides[rank - 1]);
    for (std::size_t d = rank - 1; d-- > 0;) {  // advance the odometer over the outer axes
      a += a_strides[d];
      b += b_strides[d];
      if (++index[d] < shape[d]) break;
      a -= a_strides[d] * shape[d];
      b -= b_strides[d] * shape[d];
      index[d] = 0;
    }
  }
}

/// out = f(a, b) elementwise over the broadcast shape `shape` (pointers to the first elements).
template <class T, class R, class F>
void broadcast_binary(const Shape& shape, const T* a, const Shape& a_shape, const T* b, const Shape& b_shape, R* out,
                      F f) {
  if (a_shape == shape && b_shape == shape) {
    parallel_for(numel(shape), kParallelElements, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) out[i] = f(a[i], b[i]);
    });
    return;
  }
  for_each_run(shape, broadcast_strides(a_shape, shape.size()), broadcast_strides(b_shape, shape.size()),
               [&](std::int64_t o, std::int64_t ia, std::int64_t ib, std::int64_t n, std::int64_t sa, std::int64_t sb) {
                 R* y = out + o;
                 const T *x = a + ia, *z = b + ib;
                 if (sa == 1 && sb == 1)
                   for (std::int64_t j = 0; j < n; ++j) y[j] = f(x[j], z[j]);
                 else if (sa == 1)
                   for (std::int64_t j = 0; j < n; ++j) y[j] = f(x[j], z[0]);
                 else if (sb == 1)
                   for (std::int64_t j = 0; j < n; ++j) y[j] = f(x[0], z[j]);
                 else
                   for (std::int64_t j = 0; j < n; ++j) y[j] = f(x[0], z[0]);
               });
}

/// Reduces `in` into `out` (of `out_shape`: in_shape's rank, size 1 on the reduced axes) with
/// out = combine(out, x) over the axes where out_shape is 1 and in_shape is not. `out` must
/// start at the reduction's identity (0 for a sum, -inf for a max).
template <class T, class Combine>
void reduce_into(const Shape& in_shape, const T* in, const Shape& out_shape, T* out, Combine combine) {
  const Shape zero(in_shape.size(), 0);
  for_each_run(in_shape, broadcast_strides(out_shape, in_shape.size()), zero,
               [&](std::int64_t i, std::int64_t o, std::int64_t, std::int64_t n, std::int64_t so, std::int64_t) {
                 const T* x = in + i;
                 T* y = out + o;
                 if (so == 1) {
                   for (std::int64_t j = 0; j < n; ++j) y[j] = combine(y[j], x[j]);
                 } else {
                   T acc = *y;
                   for (std::int64_t j = 0; j < n; ++j) acc = combine(acc, x[j]);
                   *y = acc;
                 }
               });
}

template <class T>
void sum_into(const Shape& in_shape, const T* in, const Shape& out_shape, T* out) {
  reduce_into(in_shape, in, out_shape, out, [](T a, T b) { return a + b; });
}

}  // namespace xgrad::detail
