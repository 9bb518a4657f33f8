#pragma once
// 1-D convolution over channels-last sequences [batch, time, channels] (Keras layout), with
// PyTorch's parameter names and layout (weight [out, in / groups, k], bias [out] or none).
#include <cstdint>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// How the time axis is padded before the windows are taken (Keras' names).
enum class Padding {
  valid,   ///< no padding: T_out = floor((T - d(k-1) - 1) / stride) + 1
  same,    ///< T_out = ceil(T / stride); the padding is split evenly, the extra step on the right
  causal,  ///< d(k-1) zeros on the left only: y[t] sees x[<= t]; T_out = ceil(T / stride)
};

/// The name of a padding mode ("valid", "same", "causal"), for messages.
const char* padding_name(Padding padding);

/// y[b, t, o] = bias[o] + sum_{c, j} weight[o, c, j] * x_padded[b, t*stride + j*dilation, g*C_in/G + c],
/// g = o / (C_out/G) the group of output channel o (PyTorch's groups: each group of C_in/G input
/// channels feeds its own C_out/G outputs; G = C_in is depthwise);
/// x: [B, T, C_in], weight: [C_out, C_in/G, k], bias: [C_out] or undefined -> y: [B, T_out, C_out].
/// Composed as pad + unfold + linear (G = 1), as k shifted slices times columns of the weight
/// (depthwise, C_in/G = 1), or as one batched matmul over the groups.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, std::int64_t stride = 1,
              std::int64_t dilation = 1, Padding padding = Padding::valid, std::int64_t groups = 1);

/// A 1-D convolution layer (Keras' Conv1D on [B, T, C_in], PyTorch's Conv1d parameters).
/// Parameters "weight" [out, in / groups, k] and "bias" [out] (none when bias is false, as PyTorch's
/// bias=False), uniform in +-1/sqrt(in / groups * k) as in PyTorch. in and out must be multiples of
/// groups; groups == in_channels is a depthwise convolution.
class Conv1D : public UnaryModule {
 public:
  Conv1D(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, std::int64_t stride = 1,
         std::int64_t dilation = 1, Padding padding = Padding::valid, bool bias = true, std::int64_t groups = 1);
  std::string type_name() const override { return "Conv1D"; }
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;  ///< bias undefined when built with bias = false
  std::int64_t stride, dilation;
  Padding padding;
  std::int64_t groups;
};

}  // namespace xgrad::nn
