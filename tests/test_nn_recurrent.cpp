// Cells and the recurrent driver: every cell through the one-call checker, then the driver's
// semantics (masking, directions, stacking, state) against hand-unrolled references.
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

/// Runs `cell` step by step by hand over x [B, T, I] (no driver), returning the final state.
State by_hand(Cell& cell, const Tensor& x, State state, bool reverse = false) {
  Tensor projected = cell.project_input(x);
  const std::int64_t T = x.shape()[1];
  for (std::int64_t k = 0; k < T; ++k) {
    std::int64_t t = reverse ? T - 1 - k : k;
    state = cell.step(squeeze(slice(projected, 1, t, t + 1), 1), state);
  }
  return state;
}

Tensor sequence(std::int64_t B, std::int64_t T, std::int64_t I, std::uint64_t seed = 5) {
  Generator g(seed);
  return uniform({B, T, I}, -1, 1, f64, &g);
}

/// The rows [begin, end) of the batch, and the steps [t0, t1) of the time axis.
Tensor part(const Tensor& x, std::int64_t b, std::int64_t t0, std::int64_t t1) {
  return slice(slice(x, 0, b, b + 1), 1, t0, t1);
}

}  // namespace

TEST_CASE("every shipped cell passes the one-call check (float64 gradcheck and gradgradcheck)") {
  std::vector<std::shared_ptr<Cell>> cells{
      std::make_shared<SimpleRNNCell>(3, 4),
      std::make_shared<SimpleRNNCell>(3, 4, Nonlinearity::relu),
      std::make_shared<GRUCell>(3, 4),
      std::make_shared<GRUResetBeforeCell>(3, 4),
      std::make_shared<LSTMCell>(3, 4),
      std::make_shared<PeepholeLSTMCell>(3, 4),
      std::make_shared<CoupledLSTMCell>(3, 4),
      std::make_shared<Gen1LSTMCell>(3, 4),
      std::make_shared<DepthGatedLSTMCell>(3, 4),
      std::make_shared<LSTMCell>(3, 4, false),
      std::make_shared<GRUCell>(1, 1),
  };
  for (auto& cell : cells) {
    INFO(cell->type_name());
    std::string report;
    CHECK_NOTHROW(report = check_cell(*cell));
    CHECK(matches(report, "gradcheck and gradgradcheck over 3 steps"));
  }
}

TEST_CASE("the checker catches a cell whose gradient is wrong") {
  // a cell that detaches its recurrent input: the forward is fine, the gradient is not
  struct Broken : Cell {
    Broken() : Cell(2, 3) { register_gate_weights(1, 1, true); }
    Tensor project_input(const Tensor& x) override { return input_gates(x); }
    State step(const Tensor& x, const State& s) override { return {tanh(x + hidden_gates(s[0].detach()))}; }
  } broken;
  CHECK(matches(error_of([&] { check_cell(broken); }), R"(check Cell: first derivatives: gradcheck)"));
}

TEST_CASE("PyTorch's parameter names and shapes on RNN, GRU and LSTM") {
  LSTM lstm(5, 3, {.num_layers = 2, .bidirectional = true});
  std::vector<std::string> names;
  for (const auto& [name, p] : lstm.named_parameters()) names.push_back(name);
  std::vector<std::string> expected;
  for (std::string layer : {"_l0", "_l1"})
    for (std::string dir : {"", "_reverse"})
      for (std::string w : {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}) expected.push_back(w + layer + dir);
  CHECK(names == expected);
  auto params = lstm.named_parameters();
  CHECK(params[0].second.shape() == Shape{12, 5});
  CHECK(params[8].second.shape() == Shape{12, 6});  // layer 1 reads both directions
  GRU gru(4, 2);
  CHECK(gru.named_parameters()[0].second.shape() == Shape{6, 4});
  RNN rnn(4, 2, {.bias = false});
  CHECK(rnn.named_parameters().size() == 2);
  CHECK(rnn.type_name() == "RNN");
}

TEST_CASE("the driver equals a hand-written loop; return_sequences and final states") {
  manual_seed(1);
  auto cell = std::make_shared<GRUCell>(3, 4);
  cell->to(f64);
  Tensor x = sequence(2, 5, 3);
  Recurrent layer([&](std::int64_t, std::int64_t) { return cell; }, 3);
  RecurrentResult r = layer.run(x);
  CHECK(r.output.shape() == Shape{2, 5, 4});
  State want = by_hand(*cell, x, cell->initial_state(2, f64));
  check_close(r.states[0][0], want[0]);
  check_close(squeeze(slice(r.output, 1, 4, 5), 1), want[0]);
  // a non-zero initial state
  State start{uniform({2, 4}, -1, 1, f64)};
  check_close(layer.run(x, {}, {start}).states[0][0], by_hand(*cell, x, start)[0]);
  // the last output only
  Recurrent last([&](std::int64_t, std::int64_t) { return cell; }, 3, {.return_sequences = false});
  check_close(last.run(x).output, want[0]);
}

TEST_CASE("masking: padded steps carry the state and output zeros, post and pre, both directions") {
  manual_seed(2);
  auto cell = std::make_shared<LSTMCell>(3, 4);
  cell->to(f64);
  const std::int64_t T = 5;
  Tensor x = sequence(3, T, 3);
  Tensor lengths = tensor({5, 2, 0}, i64);
  for (bool reverse : {false, true}) {
    INFO("reverse ", reverse);
    UnrollOptions post{reverse, lengths, PadSide::post, {}};
    Unrolled u = unroll(*cell, x, cell->initial_state(3, f64), post);
    // sequence 1 is x[1, :2]; its final state equals running those 2 steps alone
    State alone = by_hand(*cell, part(x, 1, 0, 2), cell->initial_state(1, f64), reverse);
    check_close(slice(u.final_state[0], 0, 1, 2), alone[0]);
    check_close(slice(u.final_state[1], 0, 1, 2), alone[1]);
    check_values(slice(u.final_state[0], 0, 2, 3), {1, 4}, std::vector<double>(4, 0.0));  // length 0: the initial state
    for (std::int64_t t = 2; t < T; ++t) check_values(slice(u.outputs[t], 0, 1, 2), {1, 4}, std::vector<double>(4, 0.0));

    // pre-padding: the same 2 real steps at the end
    UnrollOptions pre{reverse, lengths, PadSide::pre, {}};
    Unrolled v = unroll(*cell, x, cell->initial_state(3, f64), pre);
    State alone_pre = by_hand(*cell, part(x, 1, 3, 5), cell->initial_state(1, f64), reverse);
    check_close(slice(v.final_state[0], 0, 1, 2), alone_pre[0]);
    check_values(slice(v.outputs[0], 0, 1, 2), {1, 4}, std::vector<double>(4, 0.0));
    // a full-length sequence is unaffected by the mask
    State full = by_hand(*cell, part(x, 0, 0, T), cell->initial_state(1, f64), reverse);
    check_close(slice(u.final_state[0], 0, 0, 1), full[0]);
  }
}

TEST_CASE("bidirectional: the reverse direction aligned in time, and every merge mode") {
  manual_seed(3);
  auto forward_cell = std::make_shared<SimpleRNNCell>(3, 4), backward_cell = std::make_shared<SimpleRNNCell>(3, 4);
  forward_cell->to(f64);
  backward_cell->to(f64);
  auto bidirectional = [&](Merge merge) {
    int calls = 0;
    return Recurrent([&](std::int64_t, std::int64_t) -> std::shared_ptr<Cell> {
      return calls++ % 2 == 0 ? forward_cell : backward_cell;
    }, 3, {.bidirectional = true, .merge = merge});
  };
  Tensor x = sequence(2, 6, 3);
  RecurrentResult r = bidirectional(Merge::concat).run(x);
  REQUIRE(r.output.shape() == Shape{2, 6, 8});
  Tensor fwd = slice(r.output, 2, 0, 4), bwd = slice(r.output, 2, 4, 8);
  // the reverse direction at step 0 has read the whole sequence backwards
  State back = by_hand(*backward_cell, x, backward_cell->initial_state(2, f64), true);
  check_close(squeeze(slice(bwd, 1, 0, 1), 1), back[0]);
  check_close(r.states[1][0], back[0]);
  check_close(r.states[0][0], by_hand(*forward_cell, x, forward_cell->initial_state(2, f64))[0]);
  check_close(bidirectional(Merge::sum).run(x).output, fwd + bwd);
  check_close(bidirectional(Merge::mul).run(x).output, fwd * bwd);
  check_close(bidirectional(Merge::ave).run(x).output, (fwd + bwd) * 0.5);
}

TEST_CASE("go_backwards processes the reversed sequence and returns it in that order (Keras)") {
  manual_seed(4);
  auto cell = std::make_shared<GRUCell>(3, 2);
  cell->to(f64);
  Recurrent backwards([&](std::int64_t, std::int64_t) { return cell; }, 3, {.go_backwards = true});
  Tensor x = sequence(2, 4, 3);
  RecurrentResult r = backwards.run(x);
  check_close(r.states[0][0], by_hand(*cell, x, cell->initial_state(2, f64), true)[0]);
  // the first output is the step that read x[:, 3] alone
  State one = by_hand(*cell, slice(x, 1, 3, 4), cell->initial_state(2, f64));
  check_close(squeeze(slice(r.output, 1, 0, 1), 1), one[0]);
}

TEST_CASE("stacking: layer 2 reads layer 1's outputs; depth-gated layers read the cell state beneath") {
  manual_seed(5);
  LSTM two(3, 4, {.num_layers = 2});
  two.to(f64);
  Tensor x = sequence(2, 5, 3);
  RecurrentResult r = two.run(x);
  RecurrentResult first_only = Recurrent([&](std::int64_t, std::int64_t) {
    return std::shared_ptr<Cell>(&two.cell(0), [](Cell*) {});
  }, 3).run(x);
  State top = by_hand(two.cell(1), first_only.output, two.cell(1).initial_state(2, f64));
  check_close(r.states[1][0], top[0]);
  check_close(r.states[1][1], top[1]);

  // the depth-gated stack against the equations of ../shared/bench/torch_anchor.py, by hand
  DepthGatedLSTM dg(3, 4, {.num_layers = 2, .return_sequences = false});
  dg.to(f64);
  auto p = dg.named_parameters();
  auto get = [&](const std::string& name) {
    for (auto& [n, t] : p) if (n == name) return t;
    FAIL("no parameter ", name);
    return Tensor();
  };
  Tensor h1 = zeros({2, 4}, f64), c1 = h1, h2 = h1, c2 = h1;
  for (std::int64_t t = 0; t < 5; ++t) {
    Tensor xt = squeeze(slice(x, 1, t, t + 1), 1);
    auto g1 = chunk(linear(xt, get("weight_ih_l0"), get("bias_ih_l0")) + linear(h1, get("weight_hh_l0"), get("bias_hh_l0")), 4, -1);
    c1 = sigmoid(g1[1]) * c1 + sigmoid(g1[0]) * tanh(g1[2]);
    h1 = sigmoid(g1[3]) * tanh(c1);
    auto gx = chunk(linear(h1, get("weight_ih_l1"), get("bias_ih_l1")), 5, -1);
    auto gh = chunk(linear(h2, get("weight_hh_l1")), 4, -1);
    Tensor d = sigmoid(gx[4] + get("weight_cd_l1") * c2 + get("weight_ld_l1") * c1);
    c2 = d * c1 + sigmoid(gx[1] + gh[1]) * c2 + sigmoid(gx[0] + gh[0]) * tanh(gx[2] + gh[2]);
    h2 = sigmoid(gx[3] + gh[3]) * tanh(c2);
  }
  check_close(dg.run(x).output, h2);
  CHECK(get("weight_ih_l1").shape() == Shape{20, 4});
  CHECK(get("weight_hh_l1").shape() == Shape{16, 4});
}

TEST_CASE("stateful layers carry a detached state across calls (truncated BPTT)") {
  manual_seed(6);
  LSTM whole(3, 4);
  whole.to(f64);
  Recurrent stateful([&](std::int64_t, std::int64_t) { return std::shared_ptr<Cell>(&whole.cell(0), [](Cell*) {}); }, 3,
                     {.stateful = true});
  Tensor x = sequence(2, 6, 3).requires_grad_();
  RecurrentResult full = whole.run(x);
  Tensor a = slice(x, 1, 0, 3).detach().requires_grad_(), b = slice(x, 1, 3, 6).detach().requires_grad_();
  stateful.run(a);
  RecurrentResult second = stateful.run(b);
  check_close(second.states[0][0], full.states[0][0]);
  sum(second.output).backward();
  CHECK(b.grad().defined());
  CHECK_FALSE(a.grad().defined());  // the carried state was detached
  stateful.reset_states();
  check_close(stateful.run(b).states[0][0], whole.run(b).states[0][0]);
}

TEST_CASE("dropout: inactive in eval; input and recurrent masks are fixed per sequence") {
  Recurrent layer([](std::int64_t, std::int64_t in) { return std::make_shared<GRUCell>(in, 4); }, 3,
                  {.dropout = 0.3, .recurrent_dropout = 0.3});
  layer.to(f64);
  Tensor x = sequence(2, 5, 3);
  layer.eval();
  Tensor eval_out = layer.run(x).output;
  layer.train();
  manual_seed(7);
  Tensor a = layer.run(x).output;
  manual_seed(7);
  Tensor b = layer.run(x).output;
  check_close(a, b, 0);                   // seeded: reproducible
  CHECK(max_abs_diff(a, eval_out) > 1e-3);  // and different from eval
  // with fixed masks (reseeded inside), the training-mode layer still differentiates correctly
  auto run = [&](const std::vector<Tensor>& in) {
    manual_seed(7);
    return layer.run(in[0]).output;
  };
  CHECK_NOTHROW(gradcheck(run, {x.detach().requires_grad_()}));
}

TEST_CASE("whole layers gradcheck: 2 layers, bidirectional, with lengths") {
  LSTM lstm(3, 2, {.num_layers = 2, .bidirectional = true});
  lstm.to(f64);
  Tensor x = input({2, 4, 3});
  Tensor lengths = tensor({4, 2}, i64);
  std::vector<Tensor> inputs{x};
  for (auto& p : lstm.parameters()) inputs.push_back(p);
  auto run = [&](const std::vector<Tensor>& in) {
    RecurrentResult r = lstm.run(in[0], lengths);
    return concat({flatten(r.output), flatten(stack_states(r.states, 0)), flatten(stack_states(r.states, 1))}, 0);
  };
  CHECK_NOTHROW(gradcheck(run, inputs));
  CHECK(stack_states(lstm.run(x, lengths).states).shape() == Shape{4, 2, 2});
  GRU gru(3, 2, {.num_layers = 2});
  CHECK_NOTHROW(check_module(gru, {2, 3, 3}));
}

TEST_CASE("recurrent errors name the layer and the shapes") {
  LSTM lstm(3, 4);
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5, 4})); }), R"(LSTM: expects input \[B, T, 3\], got \[2, 5, 4\])"));
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5})); }), R"(LSTM: expects input \[B, T, 3\], got \[2, 5\])"));
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5, 3}), tensor({5, 6}, i64)); }),
                R"(a length of 6 is outside \[0, 5\])"));
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5, 3}), tensor({5, 1, 1}, i64)); }), R"(lengths must be i64 \[2\])"));
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5, 3}), tensor({5.0, 1.0})); }), R"(lengths must be i64)"));
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5, 3}), {}, {{zeros({2, 4})}}); }),
                R"(initial state has 1 tensors, the cell keeps 2)"));
  CHECK(matches(error_of([&] { lstm.run(zeros({2, 5, 3}), {}, {{zeros({2, 4}), zeros({3, 4})}}); }),
                R"(initial state tensor is \[3, 4\], expected \[2, 4\])"));
  CHECK(matches(error_of([] { LSTM(3, 4, {.num_layers = 0}); }), R"(num_layers must be at least 1)"));
  CHECK(matches(error_of([] { GRU(0, 4); }), R"(input_size and hidden_size must be positive)"));
}
