#include "xgrad/nn/decode.hpp"

#include <cmath>
#include <limits>

#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {
Tensor column(const Tensor& ids, std::int64_t t) { return squeeze(slice(ids, 1, t, t + 1), 1); }

void check_ids(const Tensor& ids, std::int64_t rank, const char* op, const char* what) {
  if (ids.dtype() != i64 || ids.dim() != rank)
    fail("{}: {} must be i64 of rank {}, got {} {}", op, what, rank, dtype_name(ids.dtype()), ids.shape());
}
}  // namespace

Tensor teacher_forcing(const DecoderStep& step, const Tensor& start, const Tensor& targets, State state) {
  check_ids(start, 1, "teacher_forcing", "start tokens");
  check_ids(targets, 2, "teacher_forcing", "targets");
  if (targets.shape()[0] != start.shape()[0])
    fail("teacher_forcing: {} start tokens for targets {}", start.shape()[0], targets.shape());
  std::vector<Tensor> logits;
  Tensor previous = start;
  for (std::int64_t t = 0; t < targets.shape()[1]; ++t) {
    auto [y, next] = step(previous, state);
    logits.push_back(y);
    state = std::move(next);
    previous = column(targets, t);  // the truth, not the prediction
  }
  if (logits.empty()) fail("teacher_forcing: targets {} have no steps", targets.shape());
  return stack(logits, 1);
}

Tensor choose_tokens(const Tensor& logits, const GenerateOptions& options) {
  if (logits.dim() != 2 || logits.shape()[1] < 1)
    fail("choose_tokens: logits must be [B, V] with V >= 1, got {}", logits.shape());
  if (!(options.temperature >= 0)) fail("choose_tokens: temperature must be >= 0, got {}", options.temperature);
  if (!std::isfinite(options.temperature))
    fail("choose_tokens: temperature must be finite, got {}", options.temperature);
  // NaN logits (a diverged model) have no argmax and no distribution: both paths used to return
  // token 0 as if it had been chosen. +inf is NaN after softmax, so it is refused too.
  const auto values = logits.detach().to(f64).to_vector<double>();
  const std::int64_t V = logits.shape()[1];
  for (std::size_t i = 0; i < values.size(); ++i)
    if (std::isnan(values[i]) || values[i] == std::numeric_limits<double>::infinity())
      fail("choose_tokens: logits {} hold {} at row {}, column {}: no token can be chosen", logits.shape(),
           values[i], static_cast<std::int64_t>(i) / V, static_cast<std::int64_t>(i) % V);
  if (options.temperature == 0) return max(logits, 1).indices;
  // inverse-CDF sampling from softmax(logits / T), one uniform draw per row
  auto p = softmax(logits.detach().to(f64) / options.temperature, 1).to_vector<double>();
  for (std::size_t i = 0; i < p.size(); ++i)  // a row of -inf only, or a temperature so small that logits / T overflow
    if (std::isnan(p[i]))
      fail("choose_tokens: softmax(logits / {}) of logits {} is NaN at row {}: no token can be chosen",
           options.temperature, logits.shape(), static_cast<std::int64_t>(i) / V);
  auto u = uniform({logits.shape()[0]}, 0, 1, f64, options.generator).to_vector<double>();
  Tensor out = empty({logits.shape()[0]}, i64);
  for (std::int64_t b = 0; b < logits.shape()[0]; ++b) {
    std::int64_t k = 0;
    for (double cumulative = p[b * V]; k + 1 < V && cumulative <= u[b]; cumulative += p[b * V + ++k]) {
    }
    out.data<std::int64_t>()[b] = k;
  }
  return out;
}

Tensor generate(const DecoderStep& step, const Tensor& context, State state, std::int64_t steps,
                const GenerateOptions& options) {
  check_ids(context, 2, "generate", "context");
  if (context.shape()[1] < 1) fail("generate: the warm-start context needs at least one token, got {}", context.shape());
  if (steps < 0) fail("generate: steps must be >= 0, got {}", steps);
  autograd::NoGradGuard no_grad;
  Tensor logits;
  for (std::int64_t t = 0; t < context.shape()[1]; ++t) std::tie(logits, state) = step(column(context, t), state);
  std::vector<Tensor> chosen;
  for (std::int64_t t = 0; t < steps; ++t) {
    chosen.push_back(choose_tokens(logits, options));
    if (t + 1 < steps) std::tie(logits, state) = step(chosen.back(), state);
  }
  return chosen.empty() ? empty({context.shape()[0], 0}, i64) : stack(chosen, 1);
}

}  // namespace xgrad::nn
