#pragma once
#include "xgrad/core/random.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// Zeroes each element with probability p and scales the rest by 1/(1-p) (inverted dropout);
/// the identity when not training or p = 0.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

/// A mask of `shape` for dropout(p): 0 with probability p, else 1/(1-p). Reusing one mask across
/// time steps gives variational (recurrent) dropout.
Tensor dropout_mask(const Shape& shape, double p, Dtype dtype, Generator* gen = nullptr);

/// dropout(x, p) as a module: active in training mode, the identity in eval mode.
class Dropout : public UnaryModule {
 public:
  explicit Dropout(double p = 0.5);
  std::string type_name() const override { return "Dropout"; }
  Tensor forward(const Tensor& x) override { return dropout(x, p, is_training(), generator); }

  double p;
  /// Where the masks come from (the default generator when null): one per thread makes a
  /// threaded run reproducible. Not owned.
  Generator* generator = nullptr;
};

}  // namespace xgrad::nn
