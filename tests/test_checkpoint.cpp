// autograd::checkpoint and the recurrent layers' checkpoint_every: the gradients are those of the
// same computation without checkpointing, bit for bit; gradcheck and gradgradcheck through it.
#include <cmath>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

/// Every element of a and b equal (NaN never is).
bool identical(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined()) return a.defined() == b.defined();
  return a.shape() == b.shape() && a.to_vector<double>() == b.to_vector<double>();
}

}  // namespace

TEST_CASE("checkpoint: gradients of inputs and of tensors read from outside equal those without it, bit for bit") {
  for (Dtype dtype : {f32, f64}) {
    Tensor w = randn({5, 5}, dtype).requires_grad_();
    Tensor b = randn({5}, dtype).requires_grad_();
    Tensor x = randn({3, 5}, dtype).requires_grad_();
    // Reads w three times per call (two matmuls and a product), b once; called in a chain.
    auto piece = [&](const std::vector<Tensor>& in) -> std::vector<Tensor> {
      Tensor h = tanh(matmul(in[0], w) + b);
      return {matmul(h, w) * sigmoid(h) + in[0], sum(h * sum(w, {0}))};
    };
    auto run = [&](bool checkpointed) {
      Tensor h = x, extra = scalar(0.0, dtype);
      for (int k = 0; k < 4; ++k) {
        auto out = checkpointed ? autograd::checkpoint(piece, {h}) : piece({h});
        h = out[0];
        extra = extra + out[1];
      }
      w.zero_grad(), b.zero_grad(), x.zero_grad();
      (sum(h * h) + extra).backward();
      return std::vector<Tensor>{w.grad(), b.grad(), x.grad()};
    };
    const auto plain = run(false), checkpointed = run(true);
    for (std::size_t i = 0; i < plain.size(); ++i) {
      INFO("gradient ", i, " in ", dtype_name(dtype));
      CHECK(identical(plain[i], checkpointed[i]));
    }
  }
}

TEST_CASE("checkpoint: gradcheck and gradgradcheck in float64, an output returned unchanged, an unused output") {
  Tensor w = randn({4, 3}, f64).requires_grad_();
  auto piece = [&](const std::vector<Tensor>& in) -> std::vector<Tensor> {
    return {tanh(matmul(in[0], w)) * in[1], in[1], exp(in[0])};
  };
  auto f = [&](const std::vector<Tensor>& in) {
    auto out = autograd::checkpoint(piece, {in[0], in[1]});
    return sum(out[0] * out[1]) + sum(out[1]);  // out[2] unused: no gradient reaches it
  };
  Tensor x = randn({2, 4}, f64).requires_grad_(), y = randn({2, 3}, f64).requires_grad_();
  CHECK(gradcheck(f, {x, y, w}));
  CHECK(gradgradcheck(f, {x, y, w}));
  // The returned input is a handle of its own: x keeps being a leaf.
  auto out = autograd::checkpoint(piece, {x, y});
  CHECK(y.is_leaf());
  CHECK_FALSE(out[1].is_same(y));
}

TEST_CASE("checkpoint: dropout from the default generator repeats its masks; no grad; errors") {
  Tensor w = randn({6, 6}, f64).requires_grad_();
  Tensor x = randn({4, 6}, f64);
  auto piece = [&](const std::vector<Tensor>& in) -> std::vector<Tensor> {
    return {nn::dropout(matmul(in[0], w), 0.5, true)};
  };
  manual_seed(5);
  sum(piece({x})[0]).backward();
  const Tensor plain = w.grad();
  w.zero_grad();
  manual_seed(5);
  sum(autograd::checkpoint(piece, {x})[0]).backward();
  CHECK(identical(plain, w.grad()));
  {
    autograd::NoGradGuard off;
    CHECK_FALSE(autograd::checkpoint(piece, {x})[0].requires_grad());
  }
  auto out = autograd::checkpoint(piece, {x});
  w.data<double>()[0] += 1;
  w.bump_version();
  CHECK(matches(error_of([&] { sum(out[0]).backward(); }), R"(checkpoint: a tensor f64 \[6, 6\] that the function reads was modified in place)"));
  CHECK(matches(error_of([] { autograd::checkpoint({}, {}); }), "checkpoint: no function"));
}

TEST_CASE("checkpoint_every: a long sequence's train step holds a fraction of the tensor memory") {
  // Bytes of live tensor buffers (memory_stats), not time: deterministic. A many-to-one 2-layer
  // LSTM over 1024 steps keeps a graph of every step without checkpointing; with pieces of 32 it
  // keeps the first layer's outputs, the states between pieces and one piece's graph.
  auto peak_of = [](std::int64_t every) {
    manual_seed(3);
    nn::LSTM rnn(8, 32, {.num_layers = 2, .return_sequences = false, .checkpoint_every = every});
    Tensor x = randn({4, 1024, 8});
    reset_peak_memory_stats();
    const std::size_t start = memory_stats().in_use;
    sum(rnn(x)).backward();
    return memory_stats().peak - start;
  };
  const std::size_t plain = peak_of(0), checkpointed = peak_of(32);
  INFO("peak bytes: ", plain, " without, ", checkpointed, " with checkpointing");
  CHECK(checkpointed * 5 < plain);
}

TEST_CASE("checkpoint_every: recurrent layers give the same gradients, bit for bit") {
  struct Case {
    const char* name;
    std::function<std::shared_ptr<nn::Recurrent>(std::int64_t every)> make;
    bool lengths;
  };
  const std::vector<Case> cases{
      {"LSTM, 2 layers", [](std::int64_t k) { return std::make_shared<nn::LSTM>(3, 5, nn::RNNOptions{.num_layers = 2, .checkpoint_every = k}); }, false},
      {"GRU, bidirectional, lengths", [](std::int64_t k) { return std::make_shared<nn::GRU>(3, 4, nn::RNNOptions{.bidirectional = true, .checkpoint_every = k}); }, true},
      {"depth-gated LSTM, 2 layers, lengths", [](std::int64_t k) { return std::make_shared<nn::DepthGatedLSTM>(3, 4, nn::RecurrentOptions{.num_layers = 2, .checkpoint_every = k}); }, true},
      {"LSTM, 2 layers, many-to-one", [](std::int64_t k) { return std::make_shared<nn::LSTM>(3, 5, nn::RNNOptions{.num_layers = 2, .return_sequences = false, .checkpoint_every = k}); }, false},
      {"LSTM, recurrent dropout", [](std::int64_t k) { return std::make_shared<nn::LSTM>(3, 4, nn::RNNOptions{.recurrent_dropout = 0.3, .checkpoint_every = k}); }, false},
  };
  for (Dtype dtype : {f32, f64}) {
    for (const auto& c : cases) {
      // T = 75 runs the input projection in three chunks (32, 32, 11 steps); pieces of 7 or 40
      // steps end inside a chunk, 32 at its end, and 100 is one piece
      for (std::int64_t every : {1, 7, 32, 40, 100}) {
        INFO(std::string(c.name), ", ", dtype_name(dtype), ", checkpoint_every ", every);
        auto grads_of = [&](std::int64_t k) {
          manual_seed(1);
          auto layer = c.make(k);
          layer->to(dtype);
          Tensor x = randn({3, 75, 3}, dtype).requires_grad_();
          Tensor lengths = c.lengths ? tensor({75, 20, 47}, i64) : Tensor();
          nn::RecurrentResult r = layer->run(x, lengths);
          (sum(r.output * r.output) + sum(r.h())).backward();
          std::vector<Tensor> grads{x.grad()};
          for (const auto& p : layer->parameters()) grads.push_back(p.grad());
          return grads;
        };
        const auto plain = grads_of(0), checkpointed = grads_of(every);
        REQUIRE(plain.size() == checkpointed.size());
        for (std::size_t i = 0; i < plain.size(); ++i) {
          INFO("gradient ", i);
          CHECK(identical(plain[i], checkpointed[i]));
        }
      }
    }
  }
  CHECK(matches(error_of([] { nn::LSTM(2, 2, {.checkpoint_every = -1}); }), "checkpoint_every must be 0"));
}
