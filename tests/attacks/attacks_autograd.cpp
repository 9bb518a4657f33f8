// Attacks on autograd: misuse of backward and grad, in-place changes to saved tensors, custom ops
// that return the wrong gradients, anomaly mode, deep graphs.
#include <cmath>
#include <cstdint>
#include <limits>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

using autograd::Grads;

Tensor leaf(std::initializer_list<ListValue> values) { return tensor(values, f64).requires_grad_(); }

/// A custom op built on the public recording API whose backward returns `grads`.
Tensor custom(const Tensor& x, std::function<Grads(const Tensor&)> backward) {
  return autograd::record("my_op", x.detach() * 2.0, {x}, std::move(backward));
}

Register rows{"autograd", {
  {"backward twice without retain_graph", [] {
     Tensor x = leaf({1, 2});
     Tensor y = sum(x * x);
     y.backward();
     expect_error([&] { y.backward(); }, "second time.*mul|second time.*sum");
   }},
  {"backward twice with retain_graph adds both", [] {
     Tensor x = leaf({1, 2});
     Tensor y = sum(x * x);
     y.backward({}, true);
     y.backward();
     expect_values(x.grad(), {4, 8});
   }},
  {"two roots sharing a freed subgraph", [] {
     Tensor x = leaf({3});
     Tensor y = xgrad::exp(x);
     Tensor a = sum(y * 2.0), b = sum(y * 3.0);
     a.backward();
     expect_error([&] { b.backward(); }, "second time.*exp");
   }},
  {"backward of a non-scalar without a gradient", [] {
     expect_error([] { (leaf({1, 2}) * 2.0).backward(); }, "backward.*one-element.*\\[2\\]");
   }},
  {"backward with a gradient of the wrong shape", [] {
     expect_error([] { (leaf({1, 2}) * 2.0).backward(ones({3}, f64)); }, "backward.*\\[3\\].*\\[2\\]");
   }},
  {"backward with a gradient of the wrong dtype", [] {
     expect_error([] { (leaf({1, 2}) * 2.0).backward(ones({2})); }, "backward.*f32.*f64");
   }},
  {"backward of a tensor that does not require grad", [] {
     expect_error([] { sum(ones({2})).backward(); }, "backward.*does not require grad");
   }},
  {"backward of a detached result", [] {
     expect_error([] { sum(leaf({1}) * 2.0).detach().backward(); }, "backward.*does not require grad");
   }},
  {"backward of an undefined tensor", [] { expect_error([] { Tensor().backward(); }, "undefined"); }},
  {"backward of a zero-element sum gives an empty gradient", [] {
     Tensor x = zeros({0}, f64).requires_grad_();
     sum(x).backward();
     expect(x.grad().defined() && x.grad().shape() == Shape{0}, "a gradient of shape [0]");
   }},
  {"backward inside NoGradGuard still computes gradients (PyTorch)", [] {
     Tensor x = leaf({2});
     Tensor y = sum(x * x);
     autograd::NoGradGuard no_grad;
     y.backward();
     expect_values(x.grad(), {4});
   }},
  {"one tensor as both inputs of mul", [] {
     Tensor x = leaf({3});
     sum(x * x).backward();
     expect_values(x.grad(), {6});
   }},
  {"grad of an unused input", [] {
     Tensor x = leaf({1}), unused = leaf({1});
     expect_error([&] { autograd::grad({sum(x * 2.0)}, {unused}); }, "grad: input 0.*not used");
   }},
  {"grad of an unused input with allow_unused is undefined", [] {
     Tensor x = leaf({1}), unused = leaf({1});
     auto g = autograd::grad({sum(x * 2.0)}, {x, unused}, {}, false, std::nullopt, true);
     expect(g.size() == 2 && !g[1].defined(), "an undefined gradient for the unused input");
     expect_values(g[0], {2});
   }},
  {"grad of an input that does not require grad", [] {
     Tensor x = leaf({1});
     expect_error([&] { autograd::grad({sum(x * 2.0)}, {ones({1}, f64)}); }, "grad: an input does not require grad");
   }},
  {"grad leaves .grad untouched", [] {
     Tensor x = leaf({2});
     auto g = autograd::grad({sum(x * x * x)}, {x});
     expect(!x.grad().defined(), "no .grad after grad()");
     expect_values(g[0], {12});
   }},
  {"second derivative through create_graph", [] {
     Tensor x = leaf({2});
     auto g = autograd::grad({sum(x * x * x)}, {x}, {}, true);
     auto gg = autograd::grad({sum(g[0])}, {x});
     expect_values(gg[0], {12});
   }},
  {"copy_ into an input that mul saved, then backward", [] {
     Tensor x = leaf({1, 2}), w = tensor({3.0, 4.0}, f64);
     Tensor y = sum(x * w);
     w.copy_(tensor({5.0, 6.0}, f64));
     expect_error([&] { y.backward(); }, "modified by an inplace.*'mul'");
   }},
  {"copy_ into the output that tanh saved, then backward", [] {
     Tensor x = leaf({0.5});
     Tensor t = xgrad::tanh(x);
     Tensor y = sum(t);
     {
       autograd::NoGradGuard no_grad;
       t.copy_(tensor({0.0}, f64));
     }
     expect_error([&] { y.backward(); }, "modified by an inplace.*'tanh'");
   }},
  {"copy_ into a saved leaf that requires grad", [] {
     Tensor x = leaf({1, 2});
     Tensor y = sum(x * x);
     {
       autograd::NoGradGuard no_grad;
       x.copy_(tensor({5.0, 6.0}, f64));
     }
     expect_error([&] { y.backward(); }, "modified by an inplace.*'mul'");
   }},
  {"an optimizer step between forward and backward", [] {
     Tensor w = leaf({1, 2});
     Tensor y = sum(w * w);
     optim::SGD sgd({w}, {.lr = 0.1});
     w.set_grad(ones({2}, f64));
     sgd.step();
     expect_error([&] { y.backward(); }, "modified by an inplace.*'mul'");
   }},
  {"set_data of another shape between forward and backward", [] {
     Tensor x = leaf({1, 2});
     Tensor y = sum(x * 3.0);
     x.set_data(ones({3}, f64));
     expect_error([&] { y.backward(); }, "backward.*\\[2\\].*\\[3\\]|set_data");
   }},
  {"set_grad of the wrong shape", [] { expect_error([] { leaf({1, 2}).set_grad(ones({3}, f64)); }, "set_grad.*\\[3\\].*\\[2\\]"); }},
  {"set_grad of the wrong dtype", [] { expect_error([] { leaf({1, 2}).set_grad(ones({2})); }, "set_grad.*f32.*f64"); }},
  {"requires_grad_(false) on a non-leaf (PyTorch refuses)", [] {
     Tensor y = leaf({1}) * 2.0;
     expect_error([&] { y.requires_grad_(false); }, "requires_grad.*leaf");
   }},
  {"a custom op returning a gradient of the wrong shape", [] {
     Tensor x = leaf({1, 2});
     Tensor y = custom(x, [](const Tensor&) -> Grads { return {ones({3}, f64)}; });
     expect_error([&] { sum(y).backward(); }, "'my_op' returned a gradient of shape \\[3\\].*\\[2\\]");
   }},
  {"a custom op returning a gradient of the wrong dtype", [] {
     Tensor x = leaf({1, 2});
     Tensor y = custom(x, [](const Tensor&) -> Grads { return {ones({2})}; });
     expect_error([&] { sum(y).backward(); }, "'my_op' returned a gradient.*f32");
   }},
  {"a custom op returning too many gradients", [] {
     Tensor x = leaf({1});
     Tensor y = custom(x, [](const Tensor& g) -> Grads { return {g, g}; });
     expect_error([&] { sum(y).backward(); }, "'my_op' returned 2 gradients for 1 inputs");
   }},
  {"a custom op whose backward throws", [] {
     Tensor x = leaf({1});
     Tensor y = custom(x, [](const Tensor&) -> Grads { fail("my_op: backward refused"); });
     expect_error([&] { sum(y).backward(); }, "my_op: backward refused");
     expect(!x.grad().defined(), "no gradient after a failed backward");
   }},
  {"a custom op returning no gradient is zero", [] {
     Tensor x = leaf({1});
     Tensor y = custom(x, [](const Tensor&) -> Grads { return {Tensor()}; }) + x;
     sum(y).backward();
     expect_values(x.grad(), {1});
   }},
  {"anomaly mode names the forward that made inf", [] {
     autograd::AnomalyModeGuard anomaly;
     expect_error([] { xgrad::log(leaf({0})); }, "anomaly.*forward of 'log'");
   }},
  {"anomaly mode names the backward that made inf", [] {
     autograd::AnomalyModeGuard anomaly;
     Tensor x = leaf({0});
     Tensor y = sum(xgrad::sqrt(x));
     expect_error([&] { y.backward(); }, "anomaly.*backward of 'sqrt'");
   }},
  {"a 200 000-op chain back-propagates without recursion", [] {
     Tensor x = leaf({1});
     Tensor y = x;
     for (int i = 0; i < 200000; ++i) y = y + 1.0;
     sum(y).backward();
     expect_values(x.grad(), {1});
     expect_values(y.detach(), {200001});
   }},
  {"a 1 000 000-op graph freed without backward", [] {
     Tensor x = leaf({1});
     {
       Tensor y = x;
       for (int i = 0; i < 1000000; ++i) y = y * 1.0;
     }
     expect(autograd::live_nodes() <= 1, "every node freed");
   }},
  {"a 100 000-op chain freed after backward with retain_graph", [] {
     Tensor x = leaf({2});
     Tensor y = x;
     for (int i = 0; i < 100000; ++i) y = y * 1.0;
     sum(y).backward({}, true);
     y = Tensor();
     expect(autograd::live_nodes() <= 1, "every node freed");
     expect_values(x.grad(), {1});
   }},
  {"a wide graph: one leaf used by 100 000 ops", [] {
     Tensor x = leaf({1});
     Tensor total = zeros({1}, f64);
     for (int i = 0; i < 100000; ++i) total = total + x;
     sum(total).backward();
     expect_values(x.grad(), {100000});
   }},
  {"grad with grad_outputs of the wrong shape", [] {
     Tensor x = leaf({1, 2});
     expect_error([&] { autograd::grad({x * 2.0}, {x}, {ones({3}, f64)}); }, "grad.*\\[3\\].*\\[2\\]");
   }},
  {"grad with more grad_outputs than outputs", [] {
     Tensor x = leaf({1});
     expect_error([&] { autograd::grad({x * 2.0}, {x}, {ones({1}, f64), ones({1}, f64)}); }, "grad: 2 gradients given for 1 outputs");
   }},
}};

}  // namespace
}  // namespace xgrad::attacks
