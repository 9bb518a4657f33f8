#pragma once
// Gradient checks: analytic gradients against float64 central differences, PyTorch's defaults.
#include <cstdint>
#include <functional>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad {

/// Tolerances of gradcheck and gradgradcheck (PyTorch's defaults).
struct GradcheckOptions {
  double eps = 1e-6;   ///< central-difference step
  double atol = 1e-5;  ///< pass when |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-3;
};

/// The function a gradient check differentiates: inputs -> one output tensor.
using TensorFunction = std::function<Tensor(const std::vector<Tensor>&)>;

/// Checks the full Jacobian of f at `inputs` (f64; those that require grad are checked).
/// Returns true on success; throws xgrad::Error naming the input, the output and input
/// elements with the worst mismatch, and both values.
bool gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

/// Checks second derivatives: gradcheck of (inputs, v) -> d(sum(f(inputs) * v))/d(inputs) with a
/// random v (seeded), the backward of f recorded with create_graph.
bool gradgradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options = {},
                   std::uint64_t seed = 0);

}  // namespace xgrad
