#include "xgrad/nn/linear.hpp"

#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/init.hpp"

namespace xgrad::nn {

Linear::Linear(std::int64_t in_features, std::int64_t out_features, bool with_bias) {
  if (in_features < 0 || out_features < 0)
    fail("Linear: in_features and out_features must be non-negative, got {} and {}", in_features, out_features);
  weight = register_parameter("weight", init::fan_in_uniform({out_features, in_features}, in_features));
  if (with_bias) bias = register_parameter("bias", init::fan_in_uniform({out_features}, in_features));
}

Tensor Linear::forward(const Tensor& x) { return xgrad::linear(x, weight, bias); }

}  // namespace xgrad::nn
