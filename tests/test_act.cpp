// Adaptive Computation Time: one ponder step is the wrapped cell; the batched wrapper against a
// plain loop over ponder steps, one example at a time; gradients; the one-call checker; the
// wrapper in the recurrent driver (lengths, both directions, stacking); bad arguments.
#include <cmath>
#include <limits>
#include <set>

#include <fmt/ranges.h>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

using Vec = std::vector<double>;

Tensor values(const Shape& shape, double low, double high, std::uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, low, high, f64, &gen);
}

Tensor from_values(const Vec& v, const Shape& shape) {
  xt::xarray<double> a(std::vector<std::size_t>{v.size()});
  for (std::size_t i = 0; i < v.size(); ++i) a(i) = v[i];
  return reshape(from_xarray(a), shape);
}

/// Example b of a batched tensor, keeping the batch axis: [1, ...].
Tensor example(const Tensor& t, std::int64_t b) { return slice(t, 0, b, b + 1); }

/// What one example's time step gives in the reference: the wrapped cell's new state (batch 1),
/// rho = N + R, N, and how close any halting sum came to the threshold 1 - epsilon.
struct Ponder {
  State state;
  double rho = 0;
  std::int64_t steps = 0;
  double margin = std::numeric_limits<double>::infinity();
};

/// One time step of ACT for one example, written as a plain loop: x [1, I], state the wrapped
/// cell's [1, ...] tensors. The halting unit and the weighted sums are scalar arithmetic.
Ponder ponder(ACT& act, const Tensor& x, const State& state) {
  Cell& cell = act.cell();
  Vec w;
  double b = 0;
  for (const auto& [name, t] : act.named_parameters()) {
    if (name == "halt.weight") w = t.to_vector<double>();
    if (name == "halt.bias") b = t.item();
  }
  REQUIRE(w.size() == static_cast<std::size_t>(act.hidden_size()));
  const double threshold = 1 - act.options().epsilon;
  std::vector<Vec> mean;
  for (const auto& s : state) mean.emplace_back(s.numel(), 0.0);
  Ponder out;
  State s = state;
  double total = 0;  // h^1 + ... + h^(n-1)
  for (std::int64_t n = 1;; ++n) {
    s = cell(concat({x, full({1, 1}, n == 1 ? 1.0 : 0.0, f64)}, -1), s);
    const Vec y = s[0].to_vector<double>();
    double z = b;
    for (std::size_t j = 0; j < y.size(); ++j) z += w[j] * y[j];
    const double h = 1 / (1 + std::exp(-z));
    const bool last = n == act.options().max_steps;
    if (!last) out.margin = std::min(out.margin, std::abs(total + h - threshold));
    const bool halt = last || total + h >= threshold;
    const double p = halt ? 1 - total : h;
    for (std::size_t i = 0; i < s.size(); ++i) {
      const Vec v = s[i].to_vector<double>();
      for (std::size_t j = 0; j < v.size(); ++j) mean[i][j] += p * v[j];
    }
    if (halt) {
      for (std::size_t i = 0; i < s.size(); ++i) out.state.push_back(from_values(mean[i], s[i].shape()));
      out.rho = static_cast<double>(n) + (1 - total);
      out.steps = n;
      return out;
    }
    total += h;
  }
}

/// The reference over a sequence x [B, T, I] from ACT's state `initial`, one example at a time.
struct Reference {
  std::vector<std::vector<Tensor>> outputs;  // [b][t]: [1, H]
  std::vector<State> final_state;            // [b]: ACT's state, [1, ...] tensors, the cost last
  std::multiset<std::int64_t> steps;         // N of every example and step
  double margin = std::numeric_limits<double>::infinity();
};

Reference reference(ACT& act, const Tensor& x, const State& initial) {
  const std::int64_t B = x.size(0), T = x.size(1);
  const std::size_t k = act.cell().state_count();
  Reference ref;
  for (std::int64_t b = 0; b < B; ++b) {
    State s;
    for (std::size_t i = 0; i < k; ++i) s.push_back(example(initial[i], b).detach());
    double cost = example(initial[k], b).item();
    ref.outputs.emplace_back();
    for (std::int64_t t = 0; t < T; ++t) {
      Ponder p = ponder(act, squeeze(slice(example(x, b), 1, t, t + 1), 1), s);
      s = p.state;
      cost += p.rho;
      ref.outputs.back().push_back(s[0]);
      ref.steps.insert(p.steps);
      ref.margin = std::min(ref.margin, p.margin);
    }
    s.push_back(full({1, 1}, cost, f64));
    ref.final_state.push_back(s);
  }
  return ref;
}

/// The batched wrapper's outputs, final states and ponder costs equal the reference's.
void check_against_reference(ACT& act, const Tensor& x, const State& initial) {
  const Unrolled u = unroll(act, x, initial);
  const Reference ref = reference(act, x, initial);
  CAPTURE(ref.margin);
  INFO("ponder steps: ", fmt::format("{}", fmt::join(ref.steps, " ")));
  REQUIRE(ref.margin > 1e-9);  // no halting sum within rounding of the threshold
  for (std::int64_t b = 0; b < x.size(0); ++b) {
    CAPTURE(b);
    for (std::int64_t t = 0; t < x.size(1); ++t) check_close(example(u.outputs[t], b), ref.outputs[b][t], 1e-12);
    for (std::size_t i = 0; i < u.final_state.size(); ++i) check_close(example(u.final_state[i], b), ref.final_state[b][i], 1e-12);
    check_close(example(act.ponder_cost(u.final_state), b), ref.final_state[b].back(), 1e-12);
  }
  // the case is one where examples halt after different numbers of steps, some at the limit
  CHECK(std::set<std::int64_t>(ref.steps.begin(), ref.steps.end()).size() >= 3);
  CHECK(ref.steps.count(act.options().max_steps) > 0);
  CHECK(*ref.steps.begin() < act.options().max_steps);
}

/// Scales the halting unit's weights: with larger weights, examples halt after more different
/// numbers of ponder steps.
void spread_halting(ACT& act, double scale) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, t] : act.named_parameters())
    if (name == "halt.weight") t.copy_(t * scale);
}

std::shared_ptr<ACT> act_gru(std::int64_t input, std::int64_t hidden, ACTOptions options) {
  return std::make_shared<ACT>(std::make_shared<GRUCell>(input + 1, hidden), options);
}

}  // namespace

TEST_CASE("ACT with max_steps 1 is the wrapped cell fed [x, 1], and rho = 2 per step") {
  manual_seed(1);
  const std::int64_t B = 3, T = 4, I = 2, H = 5;
  auto lstm = std::make_shared<LSTMCell>(I + 1, H);
  ACT act(lstm, {.max_steps = 1});
  CHECK(act.input_size() == I);
  CHECK(act.hidden_size() == H);
  CHECK(act.state_count() == 3);
  for (Dtype dtype : {f32, f64}) {
    CAPTURE(dtype_name(dtype));
    act.to(dtype);
    Tensor x = values({B, T, I}, -1, 1, 2).to(dtype);
    State inner{values({B, H}, -1, 1, 3).to(dtype), values({B, H}, -1, 1, 4).to(dtype)};
    State initial = inner;
    initial.push_back(full({B, 1}, 0.5, dtype));
    const Unrolled got = unroll(act, x, initial);
    // The wrapped cell called step by step on [x_t, 1], as ACT calls it (unroll would project the
    // inputs of 32 steps in one product, whose kernel may round differently from a step's).
    State want = inner;
    std::vector<Tensor> want_outputs;
    for (std::int64_t t = 0; t < T; ++t) {
      want = (*lstm)(concat({squeeze(slice(x, 1, t, t + 1), 1), ones({B, 1}, dtype)}, -1), want);
      want_outputs.push_back(want[0]);
    }
    REQUIRE(got.final_state.size() == 3);
    for (std::int64_t t = 0; t < T; ++t) check_close(got.outputs[t], want_outputs[t], 0);
    check_close(got.final_state[0], want[0], 0);
    check_close(got.final_state[1], want[1], 0);
    CHECK(got.final_state[0].dtype() == dtype);
    check_values(act.ponder_cost(got.final_state), {B, 1}, Vec(B, 0.5 + 2 * T));
  }
}

TEST_CASE("ACT equals a plain loop over ponder steps, one example at a time (LSTM and NTM inside)") {
  manual_seed(11);
  const std::int64_t B = 6, T = 3, I = 3, H = 4;
  SUBCASE("LSTM: a random initial state") {
    ACT act(std::make_shared<LSTMCell>(I + 1, H), {.max_steps = 6, .halting_bias = -1.5});
    act.to(f64);
    spread_halting(act, 6);
    Tensor x = values({B, T, I}, -2, 2, 12);
    State initial{values({B, H}, -1, 1, 13), values({B, H}, -1, 1, 14), values({B, 1}, 0, 3, 15)};
    check_against_reference(act, x, initial);
  }
  SUBCASE("NTM: state tensors of other shapes ([B, N, W] memory)") {
    const NTMOptions o{.memory_size = 5, .word_size = 2, .read_heads = 1, .controller_size = 4, .shift_range = 1};
    ACT act(std::make_shared<NTMCell>(I + 1, H, o), {.max_steps = 5, .epsilon = 0.05, .halting_bias = -0.5});
    act.to(f64);
    for (auto& [name, t] : act.named_parameters())  // outputs around 0: their halting units differ more
      if (name == "cell.output.bias") t.detach().copy_(zeros_like(t));
    spread_halting(act, 30);
    Tensor x = values({B, T, I}, -2, 2, 16);
    check_against_reference(act, x, act.initial_state(B, f64));
  }
}

TEST_CASE("ACT in float32 agrees with float64 on the same weights") {
  manual_seed(21);
  const std::int64_t B = 6, T = 3, I = 3, H = 4;
  auto narrow = act_gru(I, H, {.max_steps = 6, .halting_bias = -1.5});
  auto wide = act_gru(I, H, {.max_steps = 6, .halting_bias = -1.5});
  wide->to(f64);
  wide->load_state_dict(narrow->state_dict());
  Tensor x = values({B, T, I}, -2, 2, 22);
  const Reference ref = reference(*wide, x, wide->initial_state(B, f64));
  REQUIRE(ref.margin > 1e-3);  // float32 rounding cannot move a halting decision
  const Unrolled a = unroll(*narrow, x.to(f32), narrow->initial_state(B, f32));
  const Unrolled b = unroll(*wide, x, wide->initial_state(B, f64));
  CHECK(a.final_state[0].dtype() == f32);
  CHECK(max_abs_diff(a.final_state[0].to(f64), b.final_state[0]) < 1e-5);
  CHECK(max_abs_diff(narrow->ponder_cost(a.final_state).to(f64), wide->ponder_cost(b.final_state)) < 1e-5);
}

TEST_CASE("ACT gradients: gradcheck and gradgradcheck through three steps w.r.t. input, state and parameters") {
  manual_seed(31);
  const std::int64_t B = 4, T = 3, I = 2, H = 3;
  auto act = act_gru(I, H, {.max_steps = 5, .halting_bias = -1.0});
  act->to(f64);
  spread_halting(*act, 6);
  Tensor x = input({B, T, I}, -2, 2, 32), h0 = input({B, H}, -1, 1, 33), cost0 = input({B, 1}, 0, 1, 34);
  // halting sums stay away from the threshold, where N jumps
  const Reference ref = reference(*act, x.detach(), {h0.detach(), cost0.detach()});
  CAPTURE(ref.margin);
  REQUIRE(ref.margin > 1e-3);
  REQUIRE(std::set<std::int64_t>(ref.steps.begin(), ref.steps.end()).size() >= 2);
  std::vector<Tensor> inputs{x, h0, cost0};
  for (const auto& p : act->parameters()) inputs.push_back(p);
  check_gradients(
      [&](const Inputs& in) {
        const Unrolled u = unroll(*act, in[0], {in[1], in[2]});
        return concat({flatten(stack(u.outputs, 1)), flatten(u.final_state[0]), flatten(act->ponder_cost(u.final_state))}, 0);
      },
      inputs);
  // the ponder cost alone: N is constant, so d rho / d(everything) flows through R
  check_gradients([&](const Inputs& in) { return act->ponder_cost(unroll(*act, in[0], {in[1], in[2]}).final_state); },
                  inputs);
}

TEST_CASE("ACT passes the one-call check alone and in a 2-layer bidirectional Recurrent") {
  std::string report;
  ACT alone(std::make_shared<LSTMCell>(4, 3), {.max_steps = 4, .halting_bias = -0.5});
  CHECK_NOTHROW(report = check_cell(alone));
  CHECK(matches(report, R"(^ACT: gradcheck and gradgradcheck over 3 steps \(x \[2, 3, 3\], 3 state tensors, 6 parameters\))"));
  auto factory = [](std::int64_t, std::int64_t in) {
    return std::make_shared<ACT>(std::make_shared<GRUCell>(in + 1, 3), ACTOptions{.max_steps = 4, .halting_bias = -0.5});
  };
  CHECK_NOTHROW(report = check_cell(factory));
  CHECK(matches(report, "2-layer bidirectional layer with lengths and dropout: .* passed"));
}

TEST_CASE("ACT in a Recurrent: names, lengths (padding adds no cost), both directions, stacking") {
  manual_seed(41);
  const std::int64_t T = 5, I = 3, H = 4;
  auto factory = [](std::int64_t, std::int64_t in) { return act_gru(in, H, {.max_steps = 6, .halting_bias = -1.0}); };
  Recurrent layer(factory, I, {.bidirectional = true});
  std::vector<std::string> names;
  for (const auto& [name, t] : layer.named_parameters()) names.push_back(name);
  CHECK(names.size() == 12);
  CHECK(names[0] == "cell.weight_ih_l0");
  CHECK(names[4] == "halt.weight_l0");
  CHECK(names[5] == "halt.bias_l0");
  CHECK(names[11] == "halt.bias_l0_reverse");
  CHECK(layer.cell(0).input_size() == I);
  CHECK(static_cast<ACT&>(layer.cell(0)).cell().input_size() == I + 1);
  CHECK(static_cast<ACT&>(layer.cell(0)).cell().is_training());
  layer.eval();
  CHECK_FALSE(static_cast<ACT&>(layer.cell(0)).cell().is_training());
  layer.to(f64);
  CHECK(static_cast<ACT&>(layer.cell(0, 1)).cell().parameters()[0].dtype() == f64);
  check_values(static_cast<ACT&>(layer.cell(0)).named_parameters().back().second, {1}, {-1.0});

  Tensor x = values({3, T, I}, -2, 2, 42), lengths = tensor({5, 2, 0}, i64);
  const RecurrentResult out = layer.run(x, lengths);
  REQUIRE(out.output.shape() == Shape{3, T, 2 * H});
  for (std::int64_t d = 0; d < 2; ++d) {
    CAPTURE(d);
    auto& cell = static_cast<ACT&>(layer.cell(0, d));
    const State& final_state = out.final_state(0, d);
    REQUIRE(final_state.size() == 2);
    // sequence 1 is x[1, :2]: its final state and ponder cost equal running those two steps alone
    const Unrolled alone = unroll(cell, slice(example(x, 1), 1, 0, 2), cell.initial_state(1, f64), {.reverse = d == 1});
    for (std::size_t i = 0; i < 2; ++i) check_close(example(final_state[i], 1), alone.final_state[i], 1e-14);
    CHECK(example(cell.ponder_cost(final_state), 1).item() >= 4);  // two steps, rho >= 2 each
    // length 0: no step ran, no cost
    check_values(example(cell.ponder_cost(final_state), 2), {1, 1}, {0});
    // the full sequence: each step adds its own rho = N + R, in [2, max_steps + 1] (N = 1 has R = 1)
    const Unrolled full = unroll(cell, example(x, 0), cell.initial_state(1, f64), {.reverse = d == 1});
    check_close(example(final_state[1], 0), full.final_state[1], 1e-14);
    double before = 0;
    for (std::int64_t k = 0; k < T; ++k) {
      const double after = cell.ponder_cost(full.states[d == 0 ? k : T - 1 - k]).item();
      CHECK(after - before >= 2);
      CHECK(after - before <= cell.options().max_steps + 1);
      before = after;
    }
  }
  check_values(slice(example(out.output, 1), 1, 2, T), {1, T - 2, 2 * H}, Vec((T - 2) * 2 * H, 0.0));

  // stacked: the upper layer wraps a cell of the lower layer's width (2H) plus the flag
  Recurrent stacked(factory, I, {.num_layers = 2, .bidirectional = true});
  CHECK(static_cast<ACT&>(stacked.cell(1)).cell().input_size() == 2 * H + 1);
  const RecurrentResult two = stacked.run(x.to(f32), lengths);
  CHECK(two.output.shape() == Shape{3, T, 2 * H});
  CHECK(two.final_state(1, 1).back().shape() == Shape{3, 1});
}

TEST_CASE("ACT rejects bad arguments, naming itself") {
  auto gru = [] { return std::make_shared<GRUCell>(3, 4); };
  CHECK(matches(error_of([&] { ACT(gru(), {.max_steps = 0}); }), "^ACT: max_steps must be at least 1, got 0"));
  CHECK(matches(error_of([&] { ACT(gru(), {.max_steps = -3}); }), "^ACT: max_steps .* got -3"));
  for (double eps : {0.0, 1.0, -0.5, 1.5, std::nan("")}) {
    CAPTURE(eps);
    CHECK(matches(error_of([&] { ACT(gru(), {.epsilon = eps}); }), R"(^ACT: epsilon must be in \(0, 1\), got)"));
  }
  CHECK(matches(error_of([&] { ACT(gru(), {.halting_bias = INFINITY}); }), "^ACT: halting_bias must be finite"));
  CHECK(matches(error_of([] { ACT(nullptr); }), "^ACT: needs a cell"));
  CHECK(matches(error_of([] { ACT(std::make_shared<GRUCell>(1, 4)); }),
                "^ACT: the wrapped GRUCell takes the input and a first-step flag, so its input_size must be at least 2, got 1"));
  ACT act(gru());
  State state = act.initial_state(2, f32);
  CHECK(matches(error_of([&] { act.step(zeros({2, 3}), state); }), R"(^ACT: a step takes the projected input \[B, 2\].*got input \[2, 3\])"));
  CHECK(matches(error_of([&] { act.step(zeros({2, 2}), {state[0]}); }), R"(^ACT: .*\[B, 4\], \[B, 1\].*got input \[2, 2\] and state \[\[2, 4\]\])"));
  CHECK(matches(error_of([&] { act.ponder_cost({state[0]}); }), R"(^ACT: ponder_cost reads an ACT state of 2 tensors)"));
}
