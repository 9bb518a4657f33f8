#pragma once
// Pooling over time of channels-last sequences [batch, time, channels] (Keras layout), with
// PyTorch's options: `padding` steps on both sides (at most pool_size / 2; never part of a
// maximum, zeros in an average) and `ceil_mode`:
//   T_out = floor((T + 2 padding - pool_size) / stride) + 1, or with ceil_mode the ceiling, less
//   one if that last window would start past the input and the left padding (PyTorch's rule).
#include <cstdint>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// y[b, t, c] = max_{j < pool_size} x[b, t*stride + j - padding, c] over the steps inside the input;
/// stride 0 means pool_size.
Tensor max_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride = 0, std::int64_t padding = 0,
                  bool ceil_mode = false);
/// y[b, t, c] = sum_{j < pool_size} x[b, t*stride + j - padding, c] / n, x taken as 0 in the padding;
/// n counts the window's steps inside the input and its padding (count_include_pad, PyTorch's
/// default) or inside the input only; a ceil_mode window's overhang past the padding never counts.
/// stride 0 means pool_size.
Tensor avg_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride = 0, std::int64_t padding = 0,
                  bool ceil_mode = false, bool count_include_pad = true);
/// y[b, c] = max_t x[b, t, c]: [B, T, C] -> [B, C].
Tensor global_max_pool1d(const Tensor& x);
/// y[b, c] = mean_t x[b, t, c]: [B, T, C] -> [B, C].
Tensor global_avg_pool1d(const Tensor& x);

/// What the windowed pools share: a pool size, a stride (given as 0 or omitted: the pool size),
/// padding on both sides and ceil_mode, as PyTorch's MaxPool1d / AvgPool1d.
class Pool1D : public UnaryModule {
 public:
  std::int64_t pool_size, stride;  ///< stride as resolved (never 0)
  std::int64_t padding;
  bool ceil_mode;

 protected:
  Pool1D(const char* layer, std::int64_t pool_size, std::int64_t stride, std::int64_t padding, bool ceil_mode);
};

/// Keras' MaxPooling1D / PyTorch's MaxPool1d: the maximum of each window of pool_size steps.
class MaxPool1D : public Pool1D {
 public:
  explicit MaxPool1D(std::int64_t pool_size, std::int64_t stride = 0, std::int64_t padding = 0, bool ceil_mode = false)
      : Pool1D("MaxPool1D", pool_size, stride, padding, ceil_mode) {}
  std::string type_name() const override { return "MaxPool1D"; }
  Tensor forward(const Tensor& x) override { return max_pool1d(x, pool_size, stride, padding, ceil_mode); }
};

/// Keras' AveragePooling1D / PyTorch's AvgPool1d: the mean of each window of pool_size steps.
class AvgPool1D : public Pool1D {
 public:
  explicit AvgPool1D(std::int64_t pool_size, std::int64_t stride = 0, std::int64_t padding = 0, bool ceil_mode = false,
                     bool count_include_pad = true)
      : Pool1D("AvgPool1D", pool_size, stride, padding, ceil_mode), count_include_pad(count_include_pad) {}
  std::string type_name() const override { return "AvgPool1D"; }
  Tensor forward(const Tensor& x) override {
    return avg_pool1d(x, pool_size, stride, padding, ceil_mode, count_include_pad);
  }

  bool count_include_pad;
};

/// Keras' GlobalMaxPooling1D: the maximum over time, [B, T, C] -> [B, C].
class GlobalMaxPool1D : public UnaryModule {
 public:
  std::string type_name() const override { return "GlobalMaxPool1D"; }
  Tensor forward(const Tensor& x) override { return global_max_pool1d(x); }
};

/// Keras' GlobalAveragePooling1D: the mean over time, [B, T, C] -> [B, C].
class GlobalAvgPool1D : public UnaryModule {
 public:
  std::string type_name() const override { return "GlobalAvgPool1D"; }
  Tensor forward(const Tensor& x) override { return global_avg_pool1d(x); }
};

}  // namespace xgrad::nn
