#pragma once
#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// y = x W^T + b over the last axis of x (any leading axes); W: [out, in], b: [out]. A primitive
/// op (autograd/ops.hpp): one GEMM onto the bias.
using xgrad::linear;

/// A fully connected layer (Keras' Dense). Parameters "weight" [out, in] and "bias" [out].
class Linear : public UnaryModule {
 public:
  Linear(std::int64_t in_features, std::int64_t out_features, bool bias = true);
  std::string type_name() const override { return "Linear"; }
  Tensor forward(const Tensor& x) override;

  Tensor weight, bias;
};

}  // namespace xgrad::nn
