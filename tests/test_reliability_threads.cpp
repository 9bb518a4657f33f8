// Threads, processes and in-place writes (issue 13): graphs that share parameters back-propagated
// from several threads at once; the default generator from several threads; a child forked after
// the thread pool started; a static Tensor destroyed at exit; a tensor modified in place after a
// node saved it; a gradient of the wrong shape reaching a leaf or a node.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "concurrency.hpp"
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

/// Forks; the child runs `child` and exits with its result (see run_in_child).
template <class F>
int in_child(F child, double seconds = 60) {
  return run_in_child(child, seconds);
}

bool exited_with(int status, int code) { return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == code; }

}  // namespace

TEST_CASE("threads: a shared leaf's gradient is exactly the sum of 4 threads x 1000 backward calls") {
  // Small integers: every partial sum is exact in f32, so any lost or doubled contribution shows.
  Tensor w = tensor({1, 2, 3}).requires_grad_();
  auto contribution = [](int thread, int step) { return tensor({thread + 1.0, step % 3 + 0.0, 1.0}); };
  auto step = [&](int thread, int i) {
    Tensor c = contribution(thread, i);
    Tensor h = w * c + w;  // two paths into the leaf: d/dw = c + 1
    sum(h * 1.0).backward();
  };
  constexpr int kThreads = 4, kSteps = 1000;
  std::vector<double> expected(3, 0.0);
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kSteps; ++i) {
      auto c = contribution(t, i).to_vector<double>();
      for (int k = 0; k < 3; ++k) expected[k] += c[k] + 1;
    }
  on_threads(kThreads, [&](int t) {
    for (int i = 0; i < kSteps; ++i) step(t, i);
  });
  CHECK(w.grad().to_vector<double>() == expected);

  // the same through autograd::grad, which leaves .grad alone, from every thread at once
  w.zero_grad();
  std::vector<std::vector<double>> per_thread(kThreads);
  on_threads(kThreads, [&](int t) {
    std::vector<double> total(3, 0.0);
    for (int i = 0; i < 200; ++i) {
      Tensor c = contribution(t, i);
      auto g = autograd::grad({sum(w * c)}, {w})[0].to_vector<double>();
      for (int k = 0; k < 3; ++k) total[k] += g[k];
    }
    per_thread[static_cast<std::size_t>(t)] = total;
  });
  CHECK_FALSE(w.grad().defined());
  for (int t = 0; t < kThreads; ++t) {
    std::vector<double> total(3, 0.0);
    for (int i = 0; i < 200; ++i) {
      auto c = contribution(t, i).to_vector<double>();
      for (int k = 0; k < 3; ++k) total[k] += c[k];
    }
    CHECK(per_thread[static_cast<std::size_t>(t)] == total);
  }
}

TEST_CASE("threads: graphs recorded on one shared Linear from several threads sum into its gradients") {
  nn::Linear layer(3, 2);
  {
    autograd::NoGradGuard no_grad;  // integer weights and inputs: every gradient sum is exact
    layer.weight.copy_(tensor({{1, -2, 3}, {0, 1, -1}}));
    layer.bias.copy_(tensor({1, 2}));
  }
  auto input = [](int thread, int step) {
    return tensor({{thread + 0.0, 1.0, step % 5 + 0.0}, {1.0, -1.0, thread - 2.0}});
  };
  auto loss = [&](int thread, int step) { return sum(pow(layer(input(thread, step)), 2.0)); };
  constexpr int kThreads = 4, kSteps = 250;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kSteps; ++i) loss(t, i).backward();
  const auto weight_grad = layer.weight.grad().to_vector<double>(), bias_grad = layer.bias.grad().to_vector<double>();
  layer.zero_grad();

  on_threads(kThreads, [&](int t) {
    for (int i = 0; i < kSteps; ++i) loss(t, i).backward();
  });
  CHECK(layer.weight.grad().to_vector<double>() == weight_grad);
  CHECK(layer.bias.grad().to_vector<double>() == bias_grad);
}

TEST_CASE("threads: the default generator gives every thread distinct draws; explicit generators reproduce") {
  manual_seed(21);
  constexpr int kThreads = 4;
  std::vector<std::vector<double>> drawn(kThreads);
  on_threads(kThreads, [&](int t) { drawn[static_cast<std::size_t>(t)] = randn({2000}, f64).to_vector<double>(); });
  // a draw holds the generator for the whole tensor: the threads got the sequential draws, in some order
  manual_seed(21);
  std::vector<std::vector<double>> sequential(kThreads);
  for (auto& s : sequential) s = randn({2000}, f64).to_vector<double>();
  std::sort(drawn.begin(), drawn.end());
  std::sort(sequential.begin(), sequential.end());
  CHECK(drawn == sequential);

  // one generator per thread: the same masks and weights as a sequential run with those generators
  std::vector<std::vector<double>> masks(kThreads), weights(kThreads);
  on_threads(kThreads, [&](int t) {
    Generator gen(100 + static_cast<std::uint64_t>(t));
    masks[static_cast<std::size_t>(t)] = nn::dropout(ones({500}, f64), 0.5, true, &gen).to_vector<double>();
    weights[static_cast<std::size_t>(t)] = nn::init::fan_in_uniform({4, 4}, 4, &gen).to_vector<double>();
  });
  for (int t = 0; t < kThreads; ++t) {
    Generator gen(100 + static_cast<std::uint64_t>(t));
    nn::Dropout drop(0.5);
    drop.generator = &gen;
    CHECK(drop(ones({500}, f64)).to_vector<double>() == masks[static_cast<std::size_t>(t)]);
    CHECK(nn::init::fan_in_uniform({4, 4}, 4, &gen).to_vector<double>() == weights[static_cast<std::size_t>(t)]);
  }
}

TEST_CASE("fork: a child forked after the thread pool started computes, sets the thread count and exits") {
  const int before = num_threads();
  set_num_threads(4);
  auto pooled_sum = [] {
    std::atomic<std::int64_t> total{0};
    parallel_for(1 << 16, 1, [&](std::int64_t begin, std::int64_t end) {
      std::int64_t s = 0;
      for (std::int64_t i = begin; i < end; ++i) s += i;
      total += s;
    });
    return total.load();
  };
  const std::int64_t expected = std::int64_t{1 << 16} * ((1 << 16) - 1) / 2;
  REQUIRE(pooled_sum() == expected);  // the workers exist now
  Tensor a = uniform({256, 256}, -1, 1, f32), b = uniform({256, 256}, -1, 1, f32);
  const Tensor product = matmul(a, b);
  auto same_product = [&] { return max_abs_diff(matmul(a, b), product) < 1e-4; };  // GEMM's split may differ

  const int status = in_child([&] {
    if (num_threads() != 4 || pooled_sum() != expected || !same_product()) return 1;
    set_num_threads(2);
    if (num_threads() != 2 || pooled_sum() != expected || !same_product()) return 2;
    set_num_threads(3);
    if (pooled_sum() != expected) return 3;
    return 0;  // exit() then destroys the child's own pool
  });
  CHECK_MESSAGE(status != -1, "the forked child hung");
  INFO("child status ", status);
  CHECK(exited_with(status, 0));
  CHECK(pooled_sum() == expected);  // the parent's pool is untouched
  set_num_threads(before);
}

TEST_CASE("exit: a static Tensor destroyed at exit, after the thread-local buffer pool") {
  REQUIRE(sum(ones({64}) * 2.0).item() == 128);  // this thread's pool and teardown stack exist
  const int status = in_child([] {
    // constructed now, so destroyed at exit after this thread's thread-local objects
    static Tensor plain = ones({1000});
    static Tensor with_graph = tanh(ones({300}).requires_grad_() * 3.0);
    static std::vector<Tensor> many(8, zeros({17, 3}));
    return plain.numel() == 1000 && with_graph.grad_fn() && many.size() == 8 ? 0 : 1;
  });
  CHECK_MESSAGE(status != -1, "the child hung at exit");
  CHECK(exited_with(status, 0));
}

TEST_CASE("in-place: backward through a saved tensor modified in place throws naming the op") {
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor w = tensor({4, 5, 6});
  const auto v0 = w.version();
  Tensor y = x * w;  // mul saves w
  w.copy_(tensor({0, 0, 0}));
  CHECK(w.version() == v0 + 1);
  CHECK(matches(error_of([&] { sum(y).backward(); }),
                "modified by an inplace operation: .*'mul' saved is at version 1; expected version 0"));

  // an op whose backward reads its output: the output modified in place
  Tensor t = tanh(x);
  t.copy_(tensor({0.5, 0.5, 0.5}));
  CHECK(matches(error_of([&] { sum(t).backward(); }), "inplace operation: the output .*'tanh'"));

  // views share the version: a write through a reshape is seen
  Tensor u = tensor({1, 2, 3, 4}).requires_grad_();
  Tensor base = tensor({1, 1, 1, 1});
  Tensor z = u * base;
  reshape(base, {2, 2}).copy_(tensor({{2, 2}, {2, 2}}));
  CHECK(matches(error_of([&] { sum(z).backward(); }), "'mul'"));

  // ops that saved nothing do not care (as in PyTorch), and an unmodified graph runs
  Tensor a = tensor({1, 2}).requires_grad_(), b = tensor({3, 4});
  Tensor s = a + b;
  b.copy_(tensor({0, 0}));
  sum(s).backward();
  CHECK(a.grad().to_vector<double>() == std::vector<double>{1, 1});

  // set_data after an op saved the leaf: the saved values are gone
  Tensor p = tensor({1, 2, 3}).requires_grad_();
  Tensor q = p * p;
  p.set_data(tensor({7, 8, 9}));
  CHECK(matches(error_of([&] { sum(q).backward(); }), "set_data after 'mul' saved it"));

  // accumulation into .grad is an in-place write too
  Tensor leaf = tensor({1, 2}).requires_grad_();
  sum(leaf * 2.0).backward();
  const auto before = leaf.grad().version();
  sum(leaf * 2.0).backward();
  CHECK(leaf.grad().version() == before + 1);
}

TEST_CASE("shapes: a gradient of the wrong shape at a leaf or a node throws naming the op and both shapes") {
  // set_data between two backward calls: the leaf is now [5], the graph still gives [3]
  Tensor x = tensor({1, 2, 3}).requires_grad_();
  Tensor y = sum(x + 1.0);
  y.backward({}, true);
  x.set_data(tensor({1, 2, 3, 4, 5}));
  CHECK(matches(error_of([&] { y.backward(); }),
                "a gradient \\[3\\] f32 reached a leaf of shape \\[5\\] f32 \\(AccumulateGrad\\); was the leaf's data "
                "replaced by set_data"));
  CHECK_FALSE(x.grad().defined());
  // a graph recorded after set_data takes the new shape
  sum(x * 2.0).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{2, 2, 2, 2, 2});

  // a custom op whose backward returns the wrong shape, into a leaf and into another node
  Tensor leaf = tensor({1, 2, 3}).requires_grad_();
  auto bad = [](const Tensor& in) {
    return autograd::record("bad_op", in.detach() * 1.0, {in}, [](const Tensor&) -> autograd::Grads { return {ones({7})}; });
  };
  CHECK(matches(error_of([&] { sum(bad(leaf)).backward(); }), "'bad_op' returned a gradient of shape \\[7\\] f32 .*\\[3\\]"));
  CHECK(matches(error_of([&] { sum(bad(exp(leaf))).backward(); }), "'bad_op' .*\\[7\\].*\\[3\\].*'exp'"));
  auto bad_dtype = [](const Tensor& in) {
    return autograd::record("bad_dtype", in.detach() * 1.0, {in},
                            [](const Tensor& g) -> autograd::Grads { return {g.to(f64)}; });
  };
  CHECK(matches(error_of([&] { sum(bad_dtype(leaf)).backward(); }), "'bad_dtype' .* f64 .* f32"));
  CHECK_FALSE(leaf.grad().defined());
}
