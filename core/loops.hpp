#pragma once
// Internal: the loops behind broadcasting binary ops and reductions. Both walk an output
// shape in row-major order, with each operand addressed through strides that are 0 along
// broadcast (or reduced) axes; the innermost axis is a plain loop the compiler vectorises.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "xgrad/core/parallel.hpp"
#include "xgrad/core/shape.hpp"

namespace xgrad::detail {

/// Elementwise work below this many elements stays on one thread (waking a worker costs more);
/// while the cores are far apart, below parallel_threshold of it.
inline constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;

/// Copies split across the pool in parts of at least this many bytes: bound by memory bandwidth,
/// which two cores draw more of (a scratch timing of memcpy, 2026-12-07: 2^17 f32 in 32 rows took
/// 14.0 us on one core and 9.8 on two, 2^18 23.6 and 11.8, 2^16 6.3 and 3.8).
inline constexpr std::int64_t kParallelCopyBytes = std::int64_t{1} << 18;

/// parallel_for over `count` independent items of `work_per_item` units of work each (elements,
/// bytes), in parts of at least parallel_threshold(unit) units. Work below two units runs here
/// at once, without asking the pool (the per-step ops of a small recurrent cell).
template <class F>
void parallel_items(std::int64_t count, std::int64_t work_per_item, F&& f, std::int64_t unit = kParallelElements) {
  const std::int64_t per_item = std::max<std::int64_t>(work_per_item, 1);
  if (count <= 0) return;
  if (count * per_item < 2 * unit) return f(std::int64_t{0}, count);
  parallel_for(count, std::max<std::int64_t>(1, parallel_threshold(unit) / per_item), f);
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
/// of `shape`, where operand offsets follow the given strides. Runs write disjoint parts of the
/// output, so a large shape's runs split across the pool (each range starts its own odometer).
template <class Inner>
void for_each_run(const Shape& shape, const Shape& a_strides, const Shape& b_strides, Inner inner) {
  const std::size_t rank = shape.size();
  if (rank == 0) {
    inner(0, 0, 0, 1, 0, 0);
    return;
  }
  const std::int64_t n = shape[rank - 1], total = numel(shape);
  if (total == 0) return;
  auto runs = [&](std::int64_t first, std::int64_t last) {  // runs [first, last) in row-major order
    Shape index(rank, 0);
    std::int64_t a = 0, b = 0;
    for (std::int64_t r = first, d = static_cast<std::int64_t>(rank) - 2; d >= 0; --d) {
      index[d] = r % shape[d];
      r /= shape[d];
      a += index[d] * a_strides[d];
      b += index[d] * b_strides[d];
    }
    for (std::int64_t run = first; run < last; ++run) {
      inner(run * n, a, b, n, a_strides[rank - 1], b_strides[rank - 1]);
      for (std::size_t d = rank - 1; d-- > 0;) {  // advance the odometer over the outer axes
        a += a_strides[d];
        b += b_strides[d];
        if (++index[d] < shape[d]) break;
        a -= a_strides[d] * shape[d];
        b -= b_strides[d] * shape[d];
        index[d] = 0;
      }
    }
  };
  parallel_items(total / n, n, runs);
}

/// out = f(a, b) elementwise over the broadcast shape `shape` (pointers to the first elements).
template <class T, class R, class F>
void broadcast_binary(const Shape& shape, const T* a, const Shape& a_shape, const T* b, const Shape& b_shape, R* out,
                      F f) {
  if (a_shape == shape && b_shape == shape) {
    parallel_for(numel(shape), parallel_threshold(kParallelElements), [&](std::int64_t begin, std::int64_t end) {
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

// --- sums ---------------------------------------------------------------------------------------
// Summed one element after another, float32 loses every addend below half an ulp of the running
// total: sum(ones(2^25)) stops at 2^24. The sums below are pairwise (cascade): leaves of up to
// 128 elements with 8 independent accumulators (the loop the compiler vectorises), leaves
// combined as a binary tree, so the rounding error grows with log n instead of n, at the speed
// of the plain loop.

/// Sum of n contiguous values, pairwise.
template <class T>
T pairwise_sum(const T* x, std::int64_t n) {
  if (n <= 128) {
    T acc[8] = {};
    std::int64_t i = 0;
    for (; i + 8 <= n; i += 8)
      for (int k = 0; k < 8; ++k) acc[k] += x[i + k];
    T s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; ++i) s += x[i];
    return s;
  }
  const std::int64_t half = n / 16 * 8;  // a multiple of 8 near n / 2
  return pairwise_sum(x, half) + pairwise_sum(x + half, n - half);
}

/// out[j] = sum over i < rows of x[i * m + j] (rows of m contiguous values), the rows combined
/// pairwise; `scratch` holds (levels of the tree) x m values (see pairwise_sum_rows).
template <class T>
void pairwise_sum_rows(const T* x, std::int64_t rows, std::int64_t m, T* out, T* scratch) {
  if (rows <= 8) {
    std::copy(x, x + m, out);
    for (std::int64_t i = 1; i < rows; ++i)
      for (std::int64_t j = 0; j < m; ++j) out[j] += x[i * m + j];
    return;
  }
  const std::int64_t half = rows / 2;
  pairwise_sum_rows(x, half, m, out, scratch + m);
  pairwise_sum_rows(x + half * m, rows - half, m, scratch, scratch + m);
  for (std::int64_t j = 0; j < m; ++j) out[j] += scratch[j];
}

template <class T>
void pairwise_sum_rows(const T* x, std::int64_t rows, std::int64_t m, T* out) {
  if (rows == 0) {
    std::fill(out, out + m, T(0));
    return;
  }
  // A large sum (a bias's gradient over B x T rows) sums the tree's two halves side by side,
  // then adds them as one thread would: the same bits on any number of threads.
  if (rows > 8 && rows * m >= 2 * kParallelElements && num_threads() > 1 &&
      rows * m >= 2 * parallel_threshold(kParallelElements)) {
    const std::int64_t half = rows / 2;
    std::vector<T> second(static_cast<std::size_t>(m));
    parallel_for(2, 1, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t i = begin; i < end; ++i) {
        if (i == 0) pairwise_sum_rows(x, half, m, out);
        else pairwise_sum_rows(x + half * m, rows - half, m, second.data());
      }
    });
    for (std::int64_t j = 0; j < m; ++j) out[j] += second[j];
    return;
  }
  std::int64_t levels = 0;
  for (std::int64_t r = rows; r > 8; r -= r / 2) ++levels;
  std::vector<T> scratch(static_cast<std::size_t>(levels * m));
  pairwise_sum_rows(x, rows, m, out, scratch.data());
}

/// out = the sum of `in` over the axes where out_shape (in_shape's rank) is 1 and in_shape is
/// not, pairwise along every reduced axis. Runs of axes with the same role merge into blocks;
/// the innermost reduced block is summed away (contiguous runs, or rows of the kept block after
/// it), and so on outwards, each pass on the previous pass's smaller result.
template <class T>
void sum_into(const Shape& in_shape, const T* in, const Shape& out_shape, T* out) {
  struct Block {
    std::int64_t size;
    bool reduced;
  };
  std::vector<Block> blocks;
  std::int64_t passes = 0;
  for (std::size_t d = 0; d < in_shape.size(); ++d) {
    if (in_shape[d] == 1) continue;
    const bool reduced = out_shape[d] == 1;
    if (!blocks.empty() && blocks.back().reduced == reduced) {
      blocks.back().size *= in_shape[d];
    } else {
      blocks.push_back({in_shape[d], reduced});
      passes += reduced;
    }
  }
  const std::int64_t count = numel(out_shape);
  if (numel(in_shape) == 0) {
    std::fill(out, out + count, T(0));
    return;
  }
  if (passes == 0) {
    std::copy(in, in + count, out);
    return;
  }
  const T* source = in;
  std::vector<T> buffers[2];
  for (std::int64_t pass = 0; pass < passes; ++pass) {
    const bool inner_reduced = blocks.back().reduced;
    const std::int64_t m = inner_reduced ? 1 : blocks.back().size;
    const std::int64_t r = inner_reduced ? blocks.back().size : blocks[blocks.size() - 2].size;
    std::int64_t outer = 1;
    for (std::size_t b = 0; b + (inner_reduced ? 1 : 2) < blocks.size(); ++b) outer *= blocks[b].size;
    T* target = out;  // the last pass writes the result, the others a smaller intermediate
    if (pass + 1 < passes) {
      auto& buffer = buffers[pass % 2];
      buffer.resize(static_cast<std::size_t>(outer * m));
      target = buffer.data();
    }
    parallel_items(outer, r * m, [&](std::int64_t begin, std::int64_t end) {
      for (std::int64_t o = begin; o < end; ++o) {
        if (inner_reduced) target[o] = pairwise_sum(source + o * r, r);
        else pairwise_sum_rows(source + o * r * m, r, m, target + o * m);
      }
    });
    source = target;
    blocks.erase(blocks.end() - (inner_reduced ? 1 : 2), blocks.end());
    if (!inner_reduced) {  // the kept block now follows whatever preceded the reduced one
      if (!blocks.empty() && !blocks.back().reduced) blocks.back().size *= m;
      else blocks.push_back({m, false});
    }
  }
}

}  // namespace xgrad::detail
