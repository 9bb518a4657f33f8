#include "xgrad/nn/pool.hpp"

#include <algorithm>
#include <vector>

#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {

void check_pool_size(const char* op, std::int64_t pool_size, std::int64_t stride) {
  if (pool_size < 1 || stride < 0)
    fail("{}: pool_size must be positive and stride non-negative (0: pool_size), got {} and {}", op, pool_size,
         stride);
}

/// PyTorch's rule: padding in [0, pool_size / 2], so that every window holds a step of the input.
void check_padding(const char* op, std::int64_t pool_size, std::int64_t padding) {
  if (padding < 0 || padding > pool_size / 2)
    fail("{}: padding {} must be in [0, pool_size / 2] = [0, {}] for pool_size {}", op, padding, pool_size / 2,
         pool_size);
}

/// x: [B, T, C] with at least `min_steps` time steps, or an error naming the op.
void check_sequence(const char* op, const Tensor& x, std::int64_t min_steps, const std::string& why = "") {
  if (x.dim() != 3) fail("{}: input {} must be [batch, time, channels]", op, x.shape());
  if (x.size(1) < min_steps)
    fail("{}: input {} has {} time steps, fewer than the {} it needs{}", op, x.shape(), x.size(1), min_steps, why);
}

/// Averages need a floating input (PyTorch's avg_pool1d is not defined for integers either).
void check_floating(const char* op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    fail("{}: expects a floating input (f32 or f64), got {} {}", op, dtype_name(x.dtype()), x.shape());
}

/// Where the windows of a pool fall on a sequence of `length` steps (PyTorch's pooling_output_shape).
struct PoolGeometry {
  std::int64_t length, pool_size, stride, padding;
  std::int64_t windows;  ///< T_out
  std::int64_t right;    ///< the steps past the input the last window reaches (padding, or ceil_mode overhang)
};

/// Checks the options and x, and places the windows; stride 0 means pool_size.
PoolGeometry pool_geometry(const char* op, const Tensor& x, std::int64_t pool_size, std::int64_t stride,
                           std::int64_t padding, bool ceil_mode) {
  check_pool_size(op, pool_size, stride);
  check_padding(op, pool_size, padding);
  check_sequence(op, x, std::max<std::int64_t>(pool_size - 2 * padding, 1),
                 padding > 0 ? fmt::format(" (pool_size {} with padding {} on each side)", pool_size, padding) : "");
  if (stride == 0) stride = pool_size;
  const std::int64_t length = x.size(1);
  const std::int64_t span = checked_add(length, 2 * padding, op) - pool_size;  // >= 0, checked above
  std::int64_t windows = span / stride + (ceil_mode && span % stride != 0 ? 1 : 0) + 1;
  // ceil_mode: the last window must start inside the input or the left padding
  if (ceil_mode && (windows - 1) * stride >= length + padding) --windows;
  const std::int64_t reach = (windows - 1) * stride + pool_size;  // the padded steps the windows cover
  return {length, pool_size, stride, padding, windows, std::max<std::int64_t>(reach - padding - length, 0)};
}

/// x with `before` copies of its first step and `after` of its last: [B, T, C] -> [B, before + T + after, C].
/// A max pool's window that reaches into its padding also holds that edge step (padding <= pool_size / 2,
/// and the last window starts inside the input or the left padding), so the copies never change a
/// maximum: they stand in for PyTorch's -inf padding without putting an infinity into the graph.
Tensor pad_with_edges(const Tensor& x, std::int64_t before, std::int64_t after) {
  if (before == 0 && after == 0) return x;
  const std::int64_t batch = x.size(0), length = x.size(1), channels = x.size(2);
  std::vector<Tensor> parts;
  if (before > 0) parts.push_back(expand(slice(x, 1, 0, 1), {batch, before, channels}));
  parts.push_back(x);
  if (after > 0) parts.push_back(expand(slice(x, 1, length - 1, length), {batch, after, channels}));
  return concat(parts, 1);
}

/// A pool's windows over `padded` (x with the padding the geometry asks for) and the axis that runs
/// along each window. Windows that tile the steps (stride == pool_size, the default) are a reshape
/// of the steps they cover, [B, T_out, pool_size, C], and need no copy; others are unfold's
/// [B, T_out, C, pool_size].
struct PoolWindows {
  Tensor windows;
  std::int64_t axis;
};

PoolWindows pool_windows(const Tensor& padded, const PoolGeometry& g) {
  if (g.stride != g.pool_size) return {unfold(padded, 1, g.pool_size, g.stride), 3};
  const std::int64_t covered = g.windows * g.pool_size;  // <= padded.size(1): the geometry pads to reach it
  const Tensor steps = padded.size(1) == covered ? padded : slice(padded, 1, 0, covered);
  return {reshape(steps, {padded.size(0), g.windows, g.pool_size, padded.size(2)}), 2};
}

}  // namespace

Tensor max_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride, std::int64_t padding, bool ceil_mode) {
  const PoolGeometry g = pool_geometry("max_pool1d", x, pool_size, stride, padding, ceil_mode);
  const PoolWindows pooled = pool_windows(pad_with_edges(x, g.padding, g.right), g);
  return max(pooled.windows, pooled.axis).values;
}

Tensor avg_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride, std::int64_t padding, bool ceil_mode,
                  bool count_include_pad) {
  check_floating("avg_pool1d", x);
  const PoolGeometry g = pool_geometry("avg_pool1d", x, pool_size, stride, padding, ceil_mode);
  const Tensor padded = g.padding + g.right > 0 ? pad(x, 1, g.padding, g.right) : x;
  const PoolWindows pooled = pool_windows(padded, g);
  // Each window's divisor, as PyTorch counts it: the steps inside the input and its padding (or
  // the input only), never a ceil_mode window's overhang past the padding.
  std::vector<double> counts(static_cast<std::size_t>(g.windows));
  bool uniform = true;
  for (std::int64_t w = 0; w < g.windows; ++w) {
    const std::int64_t start = w * g.stride - g.padding;
    const std::int64_t stop = std::min(start + g.pool_size, g.length + g.padding);
    const std::int64_t inside = std::min(stop, g.length) - std::max<std::int64_t>(start, 0);
    const std::int64_t n = count_include_pad ? stop - start : inside;
    counts[static_cast<std::size_t>(w)] = static_cast<double>(n);
    uniform = uniform && n == g.pool_size;
  }
  if (uniform) return mean(pooled.windows, pooled.axis);
  Tensor divisor = empty({1, g.windows, 1}, f64);
  std::copy(counts.begin(), counts.end(), divisor.data<double>());
  return sum(pooled.windows, pooled.axis) / divisor.to(x.dtype());
}

Tensor global_max_pool1d(const Tensor& x) {
  check_sequence("global_max_pool1d", x, 1);
  return max(x, 1).values;
}

Tensor global_avg_pool1d(const Tensor& x) {
  check_sequence("global_avg_pool1d", x, 1);
  check_floating("global_avg_pool1d", x);
  return mean(x, 1);
}

Pool1D::Pool1D(const char* layer, std::int64_t pool_size, std::int64_t stride, std::int64_t padding, bool ceil_mode)
    : pool_size(pool_size), stride(stride == 0 ? pool_size : stride), padding(padding), ceil_mode(ceil_mode) {
  check_pool_size(layer, pool_size, stride);
  check_padding(layer, pool_size, padding);
}

}  // namespace xgrad::nn
