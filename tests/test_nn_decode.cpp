// Teacher forcing, free-running generation, and truncated BPTT windows (the 10 000-step run is in
// test_reliability.cpp).
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

/// A tiny decoder: embedding -> GRU cell -> linear over a vocabulary of 5, recording what it was fed.
struct TinyDecoder {
  Embedding embed{5, 3};
  GRUCell cell{3, 4};
  Linear out{4, 5};
  std::vector<std::vector<std::int64_t>> fed;
  DecoderStep step() {
    return [this](const Tensor& tokens, const State& state) {
      fed.push_back(tokens.to_vector<std::int64_t>());
      State next = cell.step(cell.project_input(embed(tokens)), state);
      return std::pair{out(next[0]), next};
    };
  }
};

}  // namespace

TEST_CASE("teacher forcing feeds the true previous tokens") {
  manual_seed(1);
  TinyDecoder d;
  Tensor targets = tensor({{2, 4, 1}, {3, 3, 0}}, i64);
  Tensor logits = teacher_forcing(d.step(), tensor({1, 1}, i64), targets, d.cell.initial_state(2, f32));
  CHECK(logits.shape() == Shape{2, 3, 5});
  CHECK(d.fed == std::vector<std::vector<std::int64_t>>{{1, 1}, {2, 3}, {4, 3}});
  Tensor loss = cross_entropy(logits, targets);
  loss.backward();
  CHECK(d.embed.weight.grad().defined());
  CHECK(matches(error_of([&] { teacher_forcing(d.step(), tensor({1}, i64), targets, {}); }),
                R"(teacher_forcing: 1 start tokens for targets \[2, 3\])"));
}

TEST_CASE("generation: warm-start context first, then its own greedy choices") {
  manual_seed(2);
  TinyDecoder d;
  Tensor context = tensor({{0, 2, 4}}, i64);
  Tensor out = generate(d.step(), context, d.cell.initial_state(1, f32), 4);
  CHECK(out.shape() == Shape{1, 4});
  CHECK(out.grad_fn() == nullptr);
  auto generated = out.to_vector<std::int64_t>();
  REQUIRE(d.fed.size() == 6);  // 3 context tokens, then 3 of its own (the 4th is never fed)
  CHECK(d.fed[0][0] == 0);
  CHECK(d.fed[2][0] == 4);
  for (int t = 0; t < 3; ++t) CHECK(d.fed[3 + t][0] == generated[t]);
  // greedy = argmax of the logits after the context
  TinyDecoder again = std::move(d);
  again.fed.clear();
  Tensor logits;
  State s = again.cell.initial_state(1, f32);
  for (auto token : {0, 2, 4}) std::tie(logits, s) = again.step()(tensor({static_cast<double>(token)}, i64), s);
  CHECK(max(logits, 1).indices.item<std::int64_t>() == generated[0]);
}

TEST_CASE("sampling with a temperature follows softmax(logits / T) and is seeded") {
  Tensor logits = log(tensor({{0.2, 0.8}}, f64)).detach();
  Generator gen(3);
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) ones += choose_tokens(logits, {.temperature = 1.0, .generator = &gen}).item<int>();
  CHECK(static_cast<double>(ones) / n == doctest::Approx(0.8).epsilon(0.02));
  // temperature 0.5 sharpens: p(1) = 0.8^2 / (0.8^2 + 0.2^2)
  ones = 0;
  for (int i = 0; i < n; ++i) ones += choose_tokens(logits, {.temperature = 0.5, .generator = &gen}).item<int>();
  CHECK(static_cast<double>(ones) / n == doctest::Approx(0.64 / 0.68).epsilon(0.02));
  Generator a(9), b(9);
  Tensor wide = randn({4, 7}, f64);
  CHECK(choose_tokens(wide, {.temperature = 1.0, .generator = &a}).to_vector<std::int64_t>() ==
        choose_tokens(wide, {.temperature = 1.0, .generator = &b}).to_vector<std::int64_t>());
  CHECK(matches(error_of([&] { choose_tokens(wide, {.temperature = -1}); }), R"(temperature must be >= 0)"));
}

TEST_CASE("BPTT(k1, k2) windows: every step's loss counted once, reaching back k2 steps") {
  TruncatedBPTT plan(3, 6);
  auto w = plan.windows(10);
  REQUIRE(w.size() == 4);
  CHECK(w[0].begin == 0);
  CHECK(w[0].loss_begin == 0);
  CHECK(w[0].end == 3);
  CHECK(w[1].begin == 0);
  CHECK(w[1].end == 6);
  CHECK(w[2].begin == 3);
  CHECK(w[2].loss_begin == 6);
  CHECK(w[3].begin == 6);
  CHECK(w[3].loss_begin == 9);
  CHECK(w[3].end == 10);
  CHECK(matches(error_of([] { TruncatedBPTT(3, 5); }), R"(k2 a multiple of k1)"));
  CHECK(matches(error_of([&] { plan.state_at(3); }), R"(no state was kept at step 3)"));
}
