// Attacks (attacks.hpp) on: nn (layers, modules, state dicts; losses).
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

using namespace xgrad::nn;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

std::vector<double> values_of(const Tensor& t) { return t.to(f64).to_vector<double>(); }

/// Every value of t is finite (t defined).
bool all_finite(const Tensor& t) {
  if (!t.defined()) return false;
  for (double v : values_of(t))
    if (!std::isfinite(v)) return false;
  return true;
}

/// The values of every parameter, to check that a refused load changed nothing.
std::vector<std::vector<double>> snapshot(const Module& m) {
  std::vector<std::vector<double>> out;
  for (const auto& p : m.parameters()) out.push_back(values_of(p));
  return out;
}

/// A Linear(2, 2) with known weights and a StateDict for it whose values all differ.
std::shared_ptr<Linear> known_linear() {
  auto lin = std::make_shared<Linear>(2, 2);
  lin->weight.copy_(tensor({{1, 2}, {3, 4}}));
  lin->bias.copy_(tensor({5, 6}));
  return lin;
}

/// A module that registers two children under one name.
struct TwoSameNames : Module {
  TwoSameNames() {
    register_module("head", std::make_shared<Linear>(1, 1));
    register_module("head", std::make_shared<Linear>(1, 1));
  }
};

/// The recurrent masking attack: non-finite values in padded steps must reach no gradient.
/// Sequence 0 has 2 valid steps of 4 (post- or pre-padded), sequence 1 all 4.
void masked_nonfinite_padding(Recurrent& layer, PadSide side) {
  layer.to(f64);
  const std::int64_t T = 4, valid = 2;
  Tensor x = randn({2, T, 3}, f64);
  // poison the padded steps of sequence 0
  double* d = x.data<double>();
  for (std::int64_t t = 0; t < T; ++t) {
    const bool padded = side == PadSide::post ? t >= valid : t < T - valid;
    if (padded)
      for (int f = 0; f < 3; ++f) d[t * 3 + f] = f == 0 ? kNaN : (f == 1 ? kInf : -kInf);
  }
  x.requires_grad_();
  RecurrentResult r = layer.run(x, tensor({valid, T}, i64), {}, side);
  Tensor loss = sum(r.output);
  for (const auto& s : r.states)
    for (const auto& t : s) loss = loss + sum(t);
  loss.backward();
  for (const auto& [name, p] : layer.named_parameters())
    expect(all_finite(p.grad()), "a finite gradient of " + name + " with NaN/Inf in padded steps");
  expect(all_finite(r.output), "a finite output");
  // the padded outputs are 0, and the valid ones equal those of the valid steps run alone
  const std::int64_t first = side == PadSide::post ? 0 : T - valid;
  Tensor alone_x = slice(slice(x.detach(), 0, 0, 1), 1, first, first + valid);
  RecurrentResult alone = layer.run(alone_x);
  const auto out = values_of(slice(r.output, 0, 0, 1));  // [1, T, H]
  const auto ref = values_of(alone.output);               // [1, valid, H]
  const std::size_t H = ref.size() / valid;
  for (std::int64_t t = 0; t < T; ++t)
    for (std::size_t h = 0; h < H; ++h) {
      const double got = out[t * H + h];
      const bool is_valid = t >= first && t < first + valid;
      const double want = is_valid ? ref[(t - first) * H + h] : 0.0;
      expect(std::abs(got - want) <= 1e-12, "padded outputs 0 and valid outputs as the sequence alone");
    }
  for (std::int64_t direction = 0; direction < r.directions; ++direction)
    for (std::size_t k = 0; k < r.final_state(-1, direction).size(); ++k) {
      const auto got = values_of(slice(r.final_state(-1, direction)[k], 0, 0, 1));
      const auto want = values_of(alone.final_state(-1, direction)[k]);
      expect(got.size() == want.size(), "final states of one shape");
      for (std::size_t i = 0; i < got.size(); ++i)
        expect(std::abs(got[i] - want[i]) <= 1e-12, "the final state of the valid steps alone");
    }
  // no gradient reaches the poisoned inputs
  const auto gx = values_of(slice(x.grad(), 0, 0, 1));
  for (std::int64_t t = 0; t < T; ++t)
    if (t < first || t >= first + valid)
      for (int f = 0; f < 3; ++f) expect(gx[t * 3 + f] == 0, "a zero gradient for a padded input");
}

// clang-format off
Register layers{"layers", {
  // --- Linear ---------------------------------------------------------------------------------
  {"Linear: input with the wrong number of features", [] {
    Linear lin(3, 2);
    expect_error([&] { lin(zeros({2, 4})); }, "linear.*\\[2, 4\\].*\\[2, 3\\]");
  }},
  {"Linear: negative in_features", [] {
    expect_error([] { Linear lin(-1, 2); }, "Linear.*-1");
  }},
  {"Linear(0, 2): output is the bias, which starts at 0 as in PyTorch", [] {
    Linear lin(0, 2);
    Tensor x = zeros({3, 0});
    Tensor y = lin(x);
    expect(y.shape() == Shape{3, 2}, "shape [3, 2]");
    expect_values(y, {0, 0, 0, 0, 0, 0});
  }},
  {"Linear: f64 input into f32 weights", [] {
    Linear lin(2, 2);
    expect_error([&] { lin(zeros({1, 2}, f64)); }, "linear.*f64.*f32|linear.*f32.*f64");
  }},
  {"Linear: i64 input", [] {
    Linear lin(2, 2);
    expect_error([&] { lin(zeros({1, 2}, i64)); }, "linear.*i64");
  }},
  {"Linear: a rank-0 input", [] {
    Linear lin(1, 1);
    expect_error([&] { lin(scalar(1)); }, "linear.*\\[\\]");
  }},
  {"Linear: a NaN stays in its own row", [] {
    auto lin = known_linear();
    Tensor y = (*lin)(tensor({{1, kNaN}, {1, 1}}));
    expect_values(y, {kNaN, kNaN, 1 + 2 + 5, 3 + 4 + 6});
  }},
  // --- Embedding ------------------------------------------------------------------------------
  {"Embedding: id equal to num_embeddings", [] {
    Embedding e(4, 3);
    expect_error([&] { e(tensor({0, 4}, i64)); }, "Embedding: id 4 is out of range.*4 embeddings");
  }},
  {"Embedding: negative id", [] {
    Embedding e(4, 3);
    expect_error([&] { e(tensor({-1}, i64)); }, "Embedding: id -1 is out of range");
  }},
  {"Embedding: float ids", [] {
    Embedding e(4, 3);
    expect_error([&] { e(tensor({1.0, 2.0})); }, "Embedding: ids must be i64, got f32");
  }},
  {"Embedding: padding_idx out of range", [] {
    expect_error([] { Embedding e(5, 2, 5); }, "Embedding: padding_idx 5 is out of range for 5");
  }},
  {"Embedding: negative sizes", [] {
    expect_error([] { Embedding e(-3, 2); }, "Embedding.*-3");
  }},
  {"Embedding: padding_idx -1 is the last row: zeros, and no gradient", [] {
    Embedding e(5, 2, -1);
    Tensor y = e(tensor({4, 0}, i64));
    const auto v = values_of(y);
    expect(v[0] == 0 && v[1] == 0, "the padding row is zero");
    sum(y * 3.0).backward();
    std::vector<double> want(10, 0.0);
    want[0] = want[1] = 3;  // row 0 gets the gradient, row 4 (padding) none
    expect_values(e.weight.grad(), want);
  }},
  {"Embedding: a rank-0 id", [] {
    Embedding e(3, 2);
    Tensor y = e(scalar(2, i64));
    expect(y.shape() == Shape{2}, "shape [2]");
    expect_values(y, values_of(slice(e.weight, 0, 2, 3)));
  }},
  {"Linear: sizes whose product overflows", [] {
    expect_error([] { Linear lin(std::int64_t{1} << 32, std::int64_t{1} << 32); }, "4294967296");
  }},
  {"Embedding: an empty batch of ids", [] {
    Embedding e(5, 3);
    Tensor y = e(zeros({2, 0}, i64));
    expect(y.shape() == Shape{2, 0, 3}, "shape [2, 0, 3]");
  }},
  // --- Conv1D ---------------------------------------------------------------------------------
  {"Conv1D: kernel longer than the input ('valid')", [] {
    Conv1D conv(1, 1, 5);
    expect_error([&] { conv(zeros({1, 3, 1})); }, "conv1d.*3 time steps.*kernel span 5");
  }},
  {"Conv1D: kernel longer than the input ('same') is valid, as in PyTorch", [] {
    Conv1D conv(1, 1, 5, 1, 1, Padding::same, false);
    conv.weight.copy_(reshape(tensor({1, 2, 3, 4, 5}), {1, 1, 5}));
    // padded [0, 0, 1, 10, 0, 0]: y0 = 3*1 + 4*10, y1 = 2*1 + 3*10
    expect_values(conv(reshape(tensor({1, 10}), {1, 2, 1})), {43, 32});
  }},
  {"Conv1D: stride 0", [] {
    expect_error([] { Conv1D conv(1, 1, 3, 0); }, "Conv1D: stride and dilation must be positive, got 0 and 1");
  }},
  {"Conv1D: dilation whose span overflows int64", [] {
    expect_error([] { Conv1D conv(1, 1, 3, 1, std::int64_t{1} << 62); }, "Conv1D.*overflow|Conv1D.*4611686018427387904");
  }},
  {"conv1d: an invalid padding mode", [] {
    expect_error([] { conv1d(zeros({1, 4, 1}), zeros({1, 1, 2}), {}, 1, 1, static_cast<Padding>(-1)); },
                 "conv1d.*padding.*-1");
  }},
  {"Conv1D: an invalid padding mode at construction", [] {
    expect_error([] { Conv1D conv(1, 1, 2, 1, 1, static_cast<Padding>(7)); }, "Conv1D.*padding.*7");
  }},
  {"Conv1D: channel mismatch", [] {
    Conv1D conv(2, 1, 2);
    expect_error([&] { conv(zeros({1, 4, 3})); }, "conv1d.*\\[1, 4, 3\\].*2 channels");
  }},
  {"Conv1D: 'same' padding on an empty sequence", [] {
    Conv1D conv(1, 1, 3, 1, 1, Padding::same);
    Tensor y;
    try {
      y = conv(zeros({1, 0, 1}));
    } catch (const Error&) {
      return;  // PyTorch refuses a zero-length input too
    }
    expect(y.shape() == Shape{1, 0, 1}, "an empty output [1, 0, 1] (or an error)");
  }},
  {"Conv1D: 'causal' padding values (Keras)", [] {
    Conv1D conv(1, 1, 2, 1, 1, Padding::causal, false);
    conv.weight.copy_(reshape(tensor({1, 2}), {1, 1, 2}));
    // padded [0, 1, 2, 3]: y[t] = x[t-1] + 2 x[t]
    expect_values(conv(reshape(tensor({1, 2, 3}), {1, 3, 1})), {2, 5, 8});
  }},
  {"conv1d: a bias of the wrong size", [] {
    expect_error([] { conv1d(zeros({1, 4, 1}), zeros({2, 1, 2}), zeros({3})); }, "conv1d: bias \\[3\\] must be \\[2\\]");
  }},
  // --- pooling --------------------------------------------------------------------------------
  {"MaxPool1D: pool_size 0", [] {
    expect_error([] { MaxPool1D pool(0); }, "MaxPool1D: pool_size must be positive.*got 0");
  }},
  {"max_pool1d: negative stride", [] {
    expect_error([] { max_pool1d(zeros({1, 4, 1}), 2, -1); }, "max_pool1d.*got 2 and -1");
  }},
  {"avg_pool1d: pool larger than the sequence", [] {
    expect_error([] { avg_pool1d(zeros({1, 2, 1}), 3); }, "avg_pool1d.*\\[1, 2, 1\\] has 2 time steps");
  }},
  {"max_pool1d: NaN propagates (PyTorch)", [] {
    expect_values(max_pool1d(reshape(tensor({1, kNaN, 3, 2}), {1, 4, 1}), 2), {kNaN, 3});
    expect_values(global_max_pool1d(reshape(tensor({kNaN, 1, 3}), {1, 3, 1})), {kNaN});
  }},
  {"max_pool1d: a stride longer than the sequence", [] {
    expect_values(max_pool1d(reshape(tensor({1, 5, 3}), {1, 3, 1}), 2, 5), {5});
  }},
  {"avg_pool1d: i64 input", [] {
    expect_error([] { avg_pool1d(zeros({1, 4, 1}, i64), 2); }, "avg_pool1d: expects a floating input.*i64");
  }},
  {"global_avg_pool1d: no time steps", [] {
    expect_error([] { global_avg_pool1d(zeros({2, 0, 3})); }, "global_avg_pool1d.*\\[2, 0, 3\\] has 0 time steps");
  }},
  // --- Dropout --------------------------------------------------------------------------------
  {"Dropout: p NaN", [] { expect_error([] { Dropout d(kNaN); }, "Dropout: p must be in.*nan"); }},
  {"Dropout: p outside [0, 1]", [] {
    expect_error([] { Dropout d(-0.1); }, "Dropout: p.*-0.1");
    expect_error([] { Dropout d(1.5); }, "Dropout: p.*1.5");
    expect_error([] { dropout(ones({3}), 2.0, true); }, "dropout: p.*2");
  }},
  {"Dropout: p = 1 zeroes everything in training, gradient 0 (PyTorch)", [] {
    Dropout d(1.0);
    Tensor x = ones({2, 3}, f64).requires_grad_();
    Tensor y = d(x);
    expect_values(y, {0, 0, 0, 0, 0, 0});
    sum(y).backward();
    expect_values(x.grad(), {0, 0, 0, 0, 0, 0});
    d.eval();
    expect_values(d(x), {1, 1, 1, 1, 1, 1});
  }},
  {"dropout: an i64 input in training", [] {
    expect_error([] { dropout(ones({3}, i64), 0.5, true); }, "dropout.*i64");
  }},
  // --- recurrent layers -------------------------------------------------------------------------
  {"LSTM: wrong input size", [] {
    LSTM lstm(3, 4);
    expect_error([&] { lstm(zeros({2, 5, 2})); }, "LSTM: expects input \\[B, T, 3\\], got \\[2, 5, 2\\]");
  }},
  {"LSTM: a length longer than T", [] {
    LSTM lstm(2, 3);
    expect_error([&] { lstm.run(zeros({2, 4, 2}), tensor({4, 5}, i64)); }, "length of 5 is outside \\[0, 4\\]");
  }},
  {"GRU: a negative length", [] {
    GRU gru(2, 3);
    expect_error([&] { gru.run(zeros({2, 4, 2}), tensor({-1, 2}, i64)); }, "length of -1 is outside");
  }},
  {"GRU: lengths of the wrong batch size or dtype", [] {
    GRU gru(2, 3);
    expect_error([&] { gru.run(zeros({2, 4, 2}), tensor({1, 2, 3}, i64)); }, "lengths must be i64 \\[2\\], got i64 \\[3\\]");
    expect_error([&] { gru.run(zeros({2, 4, 2}), tensor({1.0, 2.0})); }, "lengths must be i64 \\[2\\], got f32");
  }},
  {"RNN: num_layers 0", [] {
    expect_error([] { RNN rnn(2, 3, {.num_layers = 0}); }, "num_layers must be at least 1, got 0");
  }},
  {"LSTM: hidden size 0", [] {
    expect_error([] { LSTM lstm(2, 0); }, "hidden_size must be positive, got 2 and 0");
  }},
  {"LSTM: initial state of the wrong shape or count", [] {
    LSTM lstm(2, 3);
    Tensor x = zeros({2, 4, 2});
    expect_error([&] { lstm.run(x, {}, {{zeros({2, 4}), zeros({2, 3})}}); }, "initial state tensor is \\[2, 4\\], expected \\[2, 3\\]");
    expect_error([&] { lstm.run(x, {}, {{zeros({2, 3})}}); }, "initial state has 1 tensors, the cell keeps 2");
    expect_error([&] { lstm.run(x, {}, {{zeros({2, 3}), zeros({2, 3})}, {zeros({2, 3}), zeros({2, 3})}}); },
                 "2 initial states given, expected one per layer and direction \\(1\\)");
  }},
  {"LSTM: an input with no time steps", [] {
    LSTM lstm(2, 3);
    expect_error([&] { lstm(zeros({2, 0, 2})); }, "LSTM: input \\[2, 0, 2\\] has no time steps");
  }},
  {"GRU: f64 input into f32 weights", [] {
    GRU gru(2, 3);
    expect_error([&] { gru(zeros({1, 2, 2}, f64)); }, "GRU: input is f64.*parameters are f32");
  }},
  {"GRU stateful: another batch size names reset_states", [] {
    GRU gru(2, 3, {.stateful = true});
    gru(ones({2, 3, 2}));
    expect_error([&] { gru(ones({3, 3, 2})); }, "batch of 2.*batch of 3.*reset_states");
    gru.reset_states();
    expect(gru(ones({3, 3, 2})).shape() == Shape{3, 3, 3}, "a batch of 3 after reset_states");
  }},
  {"RNN: dropout NaN, and both of its names set", [] {
    expect_error([] { RNN rnn(2, 3, {.num_layers = 2, .dropout = kNaN}); }, "dropout probabilities must be in \\[0, 1\\], got nan");
    expect_error([] { GRU gru(2, 3, {.dropout = 0.2, .layer_dropout = 0.3}); }, "dropout.*layer_dropout.*0.2 and 0.3");
  }},
  {"RecurrentResult: a final state that does not exist", [] {
    LSTM lstm(2, 3);
    RecurrentResult r = lstm.run(zeros({1, 2, 2}));
    expect_error([&] { r.h(1); }, "no final state for layer 1");
    expect_error([&] { r.c(0, 1); }, "no final state for layer 0, direction 1");
  }},
  {"LSTM: NaN/Inf in post-padded steps gives finite gradients", [] {
    LSTM lstm(3, 4);
    masked_nonfinite_padding(lstm, PadSide::post);
  }},
  {"GRU bidirectional: NaN/Inf in pre-padded steps gives finite gradients", [] {
    GRU gru(3, 4, {.bidirectional = true});
    masked_nonfinite_padding(gru, PadSide::pre);
  }},
  {"LSTM: a sequence of length 0 keeps the initial state, outputs 0", [] {
    LSTM lstm(2, 3);
    RecurrentResult r = lstm.run(ones({2, 3, 2}), tensor({0, 3}, i64));
    expect_values(slice(r.output, 0, 0, 1), std::vector<double>(9, 0.0));
    expect_values(slice(r.h(), 0, 0, 1), {0, 0, 0});
    expect_values(slice(r.c(), 0, 0, 1), {0, 0, 0});
  }},
  // --- attention ------------------------------------------------------------------------------
  {"MultiheadAttention: embed_dim not divisible by num_heads", [] {
    expect_error([] { MultiheadAttention mha(6, 4); }, "embed_dim 6 must be a positive multiple of num_heads 4");
    expect_error([] { MultiheadAttention mha(6, 0); }, "num_heads 0");
    expect_error([] { MultiheadAttention mha(4, 2, kNaN); }, "dropout must be in \\[0, 1\\], got nan");
  }},
  {"MultiheadAttention: masks of the wrong shape", [] {
    MultiheadAttention mha(4, 2);
    Tensor q = zeros({2, 3, 4}), k = zeros({2, 5, 4});
    expect_error([&] { mha.forward(q, k, k, zeros({2, 3})); }, "key_padding_mask \\[2, 3\\] must be \\[B, Tk\\] = \\[2, 5\\]");
    expect_error([&] { mha.forward(q, k, k, {}, zeros({5, 3})); }, "attn_mask \\[5, 3\\] must be \\[Tq, Tk\\] = \\[3, 5\\]");
    expect_error([&] { mha.forward(q, k, k, {}, zeros({2, 3, 5})); }, "attn_mask \\[2, 3, 5\\].*\\[4, 3, 5\\]");
  }},
  {"MultiheadAttention: a query whose keys are all masked: zero output and gradients", [] {
    MultiheadAttention mha(4, 2);
    mha.to(f64);
    Tensor q = randn({1, 2, 4}, f64).requires_grad_(), k = randn({1, 3, 4}, f64).requires_grad_();
    Tensor mask = tensor({{1, 1, 1}, {0, 1, 0}}, i64);  // query 0 sees no key
    AttentionResult r = mha.forward(q, k, k, {}, mask);
    expect_values(slice(r.context, 1, 0, 1), {0, 0, 0, 0});  // out_proj of 0: its bias, 0 at first
    expect_values(slice(r.weights, 1, 0, 1), {0, 0, 0});
    const auto w1 = values_of(slice(r.weights, 1, 1, 2));
    expect(w1[1] == 0 && std::abs(w1[0] + w1[2] - 1) < 1e-12, "query 1 attends keys 0 and 2 only");
    sum(slice(r.context, 1, 0, 1)).backward();
    expect_values(q.grad(), std::vector<double>(8, 0.0));
    expect_values(k.grad(), std::vector<double>(12, 0.0));
    expect_values(mha.in_proj_weight.grad(), std::vector<double>(48, 0.0));
    expect_values(mha.out_proj->bias.grad(), {1, 1, 1, 1});
  }},
  {"MultiheadAttention: key and value of different lengths, or f64 into f32", [] {
    MultiheadAttention mha(4, 2);
    expect_error([&] { mha.forward(zeros({1, 2, 4}), zeros({1, 3, 4}), zeros({1, 2, 4})); }, "MultiheadAttention: expected.*\\[1, 3, 4\\]");
    expect_error([&] { mha.forward(zeros({1, 2, 4}, f64), zeros({1, 3, 4}, f64), zeros({1, 3, 4}, f64)); }, "MultiheadAttention.*f64.*f32|MultiheadAttention.*f32.*f64");
  }},
  {"MultiheadAttention: no keys at all gives the out_proj bias (0)", [] {
    MultiheadAttention mha(4, 2);
    AttentionResult r = mha.forward(ones({1, 2, 4}), zeros({1, 0, 4}), zeros({1, 0, 4}));
    expect(r.weights.shape() == Shape{1, 2, 0}, "weights [1, 2, 0]");
    expect_values(r.context, std::vector<double>(8, 0.0));
  }},
  {"BahdanauAttention: every key masked gives a zero context", [] {
    BahdanauAttention att(2, 2, 3);
    AttentionResult r = att.forward(ones({1, 1, 2}), ones({1, 3, 2}), ones({1, 3, 2}), ones({1, 3}, i64));
    expect_values(r.context, {0, 0});
    expect_values(r.weights, {0, 0, 0});
  }},
  {"scaled_dot_product_attention: a mask that does not broadcast", [] {
    Tensor q = zeros({2, 3, 4}), k = zeros({2, 5, 4});
    expect_error([&] { scaled_dot_product_attention(q, k, k, zeros({3, 4})); }, "mask \\[3, 4\\] does not broadcast.*\\[2, 3, 5\\]");
  }},
  // --- Module ---------------------------------------------------------------------------------
  {"Sequential added to itself", [] {
    auto s = std::make_shared<Sequential>();
    s->add(std::make_shared<Linear>(2, 2));
    expect_error([&] { s->add(s); }, "Sequential.*cycle");
    expect(s->size() == 1 && s->parameters().size() == 2, "the Sequential unchanged");
  }},
  {"Sequential added to its own child", [] {
    auto outer = std::make_shared<Sequential>(), inner = std::make_shared<Sequential>();
    outer->add(inner);
    expect_error([&] { inner->add(outer); }, "Sequential.*cycle");
    expect(outer->named_modules().size() == 2, "the tree unchanged");
  }},
  {"Sequential: a null module", [] {
    Sequential s;
    expect_error([&] { s.add(nullptr); }, "Sequential: register_module\\('0'\\) of a null module");
  }},
  {"Module: two children under one name", [] {
    expect_error([] { TwoSameNames m; }, "the name 'head' is registered twice");
  }},
  {"load_state_dict: a missing key leaves the module unchanged", [] {
    auto lin = known_linear();
    const auto before = snapshot(*lin);
    expect_error([&] { lin->load_state_dict({{"weight", zeros({2, 2})}}); }, "load_state_dict into Linear: missing 'bias' \\[2\\]");
    expect(snapshot(*lin) == before, "the parameters unchanged");
  }},
  {"load_state_dict: an unexpected key leaves the module unchanged", [] {
    auto lin = known_linear();
    const auto before = snapshot(*lin);
    expect_error([&] { lin->load_state_dict({{"weight", zeros({2, 2})}, {"bias", zeros({2})}, {"scale", zeros({1})}}); },
                 "unexpected 'scale' \\[1\\]");
    expect(snapshot(*lin) == before, "the parameters unchanged");
  }},
  {"load_state_dict: a wrong shape leaves the module unchanged", [] {
    auto lin = known_linear();
    const auto before = snapshot(*lin);
    expect_error([&] { lin->load_state_dict({{"weight", zeros({2, 2})}, {"bias", zeros({3})}}); },
                 "'bias' has shape \\[3\\], the module expects \\[2\\]");
    expect(snapshot(*lin) == before, "the parameters unchanged");
  }},
  {"load_state_dict: a wrong dtype leaves the module unchanged", [] {
    auto lin = known_linear();
    const auto before = snapshot(*lin);
    expect_error([&] { lin->load_state_dict({{"weight", zeros({2, 2})}, {"bias", zeros({2}, i64)}}); },
                 "'bias' is i64, the module expects f32");
    expect(snapshot(*lin) == before, "the parameters unchanged");
  }},
  {"load_state_dict: an undefined tensor names its key", [] {
    auto lin = known_linear();
    const auto before = snapshot(*lin);
    expect_error([&] { lin->load_state_dict({{"weight", zeros({2, 2})}, {"bias", Tensor()}}); },
                 "load_state_dict into Linear: 'bias' is an undefined tensor");
    expect(snapshot(*lin) == before, "the parameters unchanged");
  }},
  {"load_state_dict: f64 values load into f32 parameters (PyTorch casts)", [] {
    auto lin = known_linear();
    lin->load_state_dict({{"weight", tensor({{0.5, 1.5}, {2.5, 3.5}}, f64)}, {"bias", tensor({-1, -2}, f64)}});
    expect_values(lin->weight, {0.5, 1.5, 2.5, 3.5});
    expect_values(lin->bias, {-1, -2});
    expect(lin->weight.dtype() == f32, "the parameter stays f32");
  }},
  {"Module::to(i64) is refused (PyTorch: floating dtypes only)", [] {
    auto lin = known_linear();
    expect_error([&] { lin->to(i64); }, "Linear: to\\(i64\\): a module converts only to a floating dtype");
    expect(lin->weight.dtype() == f32 && lin->weight.requires_grad(), "the parameters unchanged");
  }},
}};

Register losses{"losses", {
  {"cross_entropy: target equal to the number of classes", [] {
    expect_error([] { cross_entropy(zeros({2, 3}), tensor({0, 3}, i64)); }, "cross_entropy: target 3 is out of range for 3 classes");
  }},
  {"cross_entropy: negative target that is not ignore_index", [] {
    expect_error([] { cross_entropy(zeros({2, 3}), tensor({-1, 0}, i64)); }, "cross_entropy: target -1 is out of range");
  }},
  {"nll_loss: f32 targets", [] {
    expect_error([] { nll_loss(zeros({2, 3}), tensor({0.0, 1.0})); }, "nll_loss: target must hold i64.*f32");
  }},
  {"cross_entropy: targets of another batch", [] {
    expect_error([] { cross_entropy(zeros({2, 3}), tensor({0, 1, 2}, i64)); }, "cross_entropy: target \\[3\\].*\\[2, 3\\]");
  }},
  {"cross_entropy: integer logits", [] {
    expect_error([] { cross_entropy(zeros({2, 3}, i64), tensor({0, 1}, i64)); }, "cross_entropy: scores must be floating.*i64");
  }},
  {"nll_loss: rank-0 scores", [] {
    expect_error([] { nll_loss(scalar(1), scalar(0, i64)); }, "nll_loss: scores must be floating point \\[..., classes\\]");
  }},
  {"mse_loss: shapes [3] and [3, 1]", [] {
    expect_error([] { mse_loss(zeros({3}), zeros({3, 1})); }, "mse_loss: prediction \\[3\\] and target \\[3, 1\\]");
  }},
  {"losses: an unknown reduction", [] {
    const auto bad = static_cast<Reduction>(7);
    expect_error([&] { mse_loss(zeros({2}), zeros({2}), bad); }, "unknown reduction 7");
    expect_error([&] { cross_entropy(zeros({2, 3}), tensor({0, 1}, i64), -100, bad); }, "unknown reduction 7");
  }},
  {"bce_with_logits: targets outside [0, 1] are accepted (PyTorch)", [] {
    Tensor loss = bce_with_logits(tensor({0.5, -2.0}, f64), tensor({2.0, -1.0}, f64), Reduction::none);
    expect_values(loss, {std::log1p(std::exp(0.5)) - 0.5 * 2.0, std::log1p(std::exp(-2.0)) - (-2.0 * -1.0)}, 1e-15);
  }},
  {"bce_with_logits: huge logits stay finite", [] {
    Tensor x = tensor({1000.0, -1000.0, 1000.0}, f64).requires_grad_();
    Tensor loss = bce_with_logits(x, tensor({0.0, 1.0, 1.0}, f64), Reduction::none);
    expect_values(loss, {1000, 1000, 0});
    sum(loss).backward();
    expect_values(x.grad(), {1, -1, 0});
  }},
  {"mse_loss: mean over an empty batch is NaN (PyTorch), sum is 0", [] {
    expect_values(mse_loss(zeros({0, 2}), zeros({0, 2})), {kNaN});
    expect_values(mse_loss(zeros({0, 2}), zeros({0, 2}), Reduction::sum), {0});
  }},
  {"cross_entropy: an empty batch: NaN mean (PyTorch), sum 0", [] {
    expect_values(cross_entropy(zeros({0, 3}), zeros({0}, i64)), {kNaN});
    expect_values(cross_entropy(zeros({0, 3}), zeros({0}, i64), -100, Reduction::sum), {0});
  }},
  {"cross_entropy: every target ignored gives NaN mean (PyTorch)", [] {
    expect_values(cross_entropy(zeros({2, 3}), tensor({-100, -100}, i64)), {kNaN});
    expect_values(cross_entropy(zeros({2, 3}), tensor({-100, -100}, i64), -100, Reduction::sum), {0});
  }},
  {"cross_entropy: ignored rows leave the mean and get no gradient", [] {
    Tensor logits = tensor({{0.0, 0.0}, {5.0, -5.0}, {1.0, 3.0}}, f64).requires_grad_();
    Tensor loss = cross_entropy(logits, tensor({0, 1, 1}, i64), /*ignore_index=*/1);
    expect_values(loss, {std::log(2.0)}, 1e-15);
    loss.backward();
    expect_values(logits.grad(), {-0.5, 0.5, 0, 0, 0, 0}, 1e-15);
  }},
  {"nll_loss: an ignore_index outside the class range is still ignored", [] {
    Tensor lp = tensor({{-1.0, -2.0}, {-3.0, -4.0}}, f64);
    expect_values(nll_loss(lp, tensor({1, 7}, i64), 7), {2});
    expect_values(nll_loss(lp, tensor({1, 7}, i64), 7, Reduction::none), {2, 0});
  }},
  {"cross_entropy: -inf logits", [] {
    expect_values(cross_entropy(tensor({{0.0, -kInf}}, f64), tensor({0}, i64)), {0});
    expect_values(cross_entropy(tensor({{0.0, -kInf}}, f64), tensor({1}, i64)), {kInf});
  }},
  {"cross_entropy: huge logits stay exact", [] {
    Tensor logits = tensor({{1000.0, 0.0}, {-1e300, 1e300}}, f64).requires_grad_();
    Tensor loss = cross_entropy(logits, tensor({1, 1}, i64), -100, Reduction::none);
    expect_values(loss, {1000, 0});
    sum(loss).backward();
    expect_values(logits.grad(), {1, -1, 0, 0});
  }},
  {"cross_entropy: [B, T, C] logits with targets [B, T]", [] {
    Tensor logits = zeros({2, 3, 4}, f64);
    expect_values(cross_entropy(logits, zeros({2, 3}, i64)), {std::log(4.0)}, 1e-15);
    expect_error([&] { cross_entropy(logits, zeros({3, 2}, i64)); }, "target \\[3, 2\\] must be the scores' shape \\[2, 3, 4\\]");
  }},
  {"mse_loss: an i64 prediction", [] {
    expect_error([] { mse_loss(zeros({2}, i64), zeros({2}, i64)); }, "mse_loss: prediction must be floating point, got i64");
  }},
  {"l1_loss: a NaN target", [] {
    expect_values(l1_loss(tensor({1.0, 2.0}), tensor({kNaN, 4.0}), Reduction::none), {kNaN, 2});
  }},
}};
// clang-format on

}  // namespace
}  // namespace xgrad::attacks
