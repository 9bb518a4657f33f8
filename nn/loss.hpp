#pragma once
// Losses, with PyTorch's semantics and defaults. All are composed from ops and numerically
// stable: bce_with_logits never forms sigmoid(x), cross_entropy never forms softmax(x).
#include <cstdint>

#include "xgrad/core/tensor.hpp"

namespace xgrad::nn {

/// How per-element losses become the result: their mean, their sum, or all of them.
enum class Reduction { mean, sum, none };

/// (prediction - target)^2, reduced. Shapes must be equal; target takes prediction's dtype.
Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::mean);

/// |prediction - target| (MAE), reduced. Shapes must be equal; target takes prediction's dtype.
Tensor l1_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::mean);

/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1], reduced:
/// log(1 + e^x) - x t = max(x, 0) - x t + log(1 + e^-|x|), computed as logsumexp(0, x) - x t.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction = Reduction::mean);

/// -log_probs[..., target], reduced. log_probs: [..., C] (classes LAST), target: i64 [...] in
/// [0, C) or ignore_index. Ignored entries give loss 0 and are left out of the mean (which
/// divides by the number of entries not ignored: NaN when all are).
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, std::int64_t ignore_index = -100,
                Reduction reduction = Reduction::mean);

/// nll_loss(log_softmax(logits, -1), target, ignore_index, reduction): logits [..., C] with the
/// class axis LAST (PyTorch puts it at axis 1), target i64 [...].
Tensor cross_entropy(const Tensor& logits, const Tensor& target, std::int64_t ignore_index = -100,
                     Reduction reduction = Reduction::mean);

}  // namespace xgrad::nn
