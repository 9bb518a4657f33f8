#include "xgrad/nn/conv.hpp"

#include <algorithm>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/init.hpp"
#include "xgrad/nn/linear.hpp"

namespace xgrad::nn {

namespace {

struct TimePadding {
  std::int64_t left, right;
};

/// The zeros added before and after the time axis (Keras/TensorFlow's rule for 'same').
TimePadding time_padding(std::int64_t length, std::int64_t span, std::int64_t stride, Padding padding) {
  switch (padding) {
    case Padding::valid: return {0, 0};
    case Padding::causal: return {span - 1, 0};
    case Padding::same: {
      const std::int64_t out = ceil_div(length, stride);
      const std::int64_t reach = checked_add(checked_mul(out - 1, stride, "conv1d"), span, "conv1d");
      const std::int64_t total = std::max<std::int64_t>(reach - length, 0);
      return {total / 2, total - total / 2};
    }
  }
  fail("conv1d: unknown padding mode {}", static_cast<int>(padding));
}

/// The time steps one output looks at, dilation * (kernel - 1) + 1; past int64 it is an error.
std::int64_t kernel_span(std::int64_t kernel, std::int64_t dilation, const char* op) {
  return checked_add(checked_mul(dilation, kernel - 1, op), 1, op);
}

void check_stride_dilation(const char* op, std::int64_t stride, std::int64_t dilation) {
  if (stride < 1 || dilation < 1) fail("{}: stride and dilation must be positive, got {} and {}", op, stride, dilation);
}

void check_conv1d_arguments(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t groups) {
  if (weight.dim() != 3 || weight.size(2) < 1)
    fail("conv1d: weight must be [out_channels, in_channels, kernel_size >= 1], got {}", weight.shape());
  if (groups < 1 || weight.size(0) % groups != 0)
    fail("conv1d: groups must be positive and divide the out_channels of weight {}, got {}", weight.shape(), groups);
  const std::int64_t in_channels = checked_mul(weight.size(1), groups, "conv1d");
  if (x.dim() != 3 || x.size(2) != in_channels)
    fail("conv1d: input {} must be [batch, time, channels] with {} channels to match weight {}{}", x.shape(),
         in_channels, weight.shape(), groups == 1 ? "" : fmt::format(" in {} groups", groups));
  if (!is_floating(x.dtype()))
    fail("conv1d: expects a floating input (f32 or f64), got {} {}", dtype_name(x.dtype()), x.shape());
  if (x.dtype() != weight.dtype())
    fail("conv1d: input {} {} and weight {} {} have different dtypes", dtype_name(x.dtype()), x.shape(),
         dtype_name(weight.dtype()), weight.shape());
  if (bias.defined() && bias.shape() != Shape{weight.size(0)})
    fail("conv1d: bias {} must be [{}] to match weight {}", bias.shape(), weight.size(0), weight.shape());
}

/// Depthwise convolution (one input channel per group, m = C_out / C_in outputs each) of the padded
/// input [B, Tp, C_in]: y[b, t, c*m + j] = sum_i x_padded[b, t*stride + i*dilation, c] w[c*m + j, 0, i],
/// as k shifted slices of the input times a column of the weight, added up: no windows tensor and no
/// GEMMs of width 1 (3x faster than the grouped matmul at C = 64, k = 5). steps = T_out >= 1.
Tensor depthwise_conv1d(const Tensor& padded, const Tensor& weight, std::int64_t steps, std::int64_t stride,
                        std::int64_t dilation) {
  const std::int64_t channels = padded.size(2), multiplier = weight.size(0) / channels, kernel = weight.size(2);
  const Tensor w = reshape(weight, {channels, multiplier, kernel});
  const Shape column = multiplier == 1 ? Shape{channels} : Shape{channels, multiplier};
  Tensor y;
  for (std::int64_t i = 0; i < kernel; ++i) {
    const std::int64_t start = i * dilation;
    Tensor shifted = slice(padded, 1, start, start + (steps - 1) * stride + 1, stride);  // [B, T_out, C_in]
    Tensor term = (multiplier == 1 ? shifted : unsqueeze(shifted, 3)) * reshape(slice(w, 2, i, i + 1), column);
    y = i == 0 ? term : y + term;
  }
  return reshape(y, {padded.size(0), steps, weight.size(0)});
}

}  // namespace

const char* padding_name(Padding padding) {
  switch (padding) {
    case Padding::valid: return "valid";
    case Padding::same: return "same";
    case Padding::causal: return "causal";
  }
  return "unknown";
}

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t stride, std::int64_t dilation,
              Padding padding, std::int64_t groups) {
  check_conv1d_arguments(x, weight, bias, groups);
  check_stride_dilation("conv1d", stride, dilation);
  const std::int64_t out_channels = weight.size(0), kernel = weight.size(2);
  const std::int64_t span = kernel_span(kernel, dilation, "conv1d");
  if (padding == Padding::valid && x.size(1) < span)
    fail("conv1d: input {} has {} time steps, fewer than the kernel span {} (kernel {}, dilation {}) with '{}' padding",
         x.shape(), x.size(1), span, kernel, dilation, padding_name(padding));
  const TimePadding pads = time_padding(x.size(1), span, stride, padding);
  const Tensor padded = pads.left + pads.right > 0 ? pad(x, 1, pads.left, pads.right) : x;
  const std::int64_t features = weight.size(1) * kernel;  // per output channel: C_in/G * k
  if (groups == 1 && dilation == 1 && padded.numel() > 0) {
    // Without dilation a window is k consecutive steps: one contiguous run of the flattened
    // sequence, so unfold copies runs instead of transposing each window. Its features come
    // step-major, [k, C_in], and the weight [C_out, C_in, k] is permuted to match (a small copy).
    const std::int64_t batch = padded.size(0), channels = padded.size(2);
    const Tensor flat = reshape(padded, {batch, padded.size(1) * channels});
    const std::int64_t step = std::min(stride, padded.size(1)) * channels;  // (a longer stride finds one window too)
    const Tensor windows = unfold(flat, 1, features, step);                  // [B, T_out, k * C_in]
    return linear(windows, reshape(permute(weight, {0, 2, 1}), {out_channels, features}), bias);
  }
  if (groups == 1) {
    Tensor windows = unfold(padded, 1, kernel, stride, dilation);              // [B, T_out, C_in, k]
    windows = reshape(windows, {windows.size(0), windows.size(1), features});  // [B, T_out, C_in * k]
    return linear(windows, reshape(weight, {out_channels, features}), bias);
  }
  const std::int64_t batch = x.size(0), group_in = weight.size(1), group_out = out_channels / groups;
  const std::int64_t steps = padded.size(1) < span ? 0 : (padded.size(1) - span) / stride + 1;  // T_out
  if (group_in == 1 && steps > 0) {
    const Tensor y = depthwise_conv1d(padded, weight, steps, stride, dilation);
    return bias.defined() ? y + bias : y;
  }
  // Each group g multiplies its own channels' windows by its own C_out/G rows of the weight: one
  // batched matmul over [G, B * T_out, C_in/G * k] x [G, C_out/G, C_in/G * k]^T.
  // [B, Tp, C_in] -> [G, B, Tp, C_in/G]
  Tensor grouped = permute(reshape(padded, {batch, padded.size(1), groups, group_in}), {2, 0, 1, 3});
  Tensor windows = unfold(grouped, 2, kernel, stride, dilation);  // [G, B, T_out, C_in/G, k]
  windows = reshape(windows, {groups, batch * steps, features});
  // [G, B * T_out, C_out/G] -> [B, T_out, C_out]
  Tensor y = matmul(windows, reshape(weight, {groups, group_out, features}), false, true);
  y = reshape(permute(reshape(y, {groups, batch, steps, group_out}), {1, 2, 0, 3}), {batch, steps, out_channels});
  return bias.defined() ? y + bias : y;
}

Conv1D::Conv1D(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, std::int64_t stride,
               std::int64_t dilation, Padding padding, bool with_bias, std::int64_t groups)
    : stride(stride), dilation(dilation), padding(padding), groups(groups) {
  if (in_channels < 1 || out_channels < 1 || kernel_size < 1)
    fail("Conv1D: in_channels, out_channels and kernel_size must be positive, got {}, {} and {}", in_channels,
         out_channels, kernel_size);
  if (groups < 1 || in_channels % groups != 0 || out_channels % groups != 0)
    fail("Conv1D: in_channels {} and out_channels {} must both be multiples of groups {}", in_channels, out_channels,
         groups);
  check_stride_dilation("Conv1D", stride, dilation);
  if (padding != Padding::valid && padding != Padding::same && padding != Padding::causal)
    fail("Conv1D: unknown padding mode {}", static_cast<int>(padding));
  const std::int64_t fan_in = checked_mul(in_channels / groups, kernel_size, "Conv1D");
  kernel_span(kernel_size, dilation, "Conv1D");  // must fit in int64
  weight = register_parameter("weight",
                              init::fan_in_uniform({out_channels, in_channels / groups, kernel_size}, fan_in));
  if (with_bias) bias = register_parameter("bias", init::fan_in_uniform({out_channels}, fan_in));
}

Tensor Conv1D::forward(const Tensor& x) { return conv1d(x, weight, bias, stride, dilation, padding, groups); }

}  // namespace xgrad::nn
