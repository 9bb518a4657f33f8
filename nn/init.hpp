#pragma once
// Parameter initialisation, as PyTorch's layers do it (so a fresh model starts alike).
#include <cmath>

#include "xgrad/core/random.hpp"

/// \namespace xgrad::nn::init
/// Parameter initialisation, as PyTorch's layers do it.
namespace xgrad::nn::init {

/// Uniform in [-1/sqrt(fan_in), 1/sqrt(fan_in)]: PyTorch's default for Linear, Conv1d and RNNs.
/// (`gen`: where the numbers come from; the default generator when null.)
inline Tensor fan_in_uniform(const Shape& shape, std::int64_t fan_in, Generator* gen = nullptr) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return uniform(shape, -bound, bound, f32, gen);
}

/// Xavier/Glorot uniform: bound sqrt(6 / (fan_in + fan_out)) (MultiheadAttention's in_proj).
inline Tensor xavier_uniform(const Shape& shape, std::int64_t fan_in, std::int64_t fan_out, Generator* gen = nullptr) {
  const double bound = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  return uniform(shape, -bound, bound, f32, gen);
}

}  // namespace xgrad::nn::init
