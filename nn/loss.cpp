#include "xgrad/nn/loss.hpp"

#include <cmath>
#include <string>

#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {

Tensor reduce(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::mean: return mean(losses);
    case Reduction::sum: return sum(losses);
    case Reduction::none: return losses;
    case Reduction::batchmean: return sum(losses) / static_cast<double>(losses.dim() == 0 ? 1 : losses.shape()[0]);
  }
  fail("loss: unknown reduction {}", static_cast<int>(reduction));
}

/// The target in the prediction's dtype, after checking that the shapes are equal.
Tensor same_shape_target(const char* op, const Tensor& prediction, const Tensor& target) {
  if (!is_floating(prediction.dtype()))
    fail("{}: prediction must be floating point, got {} {}", op, dtype_name(prediction.dtype()), prediction.shape());
  if (prediction.shape() != target.shape())
    fail("{}: prediction {} and target {} must have the same shape", op, prediction.shape(), target.shape());
  return target.to(prediction.dtype());
}

/// An optional weight tensor in `like`'s dtype, checked to broadcast to `like`'s shape.
Tensor broadcast_weight(const char* op, const char* name, const Tensor& weight, const Tensor& like) {
  if (!weight.defined()) return weight;
  if (!is_floating(weight.dtype()))
    fail("{}: {} must be floating point, got {} {}", op, name, dtype_name(weight.dtype()), weight.shape());
  const Shape& w = weight.shape();
  const Shape& s = like.shape();
  bool ok = w.size() <= s.size();
  for (std::size_t i = 0; ok && i < w.size(); ++i) {
    const auto wi = w[w.size() - 1 - i], si = s[s.size() - 1 - i];
    ok = wi == si || wi == 1;
  }
  if (!ok) fail("{}: {} {} does not broadcast to the input's shape {}", op, name, w, s);
  return weight.to(like.dtype());
}

/// Throws unless every element of t lies in [0, 1] (NaN does not).
void check_unit_interval(const char* op, const char* what, const Tensor& t) {
  autograd::NoGradGuard no_grad;
  const Tensor inside = ge(t, scalar(0, t.dtype())) * le(t, scalar(1, t.dtype()));
  if (sum(inside.to(f64)).item() != static_cast<double>(t.numel()))
    fail("{}: every element of {} must lie in [0, 1] (shape {})", op, what, t.shape());
}

/// The class targets of nll_loss and cross_entropy: i64 [...] against scores [..., C], each in
/// [0, C) or ignore_index; with the class weights, what the mean divides by.
struct ClassTargets {
  Tensor ignored;      ///< bool [...]
  Tensor index;        ///< i64 [..., 1], 0 where ignored (so always in range)
  Tensor class_weight; ///< [C] the class weights in the scores' dtype; undefined without them
  Tensor weight;       ///< [...] each target's class weight; undefined without class weights
  Tensor weight_sum;   ///< the sum of `weight` over the targets not ignored (with class weights)
  std::int64_t counted = 0;  ///< the number of targets not ignored
};

Tensor checked_class_weight(const char* op, const Tensor& weight, const Tensor& scores) {
  if (!weight.defined()) return weight;
  const std::int64_t classes = scores.shape().back();
  if (!is_floating(weight.dtype()) || weight.dim() != 1 || weight.shape()[0] != classes)
    fail("{}: weight must be floating point [{}] (one per class), got {} {}", op, classes, dtype_name(weight.dtype()),
         weight.shape());
  return weight.to(scores.dtype());
}

ClassTargets class_targets(const char* op, const Tensor& scores, const Tensor& target, const Tensor& class_weight,
                           std::int64_t ignore_index) {
  if (scores.dim() == 0 || !is_floating(scores.dtype()))
    fail("{}: scores must be floating point [..., classes], got {} {}", op, dtype_name(scores.dtype()),
         scores.shape());
  if (target.dtype() != i64)
    fail("{}: target must hold i64 class indices, got {} {}", op, dtype_name(target.dtype()), target.shape());
  const Shape& s = scores.shape();
  if (target.shape() != Shape(s.begin(), s.end() - 1))
    fail("{}: target {} must be the scores' shape {} without the last (class) axis", op, target.shape(), s);
  const std::int64_t classes = s.back();
  const std::vector<std::int64_t> t = target.to_vector<std::int64_t>();
  ClassTargets result;
  for (std::size_t i = 0; i < t.size(); ++i) {
    if (t[i] == ignore_index) continue;
    if (t[i] < 0 || t[i] >= classes)
      fail("{}: target {} is out of range for {} classes (ignore_index {}), target shape {}", op, t[i], classes,
           ignore_index, target.shape());
    ++result.counted;
  }
  result.ignored = eq(target, scalar(static_cast<double>(ignore_index), i64));
  const Tensor in_range = where(result.ignored, scalar(0, i64), target);
  result.index = unsqueeze(in_range, -1);
  result.class_weight = checked_class_weight(op, class_weight, scores);
  if (const Tensor& weight = result.class_weight; weight.defined()) {
    result.weight = where(result.ignored, scalar(0, weight.dtype()),
                          reshape(index_select(weight, 0, flatten(in_range)), target.shape()));
    result.weight_sum = sum(result.weight);
  }
  return result;
}

/// Per-target losses (0 where ignored) reduced as the class losses are: the mean divides by the
/// sum of the targets' class weights, or by their number without class weights.
Tensor class_reduce(const Tensor& losses, const ClassTargets& targets, Reduction reduction) {
  if (reduction != Reduction::mean) return reduce(losses, reduction);
  if (targets.weight.defined()) return sum(losses) / targets.weight_sum;
  return sum(losses) / static_cast<double>(targets.counted);
}

/// -weight[target] * picked (0 where ignored); `picked` holds the log-probabilities of the targets.
Tensor picked_losses(const Tensor& picked, const ClassTargets& targets) {
  // `where`, not a product with a mask: an ignored entry stays 0 even where its log_prob is -inf
  const Tensor losses = targets.weight.defined() ? -picked * targets.weight : -picked;
  return where(targets.ignored, scalar(0, picked.dtype()), losses);
}

/// Keras' clipping of probabilities away from 0 and 1 (its backend epsilon).
constexpr double keras_epsilon = 1e-7;
Tensor keras_clip(const Tensor& p) { return clamp(p, keras_epsilon, 1 - keras_epsilon); }

}  // namespace

Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction) {
  return reduce(square(prediction - same_shape_target("mse_loss", prediction, target)), reduction);
}

Tensor l1_loss(const Tensor& prediction, const Tensor& target, Reduction reduction) {
  return reduce(abs(prediction - same_shape_target("l1_loss", prediction, target)), reduction);
}

Tensor smooth_l1_loss(const Tensor& prediction, const Tensor& target, Reduction reduction, double beta) {
  if (!(beta >= 0)) fail("smooth_l1_loss: beta must be >= 0, got {} (shape {})", beta, prediction.shape());
  const Tensor t = same_shape_target("smooth_l1_loss", prediction, target);
  if (beta == 0) return l1_loss(prediction, t, reduction);  // the quadratic branch would divide by 0
  const Tensor d = prediction - t;
  const Tensor size = abs(d);
  return reduce(where(lt(size, scalar(beta, d.dtype())), square(d) * (0.5 / beta), size - 0.5 * beta), reduction);
}

Tensor huber_loss(const Tensor& prediction, const Tensor& target, Reduction reduction, double delta) {
  if (!(delta > 0)) fail("huber_loss: delta must be > 0, got {} (shape {})", delta, prediction.shape());
  const Tensor d = prediction - same_shape_target("huber_loss", prediction, target);
  const Tensor size = abs(d);
  return reduce(where(le(size, scalar(delta, d.dtype())), 0.5 * square(d), delta * (size - 0.5 * delta)), reduction);
}

Tensor binary_cross_entropy(const Tensor& probs, const Tensor& targets, Reduction reduction, const Tensor& weight) {
  const char* op = "binary_cross_entropy";
  const Tensor t = same_shape_target(op, probs, targets);
  const Tensor w = broadcast_weight(op, "weight", weight, probs);
  check_unit_interval(op, "the probabilities", probs);
  check_unit_interval(op, "the targets", t);
  // One op: PyTorch clamps each log at -100 in the forward pass and takes its gradient from the
  // unclamped formula (p - t) / max(p (1 - p), 1e-12); a composite of clamp and log would give
  // 0 * inf = NaN at p = 0 or 1. The backward is made of ops, so it differentiates again.
  Tensor losses;
  {
    autograd::NoGradGuard no_grad;
    const auto clamped_log = [](const Tensor& x) { return clamp(log(x), -100.0, std::nullopt); };
    losses = (t - 1.0) * clamped_log(1.0 - probs) - t * clamped_log(probs);
  }
  losses = autograd::record(op, losses, {probs, t}, [probs, t](const Tensor& g) -> autograd::Grads {
    constexpr double epsilon = static_cast<float>(1e-12);  // PyTorch's EPSILON is a float
    const Tensor d_probs = g * (probs - t) / clamp((1.0 - probs) * probs, epsilon, std::nullopt);
    const Tensor d_targets = g * (log(1.0 - probs) - log(probs));  // -logit(p), as PyTorch
    return {d_probs, d_targets};
  });
  return reduce(w.defined() ? losses * w : losses, reduction);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction, const Tensor& weight,
                       const Tensor& pos_weight) {
  const char* op = "bce_with_logits";
  const Tensor t = same_shape_target(op, logits, targets);
  const Tensor w = broadcast_weight(op, "weight", weight, logits);
  const Tensor pw = broadcast_weight(op, "pos_weight", pos_weight, logits);
  // log(1 + e^x) as logsumexp(0, x): stable for any x, and exactly differentiable (twice) at x = 0
  const auto softplus_of = [](const Tensor& x) { return logsumexp(stack({zeros_like(x), x}, 0), 0); };
  Tensor losses;
  if (pw.defined()) {
    // -[pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] = (1 - t) x + (1 + (pw - 1) t) softplus(-x)
    losses = (1.0 - t) * logits + (1.0 + (pw - 1.0) * t) * softplus_of(-logits);
  } else {
    losses = softplus_of(logits) - logits * t;
  }
  return reduce(w.defined() ? losses * w : losses, reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const NllOptions& options) {
  const ClassTargets targets = class_targets("nll_loss", log_probs, target, options.weight, options.ignore_index);
  const Tensor picked = squeeze(gather(log_probs, -1, targets.index), -1);
  return class_reduce(picked_losses(picked, targets), targets, options.reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, std::int64_t ignore_index, Reduction reduction) {
  return nll_loss(log_probs, target, NllOptions{.ignore_index = ignore_index, .reduction = reduction});
}

namespace {
/// cross_entropy against probabilities (soft labels) of the logits' shape: the mean is over rows.
Tensor soft_cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  const char* op = "cross_entropy";
  Tensor t = same_shape_target(op, logits, target);
  const Tensor weight = checked_class_weight(op, options.weight, logits);
  const double s = options.label_smoothing;
  const auto classes = static_cast<double>(logits.shape().back());
  if (s > 0) t = t * (1.0 - s) + s / classes;
  const Tensor weighted = weight.defined() ? t * weight : t;
  const Tensor losses = -sum(log_softmax(logits, -1) * weighted, {-1});
  return reduce(losses, options.reduction);
}
}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  const char* op = "cross_entropy";
  const double s = options.label_smoothing;
  if (!(s >= 0 && s <= 1))
    fail("{}: label_smoothing must lie in [0, 1], got {} (logits {})", op, s, logits.shape());
  if (is_floating(target.dtype())) {
    if (target.shape() != logits.shape())
      fail("{}: target must be i64 class indices (the logits' shape {} without the last axis) or probabilities of "
           "the logits' shape, got {} {}",
           op, logits.shape(), dtype_name(target.dtype()), target.shape());
    return soft_cross_entropy(logits, target, options);
  }
  const ClassTargets targets = class_targets(op, logits, target, options.weight, options.ignore_index);
  // log_softmax_gather: without smoothing the [..., C] log-probabilities are never formed
  const Tensor picked = squeeze(log_softmax_gather(logits, -1, targets.index), -1);
  const Tensor nll = class_reduce(picked_losses(picked, targets), targets, options.reduction);
  if (s == 0) return nll;
  // PyTorch's smoothing: (1 - s) nll + s / C * sum_c -weight_c log p_c, ignored rows 0, the
  // same divisor for the mean
  const Tensor& weight = targets.class_weight;
  const Tensor log_probs = log_softmax(logits, -1);
  const Tensor spread = -sum(weight.defined() ? log_probs * weight : log_probs, {-1});
  const Tensor smooth = where(targets.ignored, scalar(0, logits.dtype()), spread);
  const auto classes = static_cast<double>(logits.shape().back());
  return (1.0 - s) * nll + (s / classes) * class_reduce(smooth, targets, options.reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, std::int64_t ignore_index, Reduction reduction) {
  return cross_entropy(logits, target, CrossEntropyOptions{.ignore_index = ignore_index, .reduction = reduction});
}

Tensor kl_div(const Tensor& input, const Tensor& target, Reduction reduction, bool log_target) {
  const Tensor t = same_shape_target("kl_div", input, target);
  if (log_target) return reduce(exp(t) * (t - input), reduction);
  // t log t is 0 at t = 0 (PyTorch's xlogy) and NaN for a negative t; its gradient at t = 0 is
  // NaN, as PyTorch's (0 * log 0 in the unselected branch)
  const Tensor zero = eq(t, scalar(0, t.dtype()));
  const Tensor t_log_t = where(zero, scalar(0, t.dtype()), t * log(t));
  return reduce(t_log_t - t * input, reduction);
}

LossFunction loss_by_name(std::string_view name) {
  const std::string n(name);
  if (n == "mse" || n == "mean_squared_error")
    return [](const Tensor& p, const Tensor& t) { return mse_loss(p, t); };
  if (n == "mae" || n == "mean_absolute_error")
    return [](const Tensor& p, const Tensor& t) { return l1_loss(p, t); };
  if (n == "huber") return [](const Tensor& p, const Tensor& t) { return huber_loss(p, t); };
  if (n == "binary_crossentropy")
    return [](const Tensor& p, const Tensor& targets) {
      const Tensor t = same_shape_target("binary_crossentropy", p, targets);
      const Tensor q = keras_clip(p);
      return -mean(t * log(q + keras_epsilon) + (1.0 - t) * log(1.0 - q + keras_epsilon));
    };
  if (n == "categorical_crossentropy")
    return [](const Tensor& p, const Tensor& targets) {
      const Tensor t = same_shape_target("categorical_crossentropy", p, targets);
      const Tensor q = keras_clip(p / sum(p, {-1}, true));
      return mean(-sum(t * log(q), {-1}));
    };
  if (n == "sparse_categorical_crossentropy")
    return [](const Tensor& p, const Tensor& target) {
      // Keras turns the clipped probabilities into logits: -log(q_y / sum_c q_c)
      return cross_entropy(log(keras_clip(p)), target);
    };
  if (n == "kld" || n == "kl_divergence" || n == "kullback_leibler_divergence")
    return [](const Tensor& p, const Tensor& targets) {
      const Tensor t = clamp(same_shape_target("kl_divergence", p, targets), keras_epsilon, 1.0);
      return mean(sum(t * log(t / clamp(p, keras_epsilon, 1.0)), {-1}));
    };
  fail("loss_by_name: unknown loss '{}'; known: mse, mean_squared_error, mae, mean_absolute_error, huber, "
       "binary_crossentropy, categorical_crossentropy, sparse_categorical_crossentropy, kld, kl_divergence, "
       "kullback_leibler_divergence",
       name);
}

}  // namespace xgrad::nn
