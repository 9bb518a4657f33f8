#pragma once
// 1-D convolution over channels-last sequences [batch, time, channels] (Keras layout), with
// PyTorch's parameter names and layout (weight [out, in, k], bias [out]).
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

/// y[b, t, o] = bias[o] + sum_{c, j} weight[o, c, j] * x_padded[b, t*stride + j*dilation, c];
/// x: [B, T, C_in], weight: [C_out, C_in, k], bias: [C_out] or undefined -> y: [B, T_out, C_out].
/// Composed as pad + unfold + linear.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = {}, std::int64_t stride = 1,
              std::int64_t dilation = 1, Padding padding = Padding::valid);

/// A 1-D convolution layer (Keras' Conv1D on [B, T, C_in], PyTorch's Conv1d parameters).
/// Parameters "weight" [out, in, k] and "bias" [out], uniform in +-1/sqrt(in * k) as in PyTorch.
class Conv1D : public UnaryModule {
 public:
  Conv1D(std::int64_t in_channels, std::int64_t out_channels, std::int64_t kernel_size, std::int64_t stride = 1,
         std::int64_t dilation = 1, Padding padding = Padding::valid, bool bias = true);
  std::string type_name() const override { return "Conv1D"; }
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;
  std::int64_t stride, dilation;
  Padding padding;
};

}  // namespace xgrad::nn
