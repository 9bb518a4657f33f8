// DilatedRNN (Chang et al. 2017) against the explicit loop h_t = cell(x_t, h_{t-d}).
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

/// Every step's state of h_t = cell(x_t, h_{t-d}) (h_{t+d} reversed), from zeros; no driver.
std::vector<State> explicit_loop(Cell& cell, const Tensor& x, std::int64_t d, bool reverse = false) {
  const std::int64_t B = x.size(0), T = x.size(1);
  std::vector<State> states(T);
  for (std::int64_t k = 0; k < T; ++k) {
    const std::int64_t t = reverse ? T - 1 - k : k, from = reverse ? t + d : t - d;
    const State previous = from >= 0 && from < T ? states[from] : cell.initial_state(B, x.dtype());
    states[t] = cell(squeeze(slice(x, 1, t, t + 1), 1), previous);
  }
  return states;
}

Tensor outputs_of(const std::vector<State>& states) {
  std::vector<Tensor> h;
  for (const auto& s : states) h.push_back(s[0]);
  return stack(h, 1);
}

Tensor sequence(const Shape& shape, std::uint64_t seed = 8) {
  Generator g(seed);
  return uniform(shape, -1, 1, f64, &g);
}

template <class C>
CellFactory cells(std::int64_t hidden) {
  return [=](std::int64_t, std::int64_t in) { return std::make_shared<C>(in, hidden); };
}

/// Rows [b, b + 1) and steps [t0, t1).
Tensor part(const Tensor& x, std::int64_t b, std::int64_t t0, std::int64_t t1) {
  return slice(slice(x, 0, b, b + 1), 1, t0, t1);
}

}  // namespace

TEST_CASE("DilatedRNN: one layer equals the explicit loop h_t = cell(x_t, h_{t-d}), for T not a multiple of d") {
  for (std::int64_t d : {1, 2, 3, 5, 9}) {
    INFO("dilation ", d);
    DilatedRNN layer(cells<GRUCell>(4), 3, {d});
    layer.to(f64);
    const Tensor x = sequence({2, 7, 3});
    RecurrentResult r = layer.run(x);
    const auto states = explicit_loop(layer.cell(0), x, d);
    check_close(r.output, outputs_of(states), 1e-14);
    check_close(r.h(), states.back()[0], 1e-14);
  }
}

TEST_CASE("DilatedRNN: bidirectional (the backward direction reads t + d) and stacked (1, 2, 4) with LSTM cells") {
  DilatedRNN bi(cells<LSTMCell>(3), 2, {2}, {.bidirectional = true});
  bi.to(f64);
  const Tensor x = sequence({3, 6, 2});
  RecurrentResult r = bi.run(x);
  const auto forward = explicit_loop(bi.cell(0, 0), x, 2), backward = explicit_loop(bi.cell(0, 1), x, 2, true);
  check_close(r.output, concat({outputs_of(forward), outputs_of(backward)}, -1), 1e-14);
  check_close(r.c(0, 0), forward.back()[1], 1e-14);
  check_close(r.c(0, 1), backward.front()[1], 1e-14);

  DilatedRNN stack3(cells<LSTMCell>(3), 2, {}, {.num_layers = 3});
  CHECK(stack3.dilations() == std::vector<std::int64_t>{1, 2, 4});
  stack3.to(f64);
  const Tensor long_x = sequence({2, 11, 2});
  Tensor h = long_x;
  for (std::int64_t layer = 0; layer < 3; ++layer) h = outputs_of(explicit_loop(stack3.cell(layer), h, std::int64_t{1} << layer));
  check_close(stack3.run(long_x).output, h, 1e-14);
  // names as PyTorch's stacked layers
  CHECK(stack3.named_parameters()[4].first == "weight_ih_l1");
  CHECK(stack3.type_name() == "DilatedRNN");
}

TEST_CASE("DilatedRNN: lengths mask padded steps, post and pre, forward and backward") {
  DilatedRNN layer(cells<SimpleRNNCell>(4), 3, {3}, {.bidirectional = true});
  layer.to(f64);
  const Tensor x = sequence({2, 8, 3});
  const Tensor lengths = tensor({8, 5}, i64);
  // post padding: sequence 1 is its first 5 steps; the rest is output 0
  RecurrentResult post = layer.run(x, lengths);
  const auto f1 = explicit_loop(layer.cell(0, 0), part(x, 1, 0, 5), 3), b1 = explicit_loop(layer.cell(0, 1), part(x, 1, 0, 5), 3, true);
  check_close(part(post.output, 1, 0, 5), concat({outputs_of(f1), outputs_of(b1)}, -1), 1e-14);
  check_close(part(post.output, 1, 5, 8), zeros({1, 3, 8}, f64), 0);
  check_close(slice(post.h(0, 0), 0, 1, 2), f1.back()[0], 1e-14);
  check_close(slice(post.h(0, 1), 0, 1, 2), b1.front()[0], 1e-14);
  const auto f0 = explicit_loop(layer.cell(0, 0), part(x, 0, 0, 8), 3);
  check_close(slice(post.h(0, 0), 0, 0, 1), f0.back()[0], 1e-14);
  // pre padding: sequence 1 is its last 5 steps
  RecurrentResult pre = layer.run(x, lengths, {}, PadSide::pre);
  const auto f1p = explicit_loop(layer.cell(0, 0), part(x, 1, 3, 8), 3), b1p = explicit_loop(layer.cell(0, 1), part(x, 1, 3, 8), 3, true);
  check_close(part(pre.output, 1, 3, 8), concat({outputs_of(f1p), outputs_of(b1p)}, -1), 1e-14);
  check_close(part(pre.output, 1, 0, 3), zeros({1, 3, 8}, f64), 0);
  check_close(slice(pre.h(0, 0), 0, 1, 2), f1p.back()[0], 1e-14);
  check_close(slice(pre.h(0, 1), 0, 1, 2), b1p.front()[0], 1e-14);
  // a length of 0 keeps the initial state
  RecurrentResult empty = layer.run(x, tensor({8, 0}, i64));
  check_close(slice(empty.h(), 0, 1, 2), zeros({1, 4}, f64), 0);
}

TEST_CASE("DilatedRNN: gradients (float64 gradcheck and gradgradcheck), dropout, errors") {
  DilatedRNN layer(cells<GRUCell>(3), 2, {1, 2}, {.bidirectional = true});
  CHECK_NOTHROW(check_module(layer, {2, 5, 2}));
  // with lengths, and in training with seeded input and recurrent dropout
  DilatedRNN dropped(cells<GRUCell>(3), 2, {2, 3}, {.input_dropout = 0.2, .recurrent_dropout = 0.3});
  dropped.to(f64);
  const Tensor lengths = tensor({5, 3}, i64);
  std::vector<Tensor> inputs{sequence({2, 5, 2}).requires_grad_()};
  for (auto& p : dropped.parameters()) inputs.push_back(p);
  auto run = [&](const std::vector<Tensor>& in) {
    manual_seed(4);
    return dropped.run(in[0], lengths).output;
  };
  CHECK_NOTHROW(gradcheck(run, inputs));
  manual_seed(4);
  const Tensor a = dropped.run(inputs[0], lengths).output;
  dropped.eval();
  CHECK(max_abs_diff(a, dropped.run(inputs[0], lengths).output) > 1e-3);
  // a dilation of 1 is the plain recurrent layer
  DilatedRNN one(cells<GRUCell>(3), 2, {1});
  Recurrent plain(cells<GRUCell>(3), 2);
  plain.load_state_dict(one.state_dict());
  const Tensor x = sequence({2, 4, 2}).to(f32);
  check_close(one(x), plain(x), 0);
  CHECK(matches(error_of([] { DilatedRNN(cells<GRUCell>(3), 2, {1, 0}); }), R"(^DilatedRNN: dilations must be at least 1, got \[1, 0\])"));
  CHECK(matches(error_of([] { DilatedRNN(cells<GRUCell>(3), 2, {1, 2}, {.num_layers = 3}); }),
                R"(^DilatedRNN: 2 dilations for num_layers 3)"));
  CHECK(matches(error_of([&] { layer.run(zeros({2, 5, 2}, f64), tensor({5, 6}, i64)); }), R"(a length of 6 is outside \[0, 5\])"));
}
