#include "xgrad/autograd/gradcheck.hpp"

#include <cmath>

#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/random.hpp"

namespace xgrad {

namespace {

/// "[1, 2]": the multi-index of flat element k of a shape.
std::string element_index(const Shape& shape, std::int64_t k) {
  Shape idx(shape.size(), 0);
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = k % shape[d];
    k /= shape[d];
  }
  return to_string(idx);
}

}  // namespace

bool gradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  std::vector<std::size_t> checked;  // positions of the inputs that require grad
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].defined() || !inputs[i].requires_grad()) continue;
    if (inputs[i].dtype() != f64)
      fail("gradcheck: input {} is {}; gradient checks need f64 inputs", i, dtype_name(inputs[i].dtype()));
    checked.push_back(i);
  }
  if (checked.empty()) fail("gradcheck: no input requires grad");
  std::vector<Tensor> wrt;
  for (auto i : checked) wrt.push_back(inputs[i]);

  Tensor y = f(inputs);
  if (y.dtype() != f64) fail("gradcheck: the function returned {}; it must return f64", dtype_name(y.dtype()));
  const std::int64_t n_out = y.numel();

  // analytic[c][j * n_in + e]: d y[j] / d input_c[e], one backward per output element
  std::vector<std::vector<double>> analytic(checked.size());
  for (std::size_t c = 0; c < checked.size(); ++c) analytic[c].assign(n_out * wrt[c].numel(), 0.0);
  if (y.requires_grad()) {
    for (std::int64_t j = 0; j < n_out; ++j) {
      Tensor seed = zeros(y.shape(), f64);
      seed.data<double>()[j] = 1.0;
      auto grads = autograd::grad({y}, wrt, {seed}, false, true, true);
      for (std::size_t c = 0; c < checked.size(); ++c) {
        if (!grads[c].defined()) continue;
        const double* g = grads[c].data<double>();
        const std::int64_t n_in = wrt[c].numel();
        for (std::int64_t e = 0; e < n_in; ++e) analytic[c][j * n_in + e] = g[e];
      }
    }
  }

  // numeric: central differences, perturbing each input element in place (grad mode stays
  // on: gradgradcheck's function differentiates inside)
  struct Worst {
    double excess = 0, analytic = 0, numeric = 0;
    std::size_t input = 0;
    std::int64_t element = 0, output = 0;
  } worst;
  for (std::size_t c = 0; c < checked.size(); ++c) {
    double* x = wrt[c].data<double>();
    const std::int64_t n_in = wrt[c].numel();
    for (std::int64_t e = 0; e < n_in; ++e) {
      const double saved = x[e];
      x[e] = saved + options.eps;
      auto plus = f(inputs).to_vector<double>();
      x[e] = saved - options.eps;
      auto minus = f(inputs).to_vector<double>();
      x[e] = saved;
      for (std::int64_t j = 0; j < n_out; ++j) {
        const double numeric = (plus[j] - minus[j]) / (2 * options.eps);
        const double a = analytic[c][j * n_in + e];
        const double excess = std::abs(a - numeric) - (options.atol + options.rtol * std::abs(numeric));
        if (excess > worst.excess || std::isnan(excess)) {
          worst = {std::isnan(excess) ? INFINITY : excess, a, numeric, checked[c], e, j};
        }
      }
    }
  }
  if (worst.excess > 0)
    fail("gradcheck: d output{} / d input {}{}: analytic {:.10g} vs numeric {:.10g} (tolerance {:.3g} + {:.3g} * "
         "|numeric|; output shape {}, input shape {})",
         element_index(y.shape(), worst.output), worst.input, element_index(inputs[worst.input].shape(), worst.element),
         worst.analytic, worst.numeric, options.atol, options.rtol, y.shape(), inputs[worst.input].shape());
  return true;
}

bool gradgradcheck(const TensorFunction& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options,
                   std::uint64_t seed) {
  std::vector<std::size_t> checked;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad()) checked.push_back(i);
  if (checked.empty()) fail("gradgradcheck: no input requires grad");
  Tensor y = f(inputs);
  Generator gen(seed);
  Tensor v = randn(y.shape(), f64, &gen).requires_grad_();

  // (inputs..., v) -> the first-order gradients, flattened and joined
  auto first_order = [&](const std::vector<Tensor>& args) {
    std::vector<Tensor> xs(args.begin(), args.end() - 1);
    std::vector<Tensor> wrt;
    for (auto i : checked) wrt.push_back(xs[i]);
    Tensor out = f(xs);
    std::vector<Tensor> grads;
    if (out.requires_grad()) grads = autograd::grad({out}, wrt, {args.back()}, true, true, true);
    grads.resize(wrt.size());
    std::vector<Tensor> flat;
    for (std::size_t c = 0; c < wrt.size(); ++c)
      flat.push_back(flatten(grads[c].defined() ? grads[c] : zeros_like(wrt[c])));
    return concat(flat, 0);
  };
  std::vector<Tensor> args = inputs;
  args.push_back(v);
  return gradcheck(first_order, args, options);
}

}  // namespace xgrad
