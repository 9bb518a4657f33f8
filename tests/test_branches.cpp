// autograd::parallel_branches and the bidirectional layers that run their directions with it:
// gradients bit-identical to the same ops run one after another, gradcheck and gradgradcheck
// through it, retain_graph, grad(), errors, and thread counts.
#include <atomic>
#include <chrono>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

/// Sets the pool's size for a scope.
struct Threads {
  int before = num_threads();
  explicit Threads(int n) { set_num_threads(n); }
  ~Threads() { set_num_threads(before); }
};

/// Two branches that read x (each once), w (four times) and v, and return two outputs and one
/// that does not require grad; summed into one loss with fixed weights. With x_again, the first
/// branch also reads x three times more.
struct TwoBranches {
  bool x_again = false;
  Tensor x, w, v;
  explicit TwoBranches(Dtype dtype) {
    Generator gen(3);
    x = uniform({6, 5}, -1, 1, dtype, &gen).requires_grad_();
    w = uniform({5, 5}, -1, 1, dtype, &gen).requires_grad_();
    v = uniform({5, 4}, -1, 1, dtype, &gen).requires_grad_();
  }
  std::vector<Tensor> first() const {
    Tensor h = tanh(matmul(x, w));
    for (int k = 0; k < 3; ++k) h = sigmoid(matmul(h, w)) * h + (x_again ? x : h * 0.5);
    return {h, sum(h * h, {1})};
  }
  std::vector<Tensor> second() const {
    Tensor g = relu(matmul(x * 2.0, v));
    return {exp(g * 0.5) - g, ones({2}, x.dtype())};
  }
  Tensor loss(const std::vector<Tensor>& a, const std::vector<Tensor>& b) const {
    return sum(a[0] * 0.25) + sum(a[1] * a[1]) + sum(b[0] * b[0] * 1.5);
  }
  std::vector<Tensor> gradients(bool branches, bool concurrent) {
    for (Tensor* t : {&x, &w, &v}) t->zero_grad();
    Tensor l;
    if (branches) {
      auto out = autograd::parallel_branches({[&] { return first(); }, [&] { return second(); }}, concurrent);
      l = loss(out[0], out[1]);
    } else {
      auto a = first();
      auto b = second();
      l = loss(a, b);
    }
    l.backward();
    return {x.grad(), w.grad(), v.grad()};
  }
};

}  // namespace

TEST_CASE("parallel_branches: gradients equal those of the branches run one after another, bit for bit") {
  for (int threads : {1, 2}) {
    Threads pool(threads);
    for (Dtype dtype : {f32, f64})
      for (bool concurrent : {true, false}) {
        TwoBranches model(dtype);
        const auto plain = model.gradients(false, false), branched = model.gradients(true, concurrent);
        for (std::size_t i = 0; i < plain.size(); ++i) {
          INFO(threads, " threads, ", dtype_name(dtype), concurrent ? ", concurrent" : ", in order", ", gradient ", i);
          CHECK(same_bits(plain[i], branched[i]));
        }
      }
  }
}

TEST_CASE("parallel_branches: a tensor read several times by one branch and by another: the same sum, grouped per branch") {
  Threads pool(2);
  TwoBranches model(f64);
  model.x_again = true;
  const auto plain = model.gradients(false, false), branched = model.gradients(true, true);
  CHECK(same_bits(plain[1], branched[1]));  // w and v: read by one branch only
  CHECK(same_bits(plain[2], branched[2]));
  // x: (((c1 + a4) + a3) + a2) + a1 against c1 + (((a4 + a3) + a2) + a1): a few roundings of the
  // largest partial sum apart
  double largest = 0;
  for (double v : plain[0].to_vector<double>()) largest = std::max(largest, std::abs(v));
  check_close(branched[0], plain[0], 8 * std::numeric_limits<double>::epsilon() * largest);
  CHECK_FALSE(same_bits(plain[0], branched[0]));  // (else this case would not test the grouping)
}

TEST_CASE("parallel_branches: outputs, a tensor returned unchanged, an output without grad, under no grad") {
  Threads pool(2);
  Tensor a = randn({3, 4}, f64).requires_grad_(), b = randn({3, 4}, f64);
  auto out = autograd::parallel_branches({[&] { return std::vector<Tensor>{a * 2.0, a}; },
                                          [&] { return std::vector<Tensor>{b + 1.0}; }});
  REQUIRE(out.size() == 2);
  REQUIRE(out[0].size() == 2);
  CHECK(same_bits(out[0][0], a.detach() * 2.0));
  CHECK(out[0][0].requires_grad());
  CHECK(std::string(out[0][0].grad_fn()->name()) == "parallel_branches");
  CHECK_FALSE(out[1][0].requires_grad());  // nothing it reads requires grad
  CHECK(same_bits(out[1][0], b + 1.0));
  (sum(out[0][0]) + sum(out[0][1] * 3.0)).backward();
  CHECK(same_bits(a.grad(), full({3, 4}, 5.0, f64)));  // 2 through the product, 3 straight through
  {
    autograd::NoGradGuard no_grad;
    auto plain = autograd::parallel_branches({[&] { return std::vector<Tensor>{a * 2.0}; }});
    CHECK_FALSE(plain[0][0].requires_grad());
  }
}

TEST_CASE("parallel_branches: gradcheck and gradgradcheck in float64, shared and separate inputs") {
  Threads pool(2);
  auto f = [](const std::vector<Tensor>& in) {
    auto out = autograd::parallel_branches(
        {[&] { return std::vector<Tensor>{tanh(matmul(in[0], in[1])) * in[0]}; },
         [&] { return std::vector<Tensor>{sigmoid(in[0] * in[2]), matmul(in[2], in[1])}; }});
    return sum(out[0][0] * out[1][0]) + sum(out[1][1] * out[1][1]);
  };
  Tensor x = input({3, 3}, -1, 1, 1), w = input({3, 3}, -1, 1, 2), y = input({3, 3}, -1, 1, 3);
  check_gradients(f, {x, w, y});
}

TEST_CASE("parallel_branches: retain_graph, a second backward without it, grad() of inputs and of a hidden tensor") {
  Threads pool(2);
  Tensor w = randn({4, 4}, f64).requires_grad_(), x = randn({2, 4}, f64).requires_grad_();
  Tensor hidden;
  auto run = [&] {
    return autograd::parallel_branches({[&] {
                                          hidden = tanh(matmul(x, w));
                                          return std::vector<Tensor>{hidden * 2.0};
                                        },
                                        [&] { return std::vector<Tensor>{matmul(x, w) * x}; }});
  };
  auto out = run();
  Tensor loss = sum(out[0][0]) + sum(out[1][0]);
  loss.backward({}, true);
  const Tensor once = w.grad().clone();
  loss.backward();
  CHECK(same_bits(w.grad(), once * 2.0));
  CHECK(matches(error_of([&] { loss.backward(); }), "second time"));

  auto again = run();
  Tensor l2 = sum(again[0][0]) + sum(again[1][0]);
  auto g = autograd::grad({l2}, {x, w}, {}, false, true);
  CHECK(same_bits(g[1], once));
  // A tensor made inside a branch and not returned is not part of the outer graph.
  CHECK(matches(error_of([&] { autograd::grad({l2}, {hidden}); }), "not used"));
}

TEST_CASE("parallel_branches: errors in a branch, empty branches, in-place writes to a saved tensor") {
  Threads pool(2);
  Tensor x = randn({3}, f64).requires_grad_();
  CHECK(matches(error_of([&] {
                  autograd::parallel_branches({[&] { return std::vector<Tensor>{x * 2.0}; },
                                               [&]() -> std::vector<Tensor> { return {matmul(x, ones({4, 4}, f64))}; }});
                }),
                "matmul"));
  // Both branches throw: one error reaches the caller, and none is left for a later parallel run.
  auto failing = [] { return std::vector<Tensor>{matmul(ones({2}), ones({3}))}; };
  CHECK(matches(error_of([&] { autograd::parallel_branches({failing, failing}); }), "matmul"));
  CHECK_NOTHROW(autograd::parallel_branches({[&] { return std::vector<Tensor>{x * 2.0}; },
                                             [&] { return std::vector<Tensor>{x * 3.0}; }}));
  CHECK(matches(error_of([&] { autograd::parallel_branches({autograd::Branch()}); }), "branch 0 is empty"));
  CHECK(matches(error_of([&] { autograd::parallel_branches({[] { return std::vector<Tensor>{Tensor()}; }}); }),
                "output 0 of branch 0 is undefined"));
  Tensor y = randn({3}, f64).requires_grad_();
  Tensor z = y * 1.0;
  auto out = autograd::parallel_branches({[&] { return std::vector<Tensor>{z * z}; }});  // saves z
  {
    autograd::NoGradGuard no_grad;
    z.copy_(z * 2.0);
  }
  CHECK(matches(error_of([&] { sum(out[0][0]).backward(); }), "modified"));
}

TEST_CASE("parallel_branches: anomaly mode names the op inside a branch whose backward yields Inf") {
  Threads pool(2);
  Tensor x = zeros({4}, f64).requires_grad_(), y = ones({4}, f64).requires_grad_();
  autograd::AnomalyModeGuard anomaly;
  auto out = autograd::parallel_branches({[&] { return std::vector<Tensor>{y * 2.0}; },
                                          [&] { return std::vector<Tensor>{sqrt(x)}; }});  // d sqrt(x)/dx = Inf at 0
  CHECK(matches(error_of([&] { (sum(out[0][0]) + sum(out[1][0])).backward(); }), "backward of 'sqrt'"));
}

TEST_CASE("parallel_branches: side by side on two threads; in order on this thread without concurrent_forward") {
  Threads pool(2);
  std::atomic<int> inside{0}, most{0};
  std::chrono::milliseconds patience{0};
  // Each branch waits (at most `patience`) for the other to be inside too.
  auto branch = [&] {
    const int now = ++inside;
    for (int seen = most.load(); now > seen && !most.compare_exchange_weak(seen, now);) {
    }
    const auto until = std::chrono::steady_clock::now() + patience;
    while (std::chrono::steady_clock::now() < until && most.load() < 2) {
    }
    --inside;
    return std::vector<Tensor>{};
  };
  patience = std::chrono::milliseconds(20);
  autograd::parallel_branches({branch, branch}, false);
  CHECK(most.load() == 1);
  patience = std::chrono::milliseconds(10000);  // the worker may be slow to wake on a busy machine
  autograd::parallel_branches({branch, branch}, true);
  CHECK(most.load() == 2);
}

TEST_CASE("bidirectional layers: outputs, final states and gradients equal two unrolled directions, bit for bit") {
  using Factory = std::function<std::shared_ptr<nn::Recurrent>()>;
  const std::vector<std::pair<const char*, Factory>> layers = {
      {"LSTM", [] { return std::make_shared<nn::LSTM>(5, 6, nn::RNNOptions{.bidirectional = true}); }},
      {"GRU", [] { return std::make_shared<nn::GRU>(5, 6, nn::RNNOptions{.bidirectional = true}); }},
      {"RNN", [] { return std::make_shared<nn::RNN>(5, 6, nn::RNNOptions{.bidirectional = true}); }},
  };
  for (int threads : {1, 2}) {
    Threads pool(threads);
    for (const auto& [name, make] : layers) {
      manual_seed(11);
      auto layer = make();
      layer->to(f64);
      Tensor x = randn({3, 7, 5}, f64).requires_grad_();
      Generator gen(5);
      Tensor seed_out = uniform({3, 7, 12}, -1, 1, f64, &gen), seed_h = uniform({3, 6}, -1, 1, f64, &gen);
      auto grads = [&](bool by_layer) {
        x.zero_grad();
        layer->zero_grad();
        Tensor out, h_reverse;
        if (by_layer) {
          auto r = layer->run(x);
          out = r.output;
          h_reverse = r.h(0, 1);
        } else {
          nn::Cell& forward = layer->cell(0, 0);
          nn::Cell& backward = layer->cell(0, 1);
          auto a = nn::unroll(forward, x, forward.initial_state(3, f64));
          auto b = nn::unroll(backward, x, backward.initial_state(3, f64), {.reverse = true});
          out = concat({stack(a.outputs, 1), stack(b.outputs, 1)}, -1);
          h_reverse = b.final_state[0];
        }
        (sum(out * seed_out) + sum(h_reverse * seed_h)).backward();
        std::vector<Tensor> g{out.detach(), x.grad()};
        for (const auto& p : layer->parameters()) g.push_back(p.grad());
        return g;
      };
      const auto plain = grads(false), branched = grads(true);
      for (std::size_t i = 0; i < plain.size(); ++i) {
        INFO(name, ", ", threads, " threads, tensor ", i);
        CHECK(same_bits(plain[i], branched[i]));
      }
    }
  }
}

TEST_CASE("bidirectional layers: a 2-layer stack with lengths, float64 gradcheck and gradgradcheck") {
  Threads pool(2);
  manual_seed(4);
  nn::LSTM layer(3, 2, {.num_layers = 2, .bidirectional = true});
  layer.to(f64);
  Tensor lengths = tensor({4, 2}, i64);
  auto f = [&](const std::vector<Tensor>& in) {
    auto r = layer.run(in[0], lengths);
    return sum(r.output * r.output) + sum(r.c(0, 1));
  };
  Tensor x = input({2, 4, 3}, -1, 1, 9);
  check_gradients(f, {x});
}

TEST_CASE("bidirectional layers with checkpoint_every on two threads: gradients and the random stream as without") {
  Threads pool(2);
  auto run = [](std::int64_t every) {
    manual_seed(21);
    nn::LSTM layer(4, 5, {.bidirectional = true, .checkpoint_every = every});
    Tensor x = randn({3, 8, 4}).requires_grad_();
    sum(layer(x) * layer(x)).backward();  // two graphs through the layer
    std::vector<Tensor> out{x.grad(), randn({6})};  // the default generator after the backward
    for (const auto& p : layer.parameters()) out.push_back(p.grad());
    return out;
  };
  const auto plain = run(0), checkpointed = run(3);
  for (std::size_t i = 0; i < plain.size(); ++i) {
    INFO("tensor ", i);
    CHECK(same_bits(plain[i], checkpointed[i]));
  }
}
