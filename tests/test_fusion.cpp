// Fused elementwise backward (docs/fusion.md): chains of elementwise ops share one FusedNode, and
// give the same gradients, bit for bit, as one node per op.
#include <cstring>
#include <functional>
#include <limits>
#include <thread>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Function = std::function<Tensor(const Inputs&)>;

/// The leaves' gradients of sum(f(leaves) * seed), with fusion on or off; fresh leaves each time.
std::vector<Tensor> gradients(const Function& f, const Inputs& leaves, bool fused) {
  autograd::FusionGuard fusion(fused);
  Inputs xs;
  for (const auto& l : leaves) xs.push_back(l.detach().clone().requires_grad_(l.requires_grad()));
  Tensor y = f(xs);
  Generator gen(7);
  y.backward(uniform(y.shape(), -1, 1, y.dtype(), &gen));
  std::vector<Tensor> grads;
  for (const auto& x : xs) grads.push_back(x.grad());
  return grads;
}

void check_fused_equals_unfused(const Function& f, const Inputs& leaves) {
  const auto fused = gradients(f, leaves, true), unfused = gradients(f, leaves, false);
  for (std::size_t i = 0; i < fused.size(); ++i) {
    INFO("gradient of input ", i, " (shape ", to_string(leaves[i].shape()), ")");
    CHECK(same_bits(fused[i], unfused[i]));
  }
}

Tensor tensor_of(const std::vector<double>& v) {
  Tensor t = empty({static_cast<std::int64_t>(v.size())}, f64);
  std::copy(v.begin(), v.end(), t.data<double>());
  return t;
}

/// Values in [-2, 2) with edge values mixed in: zeros of both signs, subnormals, infinities, NaN.
Tensor edgy(const Shape& shape, Dtype dtype, std::uint64_t seed) {
  Generator gen(seed);
  Tensor t = uniform(shape, -2, 2, f64, &gen);
  auto v = t.to_vector<double>();
  const double specials[] = {0.0, -0.0, 1e-310, -1e-40, std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN(), 1e30};
  for (std::size_t i = 0; i < v.size(); i += 5) v[i] = specials[(i / 5) % std::size(specials)];
  return reshape(tensor_of(v), shape).to(dtype).requires_grad_();
}

using Unary = Tensor (*)(const Tensor&);
using Binary = Tensor (*)(const Tensor&, const Tensor&);
const std::vector<std::pair<const char*, Unary>> kUnary{{"neg", neg},         {"exp", exp},   {"log", log},
                                                        {"tanh", tanh},       {"sigmoid", sigmoid},
                                                        {"relu", relu},       {"sqrt", sqrt}};
const std::vector<std::pair<const char*, Binary>> kBinary{{"add", add}, {"sub", sub}, {"mul", mul}, {"div", div}};

}  // namespace

TEST_CASE("fusion: an LSTM update records one node for its nine elementwise ops") {
  Tensor gates = input({3, 32}), c = input({3, 8}, -1, 1, 2);
  auto parts = chunk(gates, 4, -1);
  const auto before = autograd::live_nodes();
  Tensor i = sigmoid(parts[0]), f = sigmoid(parts[1]), g = tanh(parts[2]), o = sigmoid(parts[3]);
  Tensor c_next = f * c + i * g;
  Tensor h = o * tanh(c_next);
  CHECK(autograd::live_nodes() - before == 2);  // the fused node and the accumulator of leaf c
  CHECK(h.grad_fn() == i.grad_fn());
  CHECK(c_next.grad_fn() == i.grad_fn());
  // each result still names its own op
  CHECK(matches(to_string(h), "grad_fn=<mul>"));
  CHECK(matches(to_string(c_next), "grad_fn=<add>"));
  CHECK(matches(to_string(g), "grad_fn=<tanh>"));
  CHECK(std::string(h.grad_fn()->name()) == "sigmoid");  // a node is named after its first op
  // with fusion off, one node per op
  autograd::FusionGuard off(false);
  Tensor h2 = o * tanh(c_next);
  CHECK(h2.grad_fn() != c_next.grad_fn());
  CHECK(std::string(h2.grad_fn()->name()) == "mul");
}

TEST_CASE("fusion: every op and pair of ops gives the gradients of one node per op, bit for bit") {
  for (Dtype dtype : {f32, f64}) {
    // (fewer than 16 elements, zero-size included, give each op a node of its own)
    for (const Shape& shape : {Shape{7, 13}, Shape{1, 17}, Shape{16}, Shape{300, 3}}) {
      INFO(dtype_name(dtype), " ", to_string(shape));
      const Tensor x = edgy(shape, dtype, 1), y = edgy(shape, dtype, 2);
      for (const auto& [name, u] : kUnary) {
        INFO(std::string(name));
        // u(x) read twice, x read three times, by ops inside and outside the chain's start
        check_fused_equals_unfused([u = u](const Inputs& v) { return u(v[0]) * v[0] + u(v[0]) - v[0]; }, {x});
        for (const auto& [bname, b] : kBinary) {
          INFO(std::string(bname));
          check_fused_equals_unfused([u = u, b = b](const Inputs& v) { return b(u(v[0]), v[1]) * u(v[1]); }, {x, y});
        }
      }
      for (const auto& [name1, b1] : kBinary)
        for (const auto& [name2, b2] : kBinary) {
          INFO(std::string(name1), " then ", std::string(name2));
          check_fused_equals_unfused([b1 = b1, b2 = b2](const Inputs& v) { return b2(b1(v[0], v[1]), b1(v[1], v[0])); },
                                     {x, y});
          // x * x: one tensor as both operands
          check_fused_equals_unfused([b1 = b1, b2 = b2](const Inputs& v) { return b2(b1(v[0], v[0]), v[0]); }, {x});
        }
    }
  }
}

TEST_CASE("fusion: broadcasting operands, constants and operands that need no gradient") {
  for (Dtype dtype : {f32, f64}) {
    INFO(dtype_name(dtype));
    const Tensor x = edgy({6, 5}, dtype, 3), row = edgy({5}, dtype, 4), column = edgy({6, 1}, dtype, 5);
    const Tensor one = edgy({}, dtype, 6), fixed = edgy({6, 5}, dtype, 7).detach();
    for (const auto& [name, b] : kBinary) {
      INFO(std::string(name));
      check_fused_equals_unfused([b = b](const Inputs& v) { return b(sigmoid(v[0]), v[1]) * tanh(v[0]); }, {x, row});
      check_fused_equals_unfused([b = b](const Inputs& v) { return b(v[1], exp(v[0])) + v[1]; }, {x, column});
      check_fused_equals_unfused([b = b](const Inputs& v) { return b(tanh(v[0]), v[1]) - v[1] * v[0]; }, {x, one});
      check_fused_equals_unfused([b = b](const Inputs& v) { return b(1.5 - v[0], v[1]) / 3.0; }, {x, fixed});
    }
  }
}

TEST_CASE("fusion: gradcheck and gradgradcheck through fused chains") {
  Tensor x = input_away_from_zero({3, 8}), b = input({8}, -1, 1, 2), c = input({3, 1}, 0.5, 1.5, 3);
  check_gradients([](const Inputs& v) { return sigmoid(v[0] + v[1]) * tanh(v[2]) + relu(v[0]) / (2.0 + exp(v[2])); },
                  {x, b, c});
  check_gradients([](const Inputs& v) { return sqrt(v[2]) * log(v[2] + v[0] * v[0]) - neg(v[1]) * v[0]; }, {x, b, c});
  // second order, fused against unfused: the same bits
  auto second = [&](bool fused) {
    autograd::FusionGuard fusion(fused);
    Tensor xx = x.detach().clone().requires_grad_();
    Tensor y = sum(sigmoid(xx) * tanh(xx * xx) + exp(neg(xx)));
    Tensor gx = autograd::grad({y}, {xx}, {}, true)[0];
    return autograd::grad({sum(gx * gx)}, {xx})[0];
  };
  CHECK(same_bits(second(true), second(false)));
}

TEST_CASE("fusion: chains longer than one node holds, and a value used after the chain moved on") {
  const Tensor x = edgy({4, 9}, f64, 8), y = edgy({4, 9}, f64, 9);
  check_fused_equals_unfused(
      [](const Inputs& v) {
        Tensor h = v[0];
        for (int i = 0; i < 200; ++i) h = tanh(h * v[1] + 0.5) - 0.25 * h;
        return h;
      },
      {x, y});
  // a result of an earlier node read again after other nodes were made
  check_fused_equals_unfused(
      [](const Inputs& v) {
        Tensor a = sigmoid(v[0]);
        Tensor m = matmul(v[1], transpose(a, 0, 1));  // another node: the chain closes
        return a * sum(m) + tanh(a);
      },
      {x, y});
}

TEST_CASE("fusion: grad() of a tensor that the chain also reads inside") {
  for (bool fused : {true, false}) {
    autograd::FusionGuard fusion(fused);
    Tensor x = input({20});
    Tensor a = tanh(x);
    Tensor b = a * a + a;  // a is read by two ops of the same node
    const auto g = autograd::grad({sum(b)}, {a, x});
    check_close(g[0], (2.0 * a + 1.0).detach(), 1e-15);
    check_close(g[1], ((2.0 * a + 1.0) * (1.0 - a * a)).detach(), 1e-15);
  }
}

TEST_CASE("fusion: a saved value modified in place is refused, naming the op that saved it") {
  Tensor x = input({4, 4});
  Tensor y = sigmoid(x);
  Tensor z = y * 2.0 + 1.0;  // same node as y
  CHECK(z.grad_fn() == y.grad_fn());
  y.detach().copy_(full({4, 4}, 0.5, f64));
  CHECK(matches(error_of([&] { sum(z).backward(); }), "inplace operation: the output .*'sigmoid'"));

  Tensor w = full({4, 4}, 4.0, f64);
  Tensor u = tanh(x) * w;  // mul saves w
  w.copy_(zeros({4, 4}, f64));
  CHECK(matches(error_of([&] { sum(u).backward(); }), "inplace operation: the input .*'mul' saved is at version 1"));

  // a value no derivative reads may change
  Tensor v = full({4, 4}, 1.0, f64);
  Tensor s = sigmoid(x) + v;
  v.copy_(zeros({4, 4}, f64));
  CHECK_NOTHROW(sum(s).backward());
}

TEST_CASE("fusion: retain_graph, ops added after a backward, create_graph and anomaly mode") {
  for (bool fused : {true, false}) {
    autograd::FusionGuard fusion(fused);
    Tensor x = input({4, 4});
    Tensor y = sigmoid(x);
    sum(y).backward({}, /*retain_graph=*/true);
    Tensor first = x.grad().detach().clone();
    x.zero_grad();
    Tensor z = y * 3.0;  // may join y's node, already run once
    sum(z).backward();
    check_close(x.grad(), (3.0 * first).detach(), 1e-15);
  }
  {
    autograd::AnomalyModeGuard anomaly;  // names the first op whose backward yields NaN: one node per op
    Tensor x = input({4, 4});
    Tensor a = exp(x), b = a * 2.0;
    CHECK(a.grad_fn() != b.grad_fn());
  }
}

TEST_CASE("fusion: threads record chains of their own at the same time") {
  const Tensor x = edgy({8, 16}, f32, 10);
  const Function f = [](const Inputs& v) {
    Tensor h = v[0];
    for (int i = 0; i < 30; ++i) h = sigmoid(h) * tanh(v[0] - h);
    return h;
  };
  const auto expected = gradients(f, {x}, false);
  std::vector<std::vector<Tensor>> got(4);
  std::vector<std::thread> threads;
  for (auto& g : got) threads.emplace_back([&] { g = gradients(f, {x}, true); });
  for (auto& t : threads) t.join();
  for (const auto& g : got) CHECK(same_bits(g[0], expected[0]));
}

TEST_CASE("fusion: every shipped cell gives the same gradients fused and unfused, bit for bit") {
  using namespace xgrad::nn;
  const std::vector<std::pair<const char*, CellFactory>> cells{
      {"SimpleRNN", [](std::int64_t, std::int64_t in) { return std::make_shared<SimpleRNNCell>(in, 5); }},
      {"GRU", [](std::int64_t, std::int64_t in) { return std::make_shared<GRUCell>(in, 5); }},
      {"GRU reset before", [](std::int64_t, std::int64_t in) { return std::make_shared<GRUResetBeforeCell>(in, 5); }},
      {"MGU", [](std::int64_t, std::int64_t in) { return std::make_shared<MGUCell>(in, 5); }},
      {"LSTM", [](std::int64_t, std::int64_t in) { return std::make_shared<LSTMCell>(in, 5); }},
      {"peephole LSTM", [](std::int64_t, std::int64_t in) { return std::make_shared<PeepholeLSTMCell>(in, 5); }},
      {"coupled LSTM", [](std::int64_t, std::int64_t in) { return std::make_shared<CoupledLSTMCell>(in, 5); }},
      {"Gen1 LSTM", [](std::int64_t, std::int64_t in) { return std::make_shared<Gen1LSTMCell>(in, 5); }},
      {"depth-gated LSTM", [](std::int64_t, std::int64_t in) { return std::make_shared<DepthGatedLSTMCell>(in, 5); }},
  };
  for (Dtype dtype : {f32, f64}) {
    for (const auto& [name, make] : cells) {
      INFO(std::string(name), " ", dtype_name(dtype));
      auto grads_of = [&, make = make](bool fused) {
        autograd::FusionGuard fusion(fused);
        manual_seed(3);
        Recurrent layer(make, 3, {.num_layers = 2, .bidirectional = true});
        layer.to(dtype);
        Tensor x = randn({4, 9, 3}, dtype).requires_grad_();
        RecurrentResult r = layer.run(x, tensor({9, 4, 7, 1}, i64));
        (sum(r.output * r.output) + sum(tanh(r.h()))).backward();
        std::vector<Tensor> grads{x.grad()};
        for (const auto& p : layer.parameters()) grads.push_back(p.grad());
        return grads;
      };
      const auto fused = grads_of(true), unfused = grads_of(false);
      REQUIRE(fused.size() == unfused.size());
      for (std::size_t i = 0; i < fused.size(); ++i) CHECK(same_bits(fused[i], unfused[i]));
    }
  }
}

TEST_CASE("fusion: every fusable op joins a chain from 16 elements, and none below") {
  for (const Shape& shape : {Shape{16}, Shape{3, 5}}) {
    const bool joins = numel(shape) >= 16;
    Tensor x = input(shape), y = input(shape, -1, 1, 2);
    for (const auto& [name, u] : kUnary) {
      INFO(std::string(name), " ", to_string(shape));
      Tensor a = u(x);
      CHECK((a.grad_fn() == (a * y).grad_fn()) == joins);
    }
    for (const auto& [name, b] : kBinary) {
      INFO(std::string(name), " ", to_string(shape));
      Tensor a = tanh(x);
      CHECK((b(a, y).grad_fn() == a.grad_fn()) == joins);
      CHECK((b(y, 2.0 * a).grad_fn() == a.grad_fn()) == joins);
    }
  }
}
