// autograd/: the engine, graph lifetime, grad modes, higher-order derivatives, anomaly mode.
#include <cmath>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

TEST_CASE("backward: implicit 1 for scalars, explicit gradient otherwise") {
  Tensor x = tensor({1.0, 2.0, 3.0}, f64).requires_grad_();
  sum(x * x).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 4, 6});

  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  (x * 3.0).backward(tensor({1.0, 0.5, 0.0}, f64));
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3, 1.5, 0});

  CHECK(matches(error_of([&] { (x * 2.0).backward(); }), R"(backward: .*one-element outputs.*\[3\])"));
  CHECK(matches(error_of([&] { (x * 2.0).backward(ones({2}, f64)); }),
                R"(backward: gradient \[2\] f64 does not match output \[3\] f64)"));
  CHECK(matches(error_of([] { ones({1}).backward(); }), R"(backward: an output does not require grad)"));
}

TEST_CASE("backward: leaf gradients accumulate until zero_grad") {
  Tensor a = tensor({2.0}, f64).requires_grad_(), b = tensor({5.0}, f64).requires_grad_();
  for (int i = 0; i < 3; ++i) (a * b).backward();
  CHECK(a.grad().item() == 15);
  CHECK(b.grad().item() == 6);
  // add passes one gradient to both inputs: accumulating into a.grad must not write into b.grad
  a.zero_grad();
  b.zero_grad();
  (a + b).backward();
  (a + b).backward();
  CHECK(a.grad().item() == 2);
  CHECK(b.grad().item() == 2);
  // a leaf as the root
  a.zero_grad();
  a.backward();
  CHECK(a.grad().item() == 1);
}

TEST_CASE("backward: shared subexpressions (a diamond) sum their contributions") {
  Tensor x = tensor({3.0}, f64).requires_grad_();
  Tensor h = tanh(x);
  Tensor y = h * h + 2.0 * h;  // dy/dx = (2h + 2)(1 - h^2)
  y.backward();
  double t = std::tanh(3.0);
  CHECK(x.grad().item() == doctest::Approx((2 * t + 2) * (1 - t * t)).epsilon(1e-14));
}

TEST_CASE("retain_graph: a second backward works with it and throws without it") {
  Tensor x = tensor({1.5}, f64).requires_grad_();
  Tensor y = exp(x) * x;
  y.backward({}, true);
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(2 * std::exp(1.5) * 2.5).epsilon(1e-14));
  CHECK(matches(error_of([&] { y.backward(); }), R"(second time.*retain_graph=true)"));
}

TEST_CASE("post-accumulate-grad hooks: run once per backward with the leaf's complete gradient, early") {
  // Two layers: W2's gradient is complete long before backward reaches W1.
  Tensor x = tensor({{0.5, -1.0, 2.0}}, f64);
  Tensor w1 = tensor({{0.1, 0.2}, {0.3, -0.4}, {0.5, -0.6}}, f64).requires_grad_();
  Tensor w2 = tensor({{0.7}, {-0.8}}, f64).requires_grad_();
  std::vector<std::string> events;
  std::vector<double> w2_grad_seen;
  bool w1_done_when_w2_fired = true;
  auto h2 = autograd::register_post_accumulate_grad_hook(w2, [&](const Tensor& leaf) {
    events.push_back("w2");
    CHECK(leaf.is_same(w2));
    w2_grad_seen = leaf.grad().to_vector<double>();
    w1_done_when_w2_fired = w1.grad().defined();
  });
  auto h1 = autograd::register_post_accumulate_grad_hook(w1, [&](const Tensor&) {
    events.push_back("w1");
    autograd::queue_callback([&] { events.push_back("end"); });
  });
  // w2 is used twice (its accumulator has two producers): the hook sees both contributions.
  Tensor h = tanh(matmul(x, w1));
  Tensor y = sum(matmul(h, w2)) + sum(w2 * w2);
  y.backward();
  CHECK(events == std::vector<std::string>{"w2", "w1", "end"});
  CHECK_FALSE(w1_done_when_w2_fired);  // it ran before backward reached the first layer
  CHECK(w2_grad_seen == w2.grad().to_vector<double>());
  const auto hv = h.to_vector<double>();
  CHECK(w2_grad_seen == std::vector<double>{hv[0] + 2 * 0.7, hv[1] - 2 * 0.8});

  // A second backward accumulates and runs the hooks again; grad() runs none.
  events.clear();
  Tensor z = sum(matmul(tanh(matmul(x, w1)), w2));
  (void)autograd::grad({z}, {w1, w2}, {}, false, true);
  CHECK(events.empty());
  z.backward();
  CHECK(events == std::vector<std::string>{"w2", "w1", "end"});

  // Removed hooks stay silent; a moved handle still owns its hook.
  events.clear();
  autograd::HookHandle kept = std::move(h2);
  h1.remove();
  sum(matmul(tanh(matmul(x, w1)), w2)).backward();
  CHECK(events == std::vector<std::string>{"w2"});
  kept = autograd::HookHandle();
  sum(w2).backward();
  CHECK(events == std::vector<std::string>{"w2"});
}

TEST_CASE("post-accumulate-grad hooks and queue_callback: errors") {
  Tensor w = tensor({1.0}, f64).requires_grad_();
  auto noop = [](const Tensor&) {};
  CHECK(matches(error_of([&] { (void)autograd::register_post_accumulate_grad_hook(w * 2.0, noop); }),
                R"(register_post_accumulate_grad_hook: .*leaf that requires grad)"));
  CHECK(matches(error_of([&] { (void)autograd::register_post_accumulate_grad_hook(tensor({1.0}), noop); }),
                R"(register_post_accumulate_grad_hook: .*leaf that requires grad)"));
  CHECK(matches(error_of([] { autograd::queue_callback([] {}); }), R"(queue_callback: no backward\(\) is running)"));
  // A callback queued from a callback runs too, in order.
  std::vector<int> order;
  auto hook = autograd::register_post_accumulate_grad_hook(w, [&](const Tensor&) {
    autograd::queue_callback([&] {
      order.push_back(1);
      autograd::queue_callback([&] { order.push_back(2); });
    });
  });
  (w * 3.0).backward();
  CHECK(order == std::vector<int>{1, 2});
  CHECK(w.grad().item() == 3);
}

TEST_CASE("create_graph: gradients of gradients") {
  Tensor x = tensor({0.7, -1.2}, f64).requires_grad_();
  Tensor y = sum(x * x * x);  // dy/dx = 3x^2, d2y/dx2 = 6x
  auto [g] = std::array<Tensor, 1>{autograd::grad({y}, {x}, {}, true)[0]};
  CHECK(g.requires_grad());
  CHECK(max_abs_diff(g, tensor({3 * 0.49, 3 * 1.44}, f64)) < 1e-14);
  auto [h] = std::array<Tensor, 1>{autograd::grad({sum(g)}, {x})[0]};
  CHECK(max_abs_diff(h, tensor({6 * 0.7, -6 * 1.2}, f64)) < 1e-14);
  CHECK_FALSE(x.grad().defined());  // grad() leaves .grad alone

  // backward(create_graph) writes a differentiable .grad
  Tensor z = tensor({2.0}, f64).requires_grad_();
  sum(pow(z, 4.0)).backward({}, false, true);  // 4 z^3
  Tensor dz = z.grad();
  z.zero_grad();
  dz.backward();  // 12 z^2
  CHECK(z.grad().item() == doctest::Approx(48).epsilon(1e-14));
}

TEST_CASE("Hessian-vector product through grad of grad") {
  // f(x) = sum(tanh(A x)); H v checked against central differences of the gradient
  Generator gen(11);
  Tensor A = uniform({3, 3}, -1, 1, f64, &gen);
  Tensor x = uniform({3}, -1, 1, f64, &gen).requires_grad_();
  Tensor v = tensor({0.3, -0.2, 0.5}, f64);
  auto gradient = [&](const Tensor& at) {
    Tensor p = at.detach().requires_grad_();
    return autograd::grad({sum(tanh(matmul(A, p)))}, {p})[0];
  };
  Tensor g = autograd::grad({sum(tanh(matmul(A, x)))}, {x}, {}, true)[0];
  Tensor hv = autograd::grad({sum(g * v)}, {x})[0];
  const double eps = 1e-6;
  Tensor numeric = (gradient(x.detach() + eps * v) - gradient(x.detach() - eps * v)) / (2 * eps);
  CHECK(max_abs_diff(hv, numeric) < 1e-8);
}

TEST_CASE("grad(): allow_unused, non-leaf inputs, several outputs") {
  Tensor x = tensor({1.0, 2.0}, f64).requires_grad_(), unused = tensor({1.0}, f64).requires_grad_();
  Tensor h = x * 2.0;
  Tensor y = sum(h * h);
  CHECK(matches(error_of([&] { autograd::grad({y}, {x, unused}, {}, false, true); }), R"(grad: input 1 .*not used)"));
  auto gs = autograd::grad({y}, {h, unused}, {}, false, true, true);
  CHECK(gs[0].to_vector<double>() == std::vector<double>{4, 8});  // d/dh = 2h
  CHECK_FALSE(gs[1].defined());
  auto two = autograd::grad({sum(x), sum(3.0 * x)}, {x});
  CHECK(two[0].to_vector<double>() == std::vector<double>{4, 4});
}

TEST_CASE("NoGradGuard, detach and requires_grad_") {
  Tensor x = ones({2}, f64).requires_grad_();
  {
    autograd::NoGradGuard no_grad;
    Tensor y = x * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(autograd::grad_enabled());
  Tensor y = x * 2.0;
  CHECK(y.requires_grad());
  CHECK(std::string(y.grad_fn()->name()) == "mul");
  CHECK_FALSE(y.is_leaf());
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.is_leaf());
  CHECK(matches(error_of([&] { sum(d * 3.0).backward(); }), R"(does not require grad)"));
  CHECK(matches(error_of([&] { y.requires_grad_(false); }), R"(requires_grad_: .*leaf)"));
  // ops on tensors that need no grad record nothing
  Tensor c = ones({2}, f64) * 2.0;
  CHECK(c.grad_fn() == nullptr);
}

TEST_CASE("graph lifetime: backward frees the graph") {
  const auto before = autograd::live_nodes();
  {
    Tensor w = input({4, 4});
    {
      Tensor h = zeros({1, 4}, f64);
      for (int t = 0; t < 20; ++t) h = tanh(matmul(h + 1.0, w));
      Tensor loss = sum(h);
      CHECK(autograd::live_nodes() - before > 40);
      loss.backward();
      // the root stays alive with `loss` (released), and so does the node of `h`, which `loss`
      // no longer needs; w's accumulator lives with w
      CHECK(autograd::live_nodes() - before <= 3);
    }
    CHECK(autograd::live_nodes() - before == 1);
  }
  CHECK(autograd::live_nodes() == before);
}

TEST_CASE("graph lifetime: a leaf keeps one accumulator; a graph that outlives its leaf adds into nothing") {
  Tensor x = tensor({1, 2}).requires_grad_();
  Tensor a = x + 1.0, b = x + 2.0;  // add saves no input: b's graph does not keep x alive
  REQUIRE(!a.grad_fn()->next().empty());  // x first (then the scalar)
  const auto accumulator = a.grad_fn()->next()[0].node;
  CHECK(b.grad_fn()->next()[0].node == accumulator);  // one per leaf, not one per graph
  sum(a).backward();
  CHECK((x * 1.0).grad_fn()->next()[0].node == accumulator);  // still the same after backward
  const auto& leaf_of = static_cast<const autograd::AccumulateGrad&>(*accumulator);
  CHECK(leaf_of.leaf().get() == &x.impl());
  x = Tensor();  // the leaf goes; b's graph still holds its accumulator
  CHECK(leaf_of.leaf() == nullptr);
  CHECK_NOTHROW(sum(b).backward());  // runs, and adds into no tensor
}

TEST_CASE("graph lifetime: a 150 000-node chain is destroyed (and differentiated) without recursion") {
  autograd::FusionGuard one_node_per_op(false);  // a FusedNode would hold 64 of these ops
  const auto before = autograd::live_nodes();
  {
    Tensor x = tensor({0.5}, f64).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 150000; ++i) y = y * 1.0;
    CHECK(autograd::live_nodes() - before >= 150000);
  }
  CHECK(autograd::live_nodes() == before);
  {
    Tensor x = tensor({0.5}, f64).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 150000; ++i) y = y + 0.0;
    y.backward();
    CHECK(x.grad().item() == 1.0);
  }
  CHECK(autograd::live_nodes() == before);
}

TEST_CASE("graph lifetime: 10 000 recurrent steps with detach every 35 keep the live graph bounded") {
  const auto before = autograd::live_nodes();
  Tensor w = input({8, 8}, -0.3, 0.3), b = input({8}, -0.1, 0.1);
  Tensor h = zeros({2, 8}, f64);
  std::int64_t peak = 0;
  Tensor loss = scalar(0, f64);
  for (int step = 1; step <= 10000; ++step) {
    h = tanh(matmul(h, w) + b);
    loss = loss + sum(h);
    if (step % 35 == 0) {
      loss.backward();
      h = h.detach();
      loss = scalar(0, f64);
      w.zero_grad();
      b.zero_grad();
    }
    peak = std::max(peak, autograd::live_nodes() - before);
  }
  CHECK(peak <= 35 * 6 + 10);  // one window of 35 steps, about 5 nodes each
}

TEST_CASE("anomaly mode names the first op whose forward or backward is not finite") {
  autograd::AnomalyModeGuard anomaly;
  Tensor x = tensor({-1.0, 4.0}, f64).requires_grad_();
  CHECK(matches(error_of([&] { log(x); }), R"(anomaly: the forward of 'log' produced NaN or Inf \(shape \[2\]\))"));
  Tensor z = tensor({0.0, 4.0}, f64).requires_grad_();
  Tensor y = sqrt(z);  // finite forward, infinite derivative at 0
  CHECK(matches(error_of([&] { sum(y).backward(); }), R"(anomaly: the backward of 'sqrt' produced NaN or Inf)"));
  {
    autograd::AnomalyModeGuard off(false);
    CHECK_NOTHROW(log(x));
  }
}

TEST_CASE("gradcheck reports the input, the worst element and both values") {
  // a deliberately wrong derivative: record an op whose backward is off by a factor of 2
  auto wrong_square = [](const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    Tensor y = (x * x).detach();
    return autograd::record("wrong_square", y, {x}, [x](const Tensor& g) -> autograd::Grads { return {g * x}; });
  };
  Tensor x = tensor({{0.5, -1.0}, {2.0, 0.25}}, f64).requires_grad_();
  std::string message = error_of([&] { gradcheck(wrong_square, {x}); });
  CHECK(matches(message, R"(gradcheck: d output\[1, 0\] / d input 0\[1, 0\]: analytic 2 vs numeric 4)"));
  CHECK(matches(error_of([] { gradcheck([](auto& in) { return in[0] * 2.0; }, {ones({2}).requires_grad_()}); }),
                R"(gradcheck: input 0 is f32)"));
  CHECK(gradcheck([](auto& in) { return in[0] * in[0]; }, {x}));
  // a right first derivative whose own derivative is wrong (a detached value inside backward):
  // gradcheck passes, gradgradcheck catches it
  auto frozen_backward = [](const std::vector<Tensor>& in) {
    const Tensor& x = in[0];
    Tensor y = (x * x).detach();
    return autograd::record("frozen_square", y, {x},
                            [x](const Tensor& g) -> autograd::Grads { return {g * x.detach() * 2.0}; });
  };
  CHECK(gradcheck(frozen_backward, {x}));
  CHECK(matches(error_of([&] { gradgradcheck(frozen_backward, {x}); }), R"(gradcheck: .*analytic)"));
}
