// The extension API as a user meets it: a cell that owns submodules, a buffer and train/eval
// behaviour inside a 2-layer bidirectional layer; what check_cell catches; Holder; the Keras
// options of RNN/GRU/LSTM; RecurrentResult's accessors; one raw step; summary and the RNG.
#include <cmath>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

/// A projection with a nested Linear and a buffer: x W^T + b + offset.
struct Projection : UnaryModule {
  Holder<Linear> linear;
  Tensor offset;
  Projection(std::int64_t in, std::int64_t out)
      : linear(this, "linear", in, out), offset(register_buffer("offset", full({out}, 0.125))) {}
  std::string type_name() const override { return "Projection"; }
  Tensor forward(const Tensor& x) override { return linear(x) + offset; }
};

/// A user cell with a submodule (nested two deep), a buffer and zoneout (Krueger et al. 2016):
///   n = tanh(proj(x) + h U^T) * gain
///   training: each unit keeps its old value with probability z;  eval: h' = z h + (1 - z) n
struct ZoneoutCell : Cell {
  static constexpr double z = 0.3;
  Holder<Projection> proj{this, "proj", input_size(), hidden_size()};
  Tensor gain = register_buffer("gain", full({hidden_size()}, 0.75));
  ZoneoutCell(std::int64_t in, std::int64_t hidden) : Cell(in, hidden) {
    weight_hh = cell_parameter("weight_hh", {hidden, hidden});
  }
  std::string type_name() const override { return "ZoneoutCell"; }
  State step(const Tensor& x, const State& state) override {
    check_step(x, state);
    const Tensor& h = state[0];
    Tensor n = tanh(proj(x) + linear(recurrent(h), weight_hh)) * gain;
    if (!is_training()) return {z * h + (1 - z) * n};
    Tensor keep = lt(uniform(h.shape(), 0, 1, h.dtype()), full_like(h, z));
    return {where(keep, h, n)};
  }
};

CellFactory zoneout_cells(std::int64_t hidden) {
  return [=](std::int64_t, std::int64_t in) { return std::make_shared<ZoneoutCell>(in, hidden); };
}

std::vector<std::string> names_of(const NamedTensors& list) {
  std::vector<std::string> names;
  for (const auto& [name, t] : list) names.push_back(name);
  return names;
}

Tensor by_name(const NamedTensors& list, const std::string& name) {
  for (const auto& [n, t] : list)
    if (n == name) return t;
  FAIL("no tensor named ", name);
  return {};
}

Tensor sequence(const Shape& shape, std::uint64_t seed = 3, Dtype dtype = f64) {
  Generator g(seed);
  return uniform(shape, -1, 1, dtype, &g);
}

std::vector<double> values(const RecurrentResult& r) {
  std::vector<double> out = r.output.to_vector<double>();
  for (const auto& s : r.states)
    for (const auto& t : s)
      for (double v : t.to_vector<double>()) out.push_back(v);
  return out;
}

}  // namespace

TEST_CASE("a cell with a submodule, a buffer and train/eval behaviour is a real child of a 2-layer bidirectional layer") {
  manual_seed(1);
  Recurrent layer(zoneout_cells(4), 3, {.num_layers = 2, .bidirectional = true});
  // names: PyTorch's flat suffix on the last component, at any depth
  std::vector<std::string> expected;
  for (std::string suffix : {"_l0", "_l0_reverse", "_l1", "_l1_reverse"})
    for (std::string name : {"weight_hh", "gain", "proj.linear.weight", "proj.linear.bias", "proj.offset"})
      expected.push_back(name + suffix);
  std::vector<std::string> got = names_of(layer.state_dict());
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  CHECK(got == expected);
  CHECK(names_of(layer.named_buffers()).size() == 8);
  CHECK(layer.parameters().size() == 12);
  CHECK(layer.parameter_count() == 2 * (16 + 12 + 4) + 2 * (16 + 32 + 4));
  // the module tree: cells are children named by layer and direction
  std::vector<std::string> modules;
  for (const auto& [name, m] : layer.named_modules()) modules.push_back(name + ":" + m->type_name());
  CHECK(modules[1] == "cell_l0:ZoneoutCell");
  CHECK(modules[2] == "cell_l0.proj:Projection");
  CHECK(modules[3] == "cell_l0.proj.linear:Linear");
  CHECK(layer.named_parameters()[0].second.is_same(layer.cell(0).named_parameters()[0].second));

  // to(f64) reaches parameters and buffers at every depth
  layer.to(f64);
  for (const auto& [name, t] : layer.state_dict()) CHECK_MESSAGE(t.dtype() == f64, name);
  const Tensor x = sequence({2, 5, 3});
  const Tensor lengths = tensor({5, 3}, i64);

  // eval reaches every cell and submodule: deterministic whatever the generator holds
  layer.eval();
  for (const auto& [name, m] : layer.named_modules()) CHECK_FALSE_MESSAGE(m->is_training(), name);
  manual_seed(10);
  const std::vector<double> eval_a = values(layer.run(x, lengths));
  manual_seed(11);
  CHECK(values(layer.run(x, lengths)) == eval_a);
  // training: zoneout draws, so different seeds differ and the same seed repeats
  layer.train();
  for (const auto& [name, m] : layer.named_modules()) CHECK_MESSAGE(m->is_training(), name);
  manual_seed(10);
  const std::vector<double> train_a = values(layer.run(x, lengths));
  manual_seed(11);
  CHECK(values(layer.run(x, lengths)) != train_a);
  manual_seed(10);
  CHECK(values(layer.run(x, lengths)) == train_a);

  // save/load round trip, buffers included; a fresh layer with other weights takes them all
  layer.eval();
  by_name(layer.cell(1, 1).named_buffers(), "gain").copy_(full({4}, 0.5, f64));  // a buffer that differs from the default
  const std::vector<double> before = values(layer.run(x, lengths));
  TempDir dir("extension");
  layer.save(dir.file("zoneout.safetensors"));
  manual_seed(99);
  Recurrent fresh(zoneout_cells(4), 3, {.num_layers = 2, .bidirectional = true});
  fresh.to(f64);
  fresh.eval();
  CHECK(values(fresh.run(x, lengths)) != before);
  fresh.load(dir.file("zoneout.safetensors"));
  CHECK(values(fresh.run(x, lengths)) == before);
  CHECK(by_name(fresh.named_buffers(), "gain_l1_reverse").to_vector<double>() == std::vector<double>(4, 0.5));
  // a failed load (a buffer of the wrong shape) leaves the layer as it was
  StateDict bad = fresh.state_dict();
  for (auto& [name, t] : bad)
    if (name == "gain_l1") t = zeros({5}, f64);
  CHECK(matches(error_of([&] { fresh.load_state_dict(bad); }), R"('gain_l1' has shape \[5\], the module expects \[4\])"));
  CHECK(values(fresh.run(x, lengths)) == before);

  // the summary names the layer, counts every parameter and leaves the generator alone
  manual_seed(5);
  const double draw = uniform({1}).item();
  manual_seed(5);
  layer.train();
  const std::string table = summary(layer, {2, 5, 3}, f64);
  CHECK(uniform({1}).item() == draw);
  CHECK(matches(table, "Total params: 168"));
  CHECK(matches(table, "cell_l0.proj.linear \\(Linear\\)"));

  // and the one-call checker proves it inside the layer too
  std::string report;
  CHECK_NOTHROW(report = check_cell(zoneout_cells(4)));
  CHECK(matches(report, "in a 2-layer bidirectional layer"));
}

TEST_CASE("check_cell catches the common mistakes of a new cell") {
  // forgets recurrent(h): recurrent dropout would silently do nothing
  struct IgnoresMask : Cell {
    IgnoresMask() : Cell(3, 4) { register_gate_weights(1, 1, true); }
    std::string type_name() const override { return "IgnoresMask"; }
    State step(const Tensor& x, const State& s) override { return {tanh(x + linear(s[0], weight_hh, bias_hh))}; }
  } ignores_mask;
  CHECK(matches(error_of([&] { check_cell(ignores_mask); }),
                R"(^check IgnoresMask: the step ignores the recurrent-dropout mask: pass every h .* through recurrent\(h\))"));

  // a parameter held but not registered
  struct Unregistered : Cell {
    Tensor scale = ones({4}, f64).requires_grad_();
    Unregistered() : Cell(3, 4) { register_gate_weights(1, 1, true); }
    std::string type_name() const override { return "Unregistered"; }
    State step(const Tensor& x, const State& s) override { return {tanh(x + hidden_gates(s[0])) * scale}; }
  } unregistered;
  CHECK(matches(error_of([&] { check_cell(unregistered); }),
                R"(^check Unregistered: the step uses a tensor \[4\] that requires grad but is not registered)"));

  // a submodule held but not registered
  struct HiddenModule : Cell {
    std::shared_ptr<Linear> proj = std::make_shared<Linear>(4, 4);
    HiddenModule() : Cell(3, 4) {
      register_gate_weights(1, 1, true);
      proj->to(f64);
    }
    std::string type_name() const override { return "HiddenModule"; }
    State step(const Tensor& x, const State& s) override {
      return {tanh(x + linear(recurrent(s[0]), proj->weight))};
    }
  } hidden_module;
  CHECK(matches(error_of([&] { check_cell(hidden_module); }), R"(tensor \[4, 4\] that requires grad but is not registered)"));

  // a buffer held but not registered stays float32 after to(f64)
  struct HiddenBuffer : Cell {
    Tensor gain = full({4}, 0.5);
    HiddenBuffer() : Cell(3, 4) { register_gate_weights(1, 1, true); }
    std::string type_name() const override { return "HiddenBuffer"; }
    State step(const Tensor& x, const State& s) override { return {tanh(x + hidden_gates(s[0])) * gain}; }
  } hidden_buffer;
  CHECK(matches(error_of([&] { check_cell(hidden_buffer); }),
                R"(^check HiddenBuffer: a float64 run after to\(f64\) \(is every tensor it uses registered\?\): )"));

  // random in eval mode
  struct NoisyInEval : Cell {
    NoisyInEval() : Cell(3, 4) { register_gate_weights(1, 1, true); }
    std::string type_name() const override { return "NoisyInEval"; }
    State step(const Tensor& x, const State& s) override {
      return {tanh(x + hidden_gates(s[0])) + 1e-3 * uniform(s[0].shape(), 0, 1, x.dtype())};
    }
  } noisy;
  CHECK(matches(error_of([&] { check_cell(noisy); }), R"(^check NoisyInEval: two runs in eval mode differ)"));
}

TEST_CASE("Holder: a submodule declared and registered in one line, called like the module") {
  struct Net : UnaryModule {
    Holder<Linear> first{this, "first", 3, 4};
    Holder<GRU> gru{this, "gru", 4, 5};
    Holder<Linear> head{this, "head", 5, 2};
    std::string type_name() const override { return "Net"; }
    Tensor forward(const Tensor& x) override { return head(gru->run(first(x)).h()); }
  } net;
  CHECK(names_of(net.named_parameters()) ==
        std::vector<std::string>{"first.weight", "first.bias", "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0",
                                 "gru.bias_hh_l0", "head.weight", "head.bias"});
  CHECK(net(zeros({2, 6, 3})).shape() == Shape{2, 2});
  CHECK(net.first->weight.is_same(net.named_parameters()[0].second));
  // converts to a shared_ptr of the module or a base, and wraps one that exists
  std::shared_ptr<UnaryModule> as_base = net.head;
  CHECK(as_base.get() == net.head.ptr().get());
  Sequential seq{Holder<Linear>(std::make_shared<Linear>(3, 5)), net.head};
  CHECK(seq(ones({1, 3})).shape() == Shape{1, 2});
  Holder<Linear> empty;
  CHECK_FALSE(empty);
  struct Twice : Module {
    Holder<Linear> a{this, "a", 1, 1};
    Holder<Linear> b{this, "a", 1, 1};
  };
  CHECK(matches(error_of([] { Twice t; }), "the name 'a' is registered twice"));
}

TEST_CASE("RNN, GRU and LSTM take Keras' recurrent options; the two dropouts have their own names") {
  manual_seed(2);
  GRU gru(3, 4, {.bidirectional = true, .merge = Merge::sum, .return_sequences = false, .input_dropout = 0.2,
                 .recurrent_dropout = 0.25});
  CHECK(gru.type_name() == "GRU");
  CHECK(gru.options().input_dropout == 0.2);
  CHECK(gru.options().recurrent_dropout == 0.25);
  // the same layer spelled with Recurrent and GRUCell gives the same numbers
  Recurrent same([](std::int64_t, std::int64_t in) { return std::make_shared<GRUCell>(in, 4); }, 3,
                 {.bidirectional = true, .merge = Merge::sum, .return_sequences = false, .input_dropout = 0.2,
                  .recurrent_dropout = 0.25});
  gru.to(f64);
  same.to(f64);
  same.load_state_dict(gru.state_dict());
  const Tensor x = sequence({2, 5, 3});
  manual_seed(3);
  Tensor a = gru(x);
  manual_seed(3);
  Tensor b = same(x);
  CHECK(a.shape() == Shape{2, 4});
  check_close(a, b, 0);
  gru.eval();
  same.eval();
  check_close(gru(x), same(x), 0);

  LSTM backwards(3, 4, {.go_backwards = true});
  CHECK(backwards.options().go_backwards);
  CHECK(backwards(zeros({1, 2, 3})).shape() == Shape{1, 2, 4});
  // PyTorch's dropout is layer_dropout; Keras' dropout (on Recurrent's options) is input_dropout
  CHECK(LSTM(3, 4, {.num_layers = 2, .dropout = 0.3}).options().layer_dropout == 0.3);
  CHECK(LSTM(3, 4, {.num_layers = 2, .layer_dropout = 0.3}).options().layer_dropout == 0.3);
  CHECK(Recurrent([](std::int64_t, std::int64_t in) { return std::make_shared<GRUCell>(in, 4); }, 3, {.dropout = 0.3})
            .options()
            .input_dropout == 0.3);
  CHECK(matches(error_of([] { LSTM(3, 4, {.dropout = 0.2, .layer_dropout = 0.3}); }),
                R"(^Recurrent: dropout \(another name of layer_dropout\) and layer_dropout are both set, to 0.2 and 0.3: set one)"));
  CHECK(matches(error_of([] { RNN(3, 4, {.input_dropout = 1.5}); }), R"(dropout probabilities must be in \[0, 1\], got 1.5)"));

  // stateful: carries the state, and another batch size says what to do
  RNN stateful(3, 4, {.stateful = true});
  stateful(zeros({2, 3, 3}));
  CHECK(matches(error_of([&] { stateful(zeros({5, 3, 3})); }),
                R"(^RNN: this stateful layer carries the state of a batch of 2 from its last call, got a batch of 5; call reset_states\(\))"));
  stateful.reset_states();
  CHECK(stateful(zeros({5, 3, 3})).shape() == Shape{5, 3, 4});
}

TEST_CASE("RecurrentResult: the final h and c of a layer and direction by name") {
  LSTM lstm(3, 4, {.num_layers = 2, .bidirectional = true});
  RecurrentResult r = lstm.run(sequence({2, 5, 3}, 3, f32));
  CHECK(r.h().is_same(r.states[2][0]));         // last layer, forward
  CHECK(r.h(-1, 1).is_same(r.states[3][0]));    // last layer, backward
  CHECK(r.c(0, 1).is_same(r.states[1][1]));     // first layer, backward
  CHECK(r.final_state(1, 0).size() == 2);
  CHECK(matches(error_of([&] { r.h(2); }), R"(^RecurrentResult: no final state for layer 2, direction 0 \(2 layers, 2 directions\))"));
  CHECK(matches(error_of([&] { r.h(0, 2); }), R"(no final state for layer 0, direction 2)"));
  CHECK(matches(error_of([&] { r.h(-3); }), R"(no final state for layer -3)"));
  GRU gru(3, 4);
  CHECK(matches(error_of([&] { gru.run(zeros({1, 2, 3})).c(); }), R"(^RecurrentResult: c\(\) of a state of 1 tensor\(s\))"));
}

TEST_CASE("a cell called on a raw input runs one step, projecting the input itself") {
  LSTMCell cell(3, 4);
  cell.to(f64);
  const Tensor x = sequence({2, 3});
  const State s{sequence({2, 4}, 4), sequence({2, 4}, 5)};
  State a = cell(x, s);
  State b = cell.step(cell.project_input(x), s);
  check_close(a[0], b[0], 0);
  check_close(a[1], b[1], 0);
  CHECK(matches(error_of([&] { cell(zeros({2, 5}, f64), s); }), R"(^LSTMCell: a call takes an input \[B, 3\] and a state, got input \[2, 5\])"));
  // a cell without gate weights steps on the raw input
  ZoneoutCell z(3, 4);
  CHECK(z(zeros({2, 3}), z.initial_state(2, f32))[0].shape() == Shape{2, 4});
}

TEST_CASE("MGUCell: the minimal gated unit against its equations, and the one-call check") {
  MGUCell cell(3, 4);
  cell.to(f64);
  CHECK(names_of(cell.named_parameters()) == std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"});
  CHECK(cell.named_parameters()[0].second.shape() == Shape{8, 3});
  const Tensor x = sequence({2, 3}), h = sequence({2, 4}, 7);
  // f = sigmoid(W_if x + b_if + W_hf h + b_hf); n = tanh(W_in x + b_in + W_hn (f h) + b_hn); h' = (1 - f) h + f n
  auto rows = [](const Tensor& t, std::int64_t a, std::int64_t b) { return slice(t, 0, a, b); };
  auto affine = [](const Tensor& v, const Tensor& w, const Tensor& b) { return matmul(v, transpose(w, 0, 1)) + b; };
  const auto& p = cell.named_parameters();
  const Tensor &w_ih = p[0].second, &w_hh = p[1].second, &b_ih = p[2].second, &b_hh = p[3].second;
  Tensor f = sigmoid(affine(x, rows(w_ih, 0, 4), rows(b_ih, 0, 4)) + affine(h, rows(w_hh, 0, 4), rows(b_hh, 0, 4)));
  Tensor n = tanh(affine(x, rows(w_ih, 4, 8), rows(b_ih, 4, 8)) + affine(f * h, rows(w_hh, 4, 8), rows(b_hh, 4, 8)));
  check_close(cell(x, {h})[0], (1.0 - f) * h + f * n, 1e-14);
  CHECK_NOTHROW(check_cell(cell));
  CHECK_NOTHROW(check_cell([](std::int64_t, std::int64_t in) { return std::make_shared<MGUCell>(in, 3); }));
  Recurrent layer([](std::int64_t, std::int64_t in) { return std::make_shared<MGUCell>(in, 4, false); }, 3);
  CHECK(names_of(layer.named_parameters()) == std::vector<std::string>{"weight_ih_l0", "weight_hh_l0"});
}

TEST_CASE("masked steps are inert: NaN and Inf in padded positions reach no gradient") {
  // a bidirectional 2-layer LSTM over sequences whose padded steps hold NaN and Inf
  LSTM lstm(3, 4, {.num_layers = 2, .bidirectional = true});
  lstm.to(f64);
  const Tensor lengths = tensor({5, 2}, i64);
  const Tensor clean = sequence({2, 5, 3});
  Tensor poisoned = clean.clone();
  {
    autograd::NoGradGuard no_grad;
    Tensor pad = reshape(tensor({0, 0, 0, 0, 0, 0, 0, 1, 1, 1}, f64), {2, 5, 1});  // sequence 1, steps 2..4
    Tensor bad = reshape(tensor({0.0, 0.0, 0.0, std::nan(""), INFINITY, -INFINITY, std::nan(""), 1.0, 2.0}, f64), {1, 3, 3});
    poisoned = where(pad, concat({zeros({1, 5, 3}, f64), concat({zeros({1, 2, 3}, f64), slice(bad, 1, 0, 3)}, 1)}, 0), clean);
  }
  auto gradients = [&](const Tensor& x) {
    lstm.zero_grad();
    RecurrentResult r = lstm.run(x, lengths);
    (sum(r.output) + sum(r.h(-1, 0)) + sum(r.c(-1, 1))).backward();
    std::vector<double> all;
    for (const auto& p : lstm.parameters())
      for (double v : p.grad().to_vector<double>()) all.push_back(v);
    return all;
  };
  const std::vector<double> want = gradients(clean), got = gradients(poisoned);
  for (double v : got) REQUIRE(std::isfinite(v));
  CHECK(got == want);  // the padded values do not matter at all

  // multi-head attention with one batch row whose every key is padding
  MultiheadAttention mha(4, 2);
  mha.to(f64);
  const Tensor q = sequence({2, 3, 4}, 5);
  const Tensor key_padding = tensor({{0, 0, 1}, {1, 1, 1}}, i64);
  AttentionResult a = mha.forward(q, q, q, key_padding);
  for (double v : a.weights.to_vector<double>()) REQUIRE(std::isfinite(v));
  check_close(slice(a.weights, 0, 1, 2), zeros({1, 3, 3}, f64), 0);  // no key: zero weights
  sum(a.context).backward();
  for (const auto& p : mha.parameters())
    for (double v : p.grad().to_vector<double>()) REQUIRE(std::isfinite(v));
  // the fully padded row gets the output projection of a zero context: the bias alone
  check_close(slice(a.context, 0, 1, 2), expand(reshape(by_name(mha.named_parameters(), "out_proj.bias"), {1, 1, 4}), {1, 3, 4}), 0);
  CHECK_NOTHROW(gradcheck([&](const std::vector<Tensor>& in) { return mha.forward(in[0], in[0], in[0], key_padding).context; },
                          {q.detach().requires_grad_()}));
}
