#pragma once
// Gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
#include <limits>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad::optim {

/// The norm of all gradients taken together (as if concatenated): the p-norm, or the largest
/// magnitude for p = infinity. Parameters without a gradient are skipped.
double grad_norm(const std::vector<Tensor>& params, double norm_type = 2);

/// Scales the gradients so that their total norm is at most max_norm, and returns the norm
/// before clipping. A NaN or infinite norm throws when error_if_nonfinite (the gradients are
/// then left unchanged); otherwise the gradients are scaled by the non-finite factor, as PyTorch.
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type = 2,
                      bool error_if_nonfinite = false);

/// Clamps every gradient element into [-clip_value, clip_value].
void clip_grad_value(const std::vector<Tensor>& params, double clip_value);

inline constexpr double kInfinityNorm = std::numeric_limits<double>::infinity();

}  // namespace xgrad::optim
