#pragma once
// Losses, with PyTorch's semantics and defaults. All are composed from ops and numerically
// stable: bce_with_logits never forms sigmoid(x), cross_entropy never forms softmax(x).
#include <cstdint>
#include <functional>
#include <string_view>

#include "xgrad/core/tensor.hpp"

namespace xgrad::nn {

/// How per-element losses become the result: their mean, their sum, all of them, or (PyTorch's
/// kl_div "batchmean") their sum divided by the size of the first axis.
enum class Reduction { mean, sum, none, batchmean };

/// (prediction - target)^2, reduced. Shapes must be equal; target takes prediction's dtype.
Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::mean);

/// |prediction - target| (MAE), reduced. Shapes must be equal; target takes prediction's dtype.
Tensor l1_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::mean);

/// smooth_l1 (PyTorch's SmoothL1Loss): 0.5 d^2 / beta where |d| < beta, |d| - 0.5 beta elsewhere,
/// d = prediction - target; beta = 0 is l1_loss. beta >= 0.
Tensor smooth_l1_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);

/// Huber (PyTorch's HuberLoss, Keras' "huber"): 0.5 d^2 where |d| <= delta, delta (|d| - 0.5 delta)
/// elsewhere; delta > 0. Equals delta * smooth_l1_loss(beta = delta).
Tensor huber_loss(const Tensor& prediction, const Tensor& target, Reduction reduction = Reduction::mean,
                  double delta = 1.0);

/// Binary cross-entropy of probabilities in [0, 1] (PyTorch's BCELoss): -w [t log p + (1 - t)
/// log(1 - p)], each log clamped at -100 so that p = 0 or 1 gives a finite loss; the gradient is
/// PyTorch's w (p - t) / max(p (1 - p), 1e-12). weight broadcasts to p's shape. Probabilities or
/// targets outside [0, 1] (or NaN) are an Error. Prefer bce_with_logits when you have logits.
Tensor binary_cross_entropy(const Tensor& probs, const Tensor& targets, Reduction reduction = Reduction::mean,
                            const Tensor& weight = {});

/// Binary cross-entropy of sigmoid(logits) against targets in [0, 1] (PyTorch's BCEWithLogitsLoss),
/// never forming sigmoid: (1 - t) x + l softplus(-x), l = 1 + (pos_weight - 1) t, times weight.
/// pos_weight (broadcast against the last axis, e.g. [classes]) weighs the positive term: > 1
/// raises recall. weight broadcasts to the logits' shape.
Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction = Reduction::mean,
                       const Tensor& weight = {}, const Tensor& pos_weight = {});

/// Options of the class losses, PyTorch's defaults: `nll_loss(lp, y, {.weight = w})`.
struct NllOptions {
  Tensor weight = {};                     ///< [C] weight of each class (undefined: all 1)
  std::int64_t ignore_index = -100;       ///< targets equal to it add nothing, and nothing to the mean
  Reduction reduction = Reduction::mean;  ///< mean: divided by the sum of the targets' weights
};
struct CrossEntropyOptions {
  Tensor weight = {};                     ///< [C] weight of each class (undefined: all 1)
  std::int64_t ignore_index = -100;       ///< (class-index targets only)
  Reduction reduction = Reduction::mean;
  double label_smoothing = 0;             ///< in [0, 1]: the target is (1 - s) one_hot + s / C
};

/// -weight[target] * log_probs[..., target], reduced. log_probs: [..., C] (classes LAST), target:
/// i64 [...] in [0, C) or ignore_index. Ignored entries give loss 0 and are left out of the mean,
/// which divides by the sum of weight[target] over the entries not ignored (NaN when all are).
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const NllOptions& options);
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, std::int64_t ignore_index = -100,
                Reduction reduction = Reduction::mean);

/// Cross-entropy of softmax(logits) over the LAST axis (PyTorch puts classes at axis 1), with
/// PyTorch's class weights and label smoothing. target is either i64 class indices [...] (as
/// nll_loss(log_softmax(logits), ...); with smoothing, plus s/C times the weighted sum of
/// -log_softmax over classes, with the same mean) or probabilities of logits' shape (soft labels:
/// -sum_c weight_c t_c log_softmax_c, the mean over the rows [...]). The [..., C] log-probabilities
/// are never formed without smoothing or soft labels.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options);
Tensor cross_entropy(const Tensor& logits, const Tensor& target, std::int64_t ignore_index = -100,
                     Reduction reduction = Reduction::mean);

/// Kullback-Leibler divergence with PyTorch's argument order: `input` holds LOG-probabilities,
/// target probabilities (or log-probabilities with log_target): t (log t - input) pointwise, 0
/// where t = 0. Reduction::batchmean gives the mathematical KL per example (PyTorch's
/// recommendation); mean divides by every element, as PyTorch's default.
Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
              bool log_target = false);

/// A loss of (prediction, target), the form fit's batch sources take.
using LossFunction = std::function<Tensor(const Tensor& prediction, const Tensor& target)>;

/// A loss by its Keras name, with Keras' semantics (the last axis is the one per-example losses
/// average or sum over; the result is their mean): "mse" / "mean_squared_error", "mae" /
/// "mean_absolute_error", "huber" (delta 1), "binary_crossentropy" (on probabilities),
/// "categorical_crossentropy" (probabilities against one-hot or soft targets of the same shape),
/// "sparse_categorical_crossentropy" (probabilities against i64 class indices), "kld" /
/// "kl_divergence" (probabilities against probabilities). Keras clips probabilities to [1e-7,
/// 1 - 1e-7]; so do these. An unknown name is an Error listing the known ones.
LossFunction loss_by_name(std::string_view name);

}  // namespace xgrad::nn
