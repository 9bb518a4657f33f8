#include "nn/linear.hpp"

#include "autograd/ops.hpp"
#include "nn/init.hpp"

namespace xgrad::nn {

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.dim() == 0 || x.shape().back() != weight.shape().back())
    fail("linear: input {} does not match weight {} (in_features {})", x.shape(), weight.shape(),
         weight.shape().back());
  Tensor y = matmul(x, weight, false, true);
  return bias.defined() ? y + bias : y;
}

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool with_bias) {
  weight = register_parameter("weight", init::fan_in_uniform({out_features, in_features}, in_features));
  if (with_bias) bias = register_parameter("bias", init::fan_in_uniform({out_features}, in_features));
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

}  // namespace xgrad::nn
