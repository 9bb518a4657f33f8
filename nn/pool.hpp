#pragma once
// Pooling over time of channels-last sequences [batch, time, channels] (Keras layout), 'valid'
// padding only: T_out = floor((T - pool_size) / stride) + 1.
#include <cstdint>

#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// y[b, t, c] = max_{j < pool_size} x[b, t*stride + j, c]; stride 0 means pool_size.
Tensor max_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride = 0);
/// y[b, t, c] = mean_{j < pool_size} x[b, t*stride + j, c]; stride 0 means pool_size.
Tensor avg_pool1d(const Tensor& x, std::int64_t pool_size, std::int64_t stride = 0);
/// y[b, c] = max_t x[b, t, c]: [B, T, C] -> [B, C].
Tensor global_max_pool1d(const Tensor& x);
/// y[b, c] = mean_t x[b, t, c]: [B, T, C] -> [B, C].
Tensor global_avg_pool1d(const Tensor& x);

/// What the windowed pools share: a pool size and a stride (given as 0 or omitted: the pool size).
class Pool1D : public UnaryModule {
 public:
  std::int64_t pool_size, stride;  ///< stride as resolved (never 0)

 protected:
  Pool1D(const char* layer, std::int64_t pool_size, std::int64_t stride);
};

/// Keras' MaxPooling1D: the maximum of each window of pool_size steps.
class MaxPool1D : public Pool1D {
 public:
  explicit MaxPool1D(std::int64_t pool_size, std::int64_t stride = 0) : Pool1D("MaxPool1D", pool_size, stride) {}
  std::string type_name() const override { return "MaxPool1D"; }
  Tensor forward(const Tensor& x) override { return max_pool1d(x, pool_size, stride); }
};

/// Keras' AveragePooling1D: the mean of each window of pool_size steps.
class AvgPool1D : public Pool1D {
 public:
  explicit AvgPool1D(std::int64_t pool_size, std::int64_t stride = 0) : Pool1D("AvgPool1D", pool_size, stride) {}
  std::string type_name() const override { return "AvgPool1D"; }
  Tensor forward(const Tensor& x) override { return avg_pool1d(x, pool_size, stride); }
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
