#include "xgrad/nn/pool.hpp"

#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {

void check_pool_size(const char* op, std::int64_t pool_size, std::int64_t stride) {
  if (pool_size < 1 || stride < 0)
    fail("{}: pool_size must be positive and stride non-negative (0: pool_size), got {} and {}", op, pool_size,
         stride);
}

/// x: [B, T, C] with at least `min_steps` time steps, or an error naming the op.
void check_sequence(const char* op, const Tensor& x, std::int64_t min_steps) {
  if (x.dim() != 3) fail("{}: input {} must be [batch, time, channels]", op, x.shape());
  if (x.size(1) < min_steps)
    fail("{}: input {} has {} time steps, fewer than the {} it needs", op, x.shape(), x.size(1), min_steps);
}

/// Averages need a floating input (PyTorch's avg_pool1d is not defined for integers either).
void check_floating(const char* op, const Tensor& x) {
  if (!is_floating(x.dtype()))
    fail("{}: expects a floating input (f32 or f64), got {} {}", op, dtype_name(x.dtype()), x.shape());
}

/// The pooling windows of x: [B, T, C] -> [B, T_out, C, pool_size].
Tensor pool_windows(const char* op, const Tensor& x, std::int64_t pool_size, std::int64_t stride) {
  check_pool_size(op, pool_size, stride);
  check_sequence(op, x, pool_size);
  return unfold(x, 1, pool_size, stride == 0 ? pool_size : stride);
}

}  // namespace

Tensor max_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride) {
  return max(pool_windows("max_pool1d", x, pool_size, stride), -1).values;
}

Tensor avg_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride) {
  check_floating("avg_pool1d", x);
  return mean(pool_windows("avg_pool1d", x, pool_size, stride), -1);
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

Pool1D::Pool1D(const char* layer, std::int64_t pool_size, std::int64_t stride)
    : pool_size(pool_size), stride(stride == 0 ? pool_size : stride) {
  check_pool_size(layer, pool_size, stride);
}

}  // namespace xgrad::nn
