#include "xgrad/nn/loss.hpp"

#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {

Tensor reduce(const Tensor& losses, Reduction reduction) {
  switch (reduction) {
    case Reduction::mean: return mean(losses);
    case Reduction::sum: return sum(losses);
    case Reduction::none: return losses;
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

/// Checks scores [..., C] against i64 targets [...] in [0, C) or ignore_index; returns the
/// number of targets not ignored.
std::int64_t check_class_targets(const char* op, const Tensor& scores, const Tensor& target,
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
  const std::int64_t* t = target.data<std::int64_t>();
  std::int64_t counted = 0;
  for (std::int64_t i = 0; i < target.numel(); ++i) {
    if (t[i] == ignore_index) continue;
    if (t[i] < 0 || t[i] >= classes)
      fail("{}: target {} is out of range for {} classes (ignore_index {}), target shape {}", op, t[i], classes,
           ignore_index, target.shape());
    ++counted;
  }
  return counted;
}

/// -log_probs[..., target] where target != ignore_index (0 elsewhere), reduced; `counted` is the
/// number of targets not ignored (checked by check_class_targets). `pick` takes the
/// log-probabilities of an index [..., 1] from the scores.
template <class Pick>
Tensor picked_nll(Pick pick, Dtype dtype, const Tensor& target, std::int64_t ignore_index, std::int64_t counted,
                  Reduction reduction) {
  const Tensor ignored = eq(target, scalar(static_cast<double>(ignore_index), i64));
  const Tensor index = unsqueeze(where(ignored, scalar(0, i64), target), -1);  // [..., 1], in range
  const Tensor picked = squeeze(pick(index), -1);
  // `where`, not a product with a mask: an ignored entry stays 0 even where its log_prob is -inf
  const Tensor losses = where(ignored, scalar(0, dtype), -picked);
  if (reduction == Reduction::mean) return sum(losses) / static_cast<double>(counted);
  return reduce(losses, reduction);
}

}  // namespace

Tensor mse_loss(const Tensor& prediction, const Tensor& target, Reduction reduction) {
  return reduce(square(prediction - same_shape_target("mse_loss", prediction, target)), reduction);
}

Tensor l1_loss(const Tensor& prediction, const Tensor& target, Reduction reduction) {
  return reduce(abs(prediction - same_shape_target("l1_loss", prediction, target)), reduction);
}

Tensor bce_with_logits(const Tensor& logits, const Tensor& targets, Reduction reduction) {
  const Tensor t = same_shape_target("bce_with_logits", logits, targets);
  // log(1 + e^x) as logsumexp(0, x): stable for any x, and exactly differentiable (twice) at x = 0
  const Tensor softplus = logsumexp(stack({zeros_like(logits), logits}, 0), 0);
  return reduce(softplus - logits * t, reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, std::int64_t ignore_index, Reduction reduction) {
  const std::int64_t counted = check_class_targets("nll_loss", log_probs, target, ignore_index);
  return picked_nll([&](const Tensor& index) { return gather(log_probs, -1, index); }, log_probs.dtype(), target,
                    ignore_index, counted, reduction);
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, std::int64_t ignore_index, Reduction reduction) {
  const std::int64_t counted = check_class_targets("cross_entropy", logits, target, ignore_index);
  // log_softmax_gather: the [..., C] log-probabilities are never formed, only the picked ones
  return picked_nll([&](const Tensor& index) { return log_softmax_gather(logits, -1, index); }, logits.dtype(), target,
                    ignore_index, counted, reduction);
}

}  // namespace xgrad::nn
