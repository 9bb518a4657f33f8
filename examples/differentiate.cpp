// The README's first example: define a function with xgrad ops and differentiate it.
#include <fmt/core.h>

#include "common/cli.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

int main(int argc, char** argv) {
  examples::Cli cli("differentiate", "Defines a function with xgrad ops, differentiates it (also twice) and gradchecks it: the README's first example.", examples::Shared::none);
  if (auto done = cli.parse(argc, argv)) return *done;
  Tensor x = tensor({{0.5, -1.0}, {2.0, 0.25}}, f64).requires_grad_();
  Tensor w = tensor({1.5, -0.5}, f64).requires_grad_();

  Tensor y = sum(tanh(matmul(x, w)) * x.size(0));  // y = 2 * sum(tanh(x w))
  y.backward();                                    // dy/dx, dy/dw into .grad
  fmt::print("y = {}\ndy/dw = {}\n", y, w.grad());

  // Second derivatives: differentiate the gradient itself
  Tensor g = autograd::grad({sum(pow(w, 3.0))}, {w}, {}, /*create_graph=*/true)[0];  // 3 w^2
  fmt::print("d/dw sum(3 w^2) = {}\n", autograd::grad({sum(g)}, {w})[0]);             // 6 w

  // Check any function's gradients against float64 central differences
  auto f = [](const std::vector<Tensor>& in) { return log_softmax(matmul(in[0], in[1]), 0); };
  fmt::print("gradcheck: {}\n", gradcheck(f, {x, w}) && gradgradcheck(f, {x, w}));
}
