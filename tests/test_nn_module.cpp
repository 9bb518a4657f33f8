// nn/module, Linear, Embedding, Dropout, Sequential, summary: registration and dotted names,
// layer values against plain loops, gradients, train/eval, dtype conversion, strict state_dict
// loading that leaves the module unchanged on failure, safetensors save/load.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include <unistd.h>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::nn;
using namespace xgrad::testing;

namespace {

using Values = std::vector<double>;

/// Exposes the protected registration calls.
struct Open : Module {
  using Module::register_buffer;
  using Module::register_module;
  using Module::register_parameter;
  std::string type_name() const override { return "Open"; }
};

struct Block : UnaryModule {
  std::shared_ptr<Linear> fc, proj;
  std::shared_ptr<Dropout> drop;
  Block() {
    fc = register_module("fc", std::make_shared<Linear>(4, 3));
    drop = register_module("drop", std::make_shared<Dropout>(0.5));
    proj = register_module("proj", std::make_shared<Linear>(3, 3, false));
  }
  std::string type_name() const override { return "Block"; }
  Tensor forward(const Tensor& x) override { return (*proj)(tanh((*drop)((*fc)(x)))); }
};

/// A nested model: own parameter and buffers registered between submodules.
struct Net : Module {
  std::shared_ptr<Embedding> embed;
  std::shared_ptr<Block> block;
  std::shared_ptr<Linear> head;
  Tensor scale, running, steps;
  explicit Net(std::uint64_t seed) {
    manual_seed(seed);
    embed = register_module("embed", std::make_shared<Embedding>(10, 4));
    block = register_module("block", std::make_shared<Block>());
    scale = register_parameter("scale", uniform({3}, 0.5, 1.5));
    head = register_module("head", std::make_shared<Linear>(3, 2));
    running = register_buffer("running", uniform({3}));
    steps = register_buffer("steps", scalar(static_cast<double>(seed), i64));
  }
  std::string type_name() const override { return "Net"; }
  Tensor forward(const Tensor& ids) { return (*head)((*block)((*embed)(ids)) * scale + running); }
};

Tensor net_ids() { return tensor({{1, 0, 9}, {3, 3, 4}}, i64); }

/// Every parameter and buffer's values, by name.
std::vector<std::pair<std::string, Values>> snapshot(const Module& m) {
  std::vector<std::pair<std::string, Values>> out;
  for (const auto& [name, t] : m.state_dict()) out.emplace_back(name, t.to_vector<double>());
  return out;
}

std::vector<std::string> names_of(const NamedTensors& named) {
  std::vector<std::string> out;
  for (const auto& entry : named) out.push_back(entry.first);
  return out;
}

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

}  // namespace

TEST_CASE("Module: registration gives dotted names: own entries first, then submodules in registration order") {
  Net net(1);  // as PyTorch orders named_parameters()
  CHECK(names_of(net.named_parameters()) == std::vector<std::string>{"scale", "embed.weight", "block.fc.weight",
                                                                     "block.fc.bias", "block.proj.weight",
                                                                     "head.weight", "head.bias"});
  CHECK(names_of(net.named_buffers()) == std::vector<std::string>{"running", "steps"});
  std::vector<std::string> modules;
  for (const auto& [name, m] : net.named_modules()) modules.push_back(name + ":" + m->type_name());
  CHECK(modules == std::vector<std::string>{":Net", "embed:Embedding", "block:Block", "block.fc:Linear",
                                            "block.drop:Dropout", "block.proj:Linear", "head:Linear"});
  CHECK(net.children().size() == 3);
  CHECK(net.parameters().size() == 7);
  CHECK(net.parameter_count() == 3 + 10 * 4 + (4 * 3 + 3) + 3 * 3 + (3 * 2 + 2));
  // the handles the layers hold are the registered tensors
  CHECK(net.parameters()[5].is_same(net.head->weight));
  CHECK(net.named_parameters()[1].second.is_same(net.embed->weight));
  for (const Tensor& p : net.parameters()) CHECK(p.requires_grad());
  CHECK_FALSE(net.running.requires_grad());
  std::vector<std::string> keys = names_of(net.state_dict());  // parameters and buffers, order aside
  std::sort(keys.begin(), keys.end());
  CHECK(keys == std::vector<std::string>{"block.fc.bias", "block.fc.weight", "block.proj.weight", "embed.weight",
                                         "head.bias", "head.weight", "running", "scale", "steps"});
}

TEST_CASE("Module: bad registrations throw and register nothing") {
  Open m;
  Tensor w = ones({2});
  CHECK(m.register_parameter("w", w).is_same(w));
  CHECK(w.requires_grad());
  CHECK_FALSE(m.register_parameter("frozen", ones({1}), false).requires_grad());
  m.register_buffer("buf", zeros({1}));
  m.register_module("sub", std::make_shared<Linear>(1, 1));
  CHECK(matches(error_of([&] { m.register_parameter("w", ones({1})); }), "^Open: the name 'w' is registered twice"));
  CHECK(matches(error_of([&] { m.register_buffer("w", ones({1})); }), "the name 'w' is registered twice"));
  CHECK(matches(error_of([&] { m.register_parameter("buf", ones({1})); }), "the name 'buf' is registered twice"));
  CHECK(matches(error_of([&] { m.register_module("sub", std::make_shared<Linear>(1, 1)); }), "'sub' is registered twice"));
  CHECK(matches(error_of([&] { m.register_module("w", std::make_shared<Linear>(1, 1)); }), "'w' is registered twice"));
  CHECK(matches(error_of([&] { m.register_parameter("a.b", ones({1})); }),
                R"(^Open: 'a\.b' is not a valid name \(non-empty, without dots\))"));
  CHECK(matches(error_of([&] { m.register_module("x.y", std::make_shared<Linear>(1, 1)); }), R"('x\.y' is not a valid name)"));
  CHECK(matches(error_of([&] { m.register_buffer("", ones({1})); }), "'' is not a valid name"));
  CHECK(matches(error_of([&] { m.register_module("null", std::shared_ptr<Linear>()); }),
                R"(register_module\('null'\) of a null module)"));
  CHECK(names_of(m.named_parameters()) == std::vector<std::string>{"w", "frozen", "sub.weight", "sub.bias"});
  CHECK(names_of(m.named_buffers()) == std::vector<std::string>{"buf"});
  CHECK(m.children().size() == 1);
}

TEST_CASE("Linear: y = x W^T + b, against a plain loop") {
  Linear lin(4, 3);
  lin.weight.copy_(tensor({{1, -2, 0.5, 3}, {0.25, 1, -1, 2}, {-3, 0, 2, 1}}));
  lin.bias.copy_(tensor({0.5, -1, 2}));
  const Tensor x = tensor({{1, 2, 3, 4}, {-1, 0.5, 0, 2}});
  // exactly representable values: every summation order gives the same floats
  check_values(lin(x), {2, 3}, {11, 6.25, 9, 4.5, 3.25, 7});

  lin.to(f64);
  const Tensor x3 = input({2, 3, 4}, -2, 2, 7);
  const Tensor y = lin(x3);
  REQUIRE(y.shape() == Shape{2, 3, 3});
  CHECK(y.dtype() == f64);
  const Values xv = x3.to_vector<double>(), wv = lin.weight.to_vector<double>(), bv = lin.bias.to_vector<double>();
  Tensor expected = empty({2, 3, 3}, f64);
  for (int r = 0; r < 6; ++r)
    for (int o = 0; o < 3; ++o) {
      double s = bv[o];
      for (int i = 0; i < 4; ++i) s += xv[r * 4 + i] * wv[o * 4 + i];
      expected.data<double>()[r * 3 + o] = s;
    }
  check_close(y, expected, 1e-13);

  Linear no_bias(4, 3, false);
  CHECK(names_of(no_bias.named_parameters()) == std::vector<std::string>{"weight"});
  no_bias.weight.copy_(lin.weight);
  check_close(no_bias(x3.to(f32)).to(f64), (y - lin.bias).detach(), 1e-5);
  CHECK(no_bias.parameter_count() == 12);

  CHECK(matches(error_of([&] { lin(ones({2, 5}, f64)); }),
                R"(^linear: input \[2, 5\] does not match weight \[3, 4\] \(in_features 4\))"));
  CHECK(matches(error_of([&] { lin(scalar(1, f64)); }), R"(^linear: input \[\] does not match)"));
}

TEST_CASE("Linear: default initialisation within 1/sqrt(in_features)") {
  manual_seed(3);
  for (std::int64_t in : {1, 3, 64}) {
    Linear lin(in, 50);
    const double bound = 1 / std::sqrt(static_cast<double>(in));
    INFO("in_features ", in);
    CHECK((lin.weight.dtype() == f32 && lin.weight.shape() == Shape{50, in} && lin.bias.shape() == Shape{50}));
    CHECK(max_abs(lin.weight) <= bound * (1 + 1e-6));
    CHECK(max_abs(lin.bias) <= bound * (1 + 1e-6));
    CHECK(max_abs(lin.weight) > 0.5 * bound);  // spread over the range, not all zero
    CHECK(max_abs(lin.bias) > 0.5 * bound);
    CHECK(std::abs(mean(lin.weight).item()) < 0.2 * bound);
  }
}

TEST_CASE("Linear: f64 gradients w.r.t. input, weight and bias") {
  Linear lin(4, 3);
  lin.to(f64);
  check_gradients([&](const std::vector<Tensor>& in) { return lin(in[0]); }, {input({5, 4}), lin.weight, lin.bias});
  check_gradients([&](const std::vector<Tensor>& in) { return tanh(lin(in[0])); },
                  {input({2, 3, 4}, -1, 1, 2), lin.weight, lin.bias});
}

TEST_CASE("Embedding: lookup, padding_idx, accumulated gradients, freeze, errors") {
  manual_seed(4);
  Embedding emb(5, 3, 0);
  CHECK((emb.weight.shape() == Shape{5, 3} && emb.weight.requires_grad()));
  const Values w = emb.weight.to_vector<double>();
  CHECK(Values(w.begin(), w.begin() + 3) == Values{0, 0, 0});  // the padding row starts at zero
  CHECK(max_abs(slice(emb.weight, 0, 1, 5)) > 0);

  const Tensor ids = tensor({{1, 0, 3}, {3, 3, 4}}, i64);
  const Tensor y = emb(ids);
  REQUIRE(y.shape() == Shape{2, 3, 3});
  Values expected;
  for (auto id : ids.to_vector<std::int64_t>()) expected.insert(expected.end(), w.begin() + 3 * id, w.begin() + 3 * id + 3);
  CHECK(y.to_vector<double>() == expected);

  const Tensor g = reshape(arange(1, 19), {2, 3, 3});
  y.backward(g);
  REQUIRE(emb.weight.grad().defined());
  // row 0 (padding): zero; row 1: g[0,0]; row 2 unused; row 3: g[0,2] + g[1,0] + g[1,1]; row 4: g[1,2]
  check_values(emb.weight.grad(), {5, 3}, {0, 0, 0, 1, 2, 3, 0, 0, 0, 7 + 10 + 13, 8 + 11 + 14, 9 + 12 + 15, 16, 17, 18});

  Embedding last(4, 2, -1);
  REQUIRE(last.padding_idx.has_value());
  CHECK(*last.padding_idx == 3);
  CHECK(last(tensor({3}, i64)).to_vector<double>() == Values{0, 0});
  CHECK(last(scalar(2, i64)).shape() == Shape{2});  // rank-0 ids give one row
  CHECK(matches(error_of([] { Embedding(5, 3, 5); }), "^Embedding: padding_idx 5 is out of range for 5 embeddings"));
  CHECK(matches(error_of([] { Embedding(5, 3, -6); }), "padding_idx -6 is out of range"));

  Embedding frozen(5, 3, std::nullopt, true);
  CHECK_FALSE(frozen.weight.requires_grad());
  CHECK(frozen.parameters().size() == 1);
  CHECK_FALSE(frozen(ids).requires_grad());

  CHECK(matches(error_of([&] { emb(tensor({1, 2})); }), R"(^Embedding: ids must be i64, got f32 \[2\])"));
  CHECK(matches(error_of([&] { emb(tensor({1, 5}, i64)); }),
                R"(^Embedding: id 5 is out of range for a table of 5 embeddings \(ids shape \[2\]\))"));
  CHECK(matches(error_of([&] { emb(tensor({-1}, i64)); }), R"(^Embedding: id -1 is out of range)"));
}

TEST_CASE("Embedding: f64 gradients w.r.t. the weight") {
  Embedding emb(6, 3);
  emb.to(f64);
  CHECK(emb.weight.dtype() == f64);
  const Tensor ids = tensor({{0, 2, 2, 5}, {1, 2, 0, 0}}, i64);
  check_gradients([&](const std::vector<Tensor>&) { return tanh(emb(ids)); }, {emb.weight});
}

TEST_CASE("Dropout: identity in eval, inverted dropout in training, p checked") {
  Dropout drop(0.3);
  CHECK(drop.parameters().empty());
  const Tensor x = input({200000}, 0.5, 1.5, 5);
  drop.eval();
  CHECK(drop(x).to_vector<double>() == x.to_vector<double>());

  drop.train();
  const Tensor y = drop(x);
  CHECK(y.dtype() == f64);
  sum(y).backward();
  const Values xv = x.to_vector<double>(), yv = y.to_vector<double>(), gv = x.grad().to_vector<double>();
  std::size_t zeros_seen = 0, wrong = 0;
  for (std::size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0) zeros_seen += 1, wrong += gv[i] != 0;  // the gradient is the mask
    else wrong += std::abs(yv[i] - xv[i] / 0.7) > 1e-12 || gv[i] != 1 / 0.7;
  }
  CHECK(std::abs(static_cast<double>(zeros_seen) / xv.size() - 0.3) < 0.01);  // standard deviation 0.001
  CHECK(wrong == 0);
  // the expectation is preserved: sum(y) / sum(x) near 1 (standard deviation about 0.0015)
  CHECK(std::abs(sum(y).item() / sum(x).item() - 1) < 0.01);
  // two calls draw different masks; a generator makes them reproducible
  CHECK(drop(x).to_vector<double>() != yv);
  Generator g1(9), g2(9);
  CHECK(dropout(x, 0.5, true, &g1).to_vector<double>() == dropout(x, 0.5, true, &g2).to_vector<double>());

  CHECK(dropout(x, 0, true).to_vector<double>() == x.to_vector<double>());
  CHECK(Dropout(0.5)(ones({4})).dtype() == f32);
  CHECK(dropout(x, 1.0, true).to_vector<double>() == std::vector<double>(x.numel(), 0.0));  // PyTorch: all dropped
  CHECK(dropout_mask({3}, 1.0, f32).to_vector<float>() == std::vector<float>{0, 0, 0});
  CHECK(matches(error_of([] { Dropout(1.5); }), R"(^Dropout: p must be in \[0, 1\], got 1.5)"));
  CHECK(matches(error_of([] { Dropout(-0.1); }), R"(^Dropout: p must be in \[0, 1\], got -0.1)"));
  CHECK(matches(error_of([] { Dropout(std::nan("")); }), R"(^Dropout: p must be in \[0, 1\], got nan)"));
  CHECK(matches(error_of([&] { dropout(x, 1.5, true); }), R"(^dropout: p must be in \[0, 1\], got 1.5)"));
}

TEST_CASE("Module: train/eval propagate, zero_grad drops gradients") {
  Net net(1);
  for (const auto& [name, m] : net.named_modules()) CHECK(m->is_training());
  net.eval();
  for (const auto& [name, m] : net.named_modules()) CHECK_FALSE_MESSAGE(m->is_training(), name);
  // no dropout in eval: the same output every time
  CHECK(net.forward(net_ids()).to_vector<double>() == net.forward(net_ids()).to_vector<double>());
  net.block->train();  // a subtree only
  CHECK(net.block->drop->is_training());
  CHECK_FALSE(net.is_training());
  CHECK_FALSE(net.head->is_training());
  net.train();
  for (const auto& [name, m] : net.named_modules()) CHECK(m->is_training());

  net.eval();
  sum(net.forward(net_ids())).backward();
  for (const auto& [name, p] : net.named_parameters()) CHECK_MESSAGE(p.grad().defined(), name);
  net.zero_grad();
  for (const auto& [name, p] : net.named_parameters()) CHECK_FALSE_MESSAGE(p.grad().defined(), name);
}

TEST_CASE("Module: to(f64) converts parameters and floating buffers in place") {
  Net net(2);
  net.eval();
  const Tensor y32 = net.forward(net_ids());
  sum(y32).backward();
  const auto before = snapshot(net);
  net.to(f64);
  for (const auto& [name, p] : net.named_parameters()) {
    INFO(name);
    CHECK(p.dtype() == f64);
    CHECK(p.requires_grad());
    CHECK_FALSE(p.grad().defined());  // the old f32 gradient is dropped
  }
  // the handles held by the layers see the new dtype
  for (const Tensor& t : {net.head->weight, net.embed->weight, net.block->proj->weight, net.scale, net.running})
    CHECK(t.dtype() == f64);
  CHECK(net.steps.dtype() == i64);  // integer buffers keep their dtype
  CHECK(snapshot(net) == before);   // f32 -> f64 is exact
  const Tensor y64 = net.forward(net_ids());
  CHECK(y64.dtype() == f64);
  check_close(y64, y32.to(f64).detach(), 1e-5);

  // the whole model in f64: gradients w.r.t. every parameter
  check_gradients([&](const std::vector<Tensor>&) { return net.forward(net_ids()); }, net.parameters());

  net.to(f32);
  CHECK(net.head->weight.dtype() == f32);
  CHECK(net.forward(net_ids()).dtype() == f32);
}

TEST_CASE("Module: state_dict round trip and strict load_state_dict") {
  Net a(1), b(2);
  a.eval();
  b.eval();
  REQUIRE(a.forward(net_ids()).to_vector<double>() != b.forward(net_ids()).to_vector<double>());
  b.load_state_dict(a.state_dict());
  CHECK(b.forward(net_ids()).to_vector<double>() == a.forward(net_ids()).to_vector<double>());
  CHECK(snapshot(b) == snapshot(a));
  CHECK(b.steps.item<std::int64_t>() == 1);
  // the state_dict shares the module's data but not its graph
  StateDict sd = a.state_dict();
  CHECK_FALSE(sd[0].second.requires_grad());
  sd[0].second.copy_(zeros({3}));
  CHECK(a.scale.to_vector<double>() == Values{0, 0, 0});

  Net c(3);
  const auto original = snapshot(c);
  auto rejected = [&](const StateDict& state, const std::string& pattern) {
    const std::string message = error_of([&] { c.load_state_dict(state); });
    INFO(message);
    CHECK(matches(message, "^load_state_dict"));
    CHECK(matches(message, pattern));
    CHECK(snapshot(c) == original);  // nothing was copied, not even the valid entries
  };
  // a full state of other values with `name` removed (t undefined), replaced or added
  auto with = [&](const std::string& name, Tensor t = {}) {
    StateDict s = Net(4).state_dict();
    std::erase_if(s, [&](const auto& e) { return e.first == name; });
    if (t.defined()) s.emplace_back(name, t);
    return s;
  };
  auto without = [&](const std::string& name) { return with(name); };
  rejected(without("head.bias"), R"(^load_state_dict into Net: missing 'head\.bias' \[2\])");
  rejected(without("steps"), R"(missing 'steps' \[\])");
  rejected(with("head.extra", ones({2})), R"(unexpected 'head\.extra' \[2\])");
  rejected(with("block.fc.weight", zeros({4, 3})), R"('block\.fc\.weight' has shape \[4, 3\], the module expects \[3, 4\])");
  rejected(with("embed.weight", zeros({40})), R"('embed\.weight' has shape \[40\], the module expects \[10, 4\])");
  rejected(with("scale", zeros({3}, i64)), R"('scale' is i64, the module expects f32)");
  rejected(with("steps", scalar(1.5, f64)), R"('steps' is f64, the module expects i64)");
  StateDict twice = Net(4).state_dict();
  twice.push_back(twice.front());
  rejected(twice, "^load_state_dict: 'scale' appears twice");
  // several problems are reported together
  StateDict many = without("head.bias");
  many.emplace_back("extra", ones({1}));
  rejected(many, R"(missing 'head\.bias'.*; unexpected 'extra')");
  rejected({}, R"(missing 'scale' \[3\]; missing 'running' \[3\]; missing 'steps' \[\]; missing 'embed\.weight' \[10, 4\])");

  // values of another floating dtype are converted
  Net d(5);
  d.to(f64);
  c.load_state_dict(d.state_dict());
  CHECK(c.scale.dtype() == f32);
  check_close(c.scale.to(f64), d.scale, 1e-7);
}

TEST_CASE("Module: save/load through safetensors; a bad file leaves the model unchanged") {
  namespace fs = std::filesystem;
  TempDir dir("nn_module");
  const std::string path = (dir.path / "net.safetensors").string();
  Net a(1), b(2);
  a.save(path);
  CHECK_FALSE(fs::exists(path + ".tmp"));
  CHECK(names_of(load_safetensors(path)) == names_of(a.state_dict()));
  b.load(path);
  CHECK(snapshot(b) == snapshot(a));
  a.eval();
  b.eval();
  CHECK(b.forward(net_ids()).to_vector<double>() == a.forward(net_ids()).to_vector<double>());

  Net c(3);
  const auto original = snapshot(c);
  // a truncated file
  std::string bytes = serialize_safetensors(a.state_dict());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() - 4);
  CHECK(matches(error_of([&] { c.load(path); }), R"(^safetensors: .*net\.safetensors: )"));
  CHECK(snapshot(c) == original);
  // a valid file of another architecture: the error names the key and the file
  Linear(3, 2).save(path);
  const std::string message = error_of([&] { c.load(path); });
  CHECK(matches(message, R"(^load_state_dict into Net: .*unexpected 'weight' \[2, 3\])"));
  CHECK(matches(message, R"(\(from .*net\.safetensors\)$)"));
  CHECK(snapshot(c) == original);
  CHECK(matches(error_of([&] { c.load((dir.path / "missing.safetensors").string()); }), "cannot open .*missing"));
}

TEST_CASE("Sequential: positional names, chained forward") {
  manual_seed(6);
  auto first = std::make_shared<Linear>(4, 3);
  auto second = std::make_shared<Linear>(3, 2);
  Sequential seq{first, std::make_shared<ReLU>(), second};
  CHECK((seq.type_name() == "Sequential" && seq.size() == 3));
  CHECK(names_of(seq.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  std::vector<std::string> children;
  for (const auto& [name, m] : seq.children()) children.push_back(name + ":" + m->type_name());
  CHECK(children == std::vector<std::string>{"0:Linear", "1:ReLU", "2:Linear"});
  const Tensor x = uniform({5, 4}, -1, 1);
  CHECK(seq(x).to_vector<double>() == (*second)(relu((*first)(x))).to_vector<double>());
  seq.add(std::make_shared<Tanh>()).add(std::make_shared<Sigmoid>());
  CHECK((seq.size() == 5 && seq.children()[4].first == "4"));
  CHECK(seq(x).to_vector<double>() == sigmoid(tanh((*second)(relu((*first)(x))))).to_vector<double>());
  CHECK(Sequential()(x).to_vector<double>() == x.to_vector<double>());
  CHECK(matches(error_of([&] { seq(ones({5, 3})); }), R"(^linear: input \[5, 3\] does not match weight \[3, 4\])"));
}

TEST_CASE("summary: Keras-style table of output shapes and parameter counts") {
  Sequential seq{std::make_shared<Linear>(4, 3), std::make_shared<ReLU>(), std::make_shared<Linear>(3, 2)};
  const std::string s = summary(seq, {5, 4});
  INFO(s);
  CHECK(matches(s, R"(^Layer \(type\) +Output Shape +Param #\n=+\n)"));
  CHECK(matches(s, R"(\n0 \(Linear\) +\[5, 3\] +15\n)"));
  CHECK(matches(s, R"(\n1 \(ReLU\) +\[5, 3\] +0\n)"));
  CHECK(matches(s, R"(\n2 \(Linear\) +\[5, 2\] +8\n=+\n)"));
  CHECK(matches(s, "\nTotal params: 23\nTrainable params: 23\nNon-trainable params: 0\n$"));
  CHECK_FALSE(matches(s, R"(Sequential)"));  // the model itself is not a row

  Sequential frozen{std::make_shared<Embedding>(10, 4, std::nullopt, true), std::make_shared<Linear>(4, 1000)};
  const std::string f = summary(frozen, {2, 5}, i64);
  INFO(f);
  CHECK(matches(f, R"(\n0 \(Embedding\) +\[2, 5, 4\] +40\n)"));
  CHECK(matches(f, R"(\n1 \(Linear\) +\[2, 5, 1000\] +5,000\n)"));
  CHECK(matches(f, "Total params: 5,040\nTrainable params: 5,000\nNon-trainable params: 40\n"));
  Sequential big{std::make_shared<Linear>(1000, 1000)};
  CHECK(matches(summary(big, {1, 1000}), R"(0 \(Linear\) +\[1, 1000\] +1,001,000\n[^]*Total params: 1,001,000\n)"));

  // a nested model through a run function: every called module is a row, in tree order
  Net net(1);
  const std::string n = summary(net, [&] { net.forward(net_ids()); });
  INFO(n);
  CHECK(matches(n, R"(\nembed \(Embedding\) +\[2, 3, 4\] +40\n)"));
  CHECK(matches(n, R"(\nblock \(Block\) +\[2, 3, 3\] +24\n)"));
  CHECK(matches(n, R"(block\.fc \(Linear\) +\[2, 3, 3\] +15\n)"));
  CHECK(matches(n, R"(block\.drop \(Dropout\) +\[2, 3, 3\] +0\n)"));
  CHECK(matches(n, R"(block\.proj \(Linear\) +\[2, 3, 3\] +9\n)"));
  CHECK(matches(n, R"(\nhead \(Linear\) +\[2, 3, 2\] +8\n)"));
  CHECK((n.find("embed (") < n.find("block (") && n.find("block.proj (") < n.find("head (")));
  CHECK(matches(n, "Total params: 75\nTrainable params: 75\n"));
  // a module that is not called is not a row; an error in the run propagates and tracing stops
  const std::string only_head = summary(net, [&] { (*net.head)(ones({1, 3})); });
  CHECK_FALSE(matches(only_head, "embed"));
  CHECK(matches(only_head, R"(head \(Linear\) +\[1, 2\] +8\n)"));
  CHECK(matches(error_of([&] { summary(seq, {5, 7}); }), "^linear: input \\[5, 7\\]"));
  CHECK(matches(summary(seq, {2, 4}), R"(2 \(Linear\) +\[2, 2\] +8\n)"));
}
