#include "xgrad/optim/clip.hpp"

#include <algorithm>
#include <cmath>

#include "xgrad/core/kernel.hpp"

namespace xgrad::optim {

namespace {
/// Calls f(n, g) with a raw pointer to each defined gradient, in its own type.
template <class F>
void for_each_grad(const std::vector<Tensor>& params, F&& f) {
  for (const auto& p : params) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    detail::dispatch_floating(g.dtype(), "clip_grad", [&](auto tag) {
      using T = decltype(tag);
      f(g.numel(), g.data<T>());
    });
  }
}
}  // namespace

double grad_norm(const std::vector<Tensor>& params, double norm_type) {
  if (!(norm_type > 0)) fail("clip_grad_norm: norm_type must be positive, got {}", norm_type);
  const bool infinity = std::isinf(norm_type);
  double total = 0;
  for_each_grad(params, [&](std::int64_t n, const auto* g) {
    for (std::int64_t k = 0; k < n; ++k) {
      const double a = std::abs(static_cast<double>(g[k]));
      if (infinity) total = std::isnan(a) || std::isnan(total) ? NAN : std::max(total, a);
      else total += norm_type == 2 ? a * a : std::pow(a, norm_type);
    }
  });
  return infinity ? total : norm_type == 2 ? std::sqrt(total) : std::pow(total, 1 / norm_type);
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm, double norm_type, bool error_if_nonfinite) {
  if (!(max_norm >= 0)) fail("clip_grad_norm: max_norm must be non-negative, got {}", max_norm);
  const double norm = grad_norm(params, norm_type);
  if (error_if_nonfinite && !std::isfinite(norm))
    fail("clip_grad_norm: the total norm of order {} of the gradients is {}; the gradients are left unchanged",
         norm_type, norm);
  const double coefficient = max_norm / (norm + 1e-6);
  if (coefficient < 1 || std::isnan(coefficient))
    for_each_grad(params, [&](std::int64_t n, auto* g) {
      using T = std::remove_pointer_t<decltype(g)>;
      for (std::int64_t k = 0; k < n; ++k) g[k] *= static_cast<T>(coefficient);
    });
  return norm;
}

void clip_grad_value(const std::vector<Tensor>& params, double clip_value) {
  if (!(clip_value >= 0)) fail("clip_grad_value: clip_value must be non-negative, got {}", clip_value);
  for_each_grad(params, [&](std::int64_t n, auto* g) {
    using T = std::remove_pointer_t<decltype(g)>;
    const T c = static_cast<T>(clip_value);
    for (std::int64_t k = 0; k < n; ++k) g[k] = std::clamp(g[k], -c, c);
  });
}

}  // namespace xgrad::optim
