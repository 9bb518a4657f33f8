// The layer options PyTorch users expect: Conv1D groups (depthwise) and bias = false; max/avg
// pooling padding, ceil_mode and count_include_pad; MultiheadAttention kdim/vdim; Luong's concat
// score. Each against PyTorch 1.13 (tests/fixtures/layer_options.py: the fixture's PyTorch
// state_dict is loaded by PyTorch's names, outputs and every gradient must agree within 1e-10
// relative in float64, 1e-5 in float32), float64 gradcheck and gradgradcheck, and the errors a
// bad option gets.
#include <functional>
#include <map>
#include <set>

#include "relative_error.hpp"
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::nn;
using namespace xgrad::testing;

namespace {

using Outputs = std::map<std::string, Tensor>;

/// The layer_options fixture, loaded once.
const Fixture& fixture() {
  static const Fixture f("layer_options");
  return f;
}

/// Case "<name>.<tag>" of the fixture: the module's parameter names must be exactly PyTorch's
/// (those the fixture has gradients for, less the inputs); PyTorch's state_dict is loaded by its
/// names, `run` runs on the fixture's inputs, the fixture's upstream gradients are backpropagated,
/// and every output and gradient is compared.
void check_parity(const std::string& name, const std::string& tag, Module& module,
                  const std::vector<std::string>& input_names, const std::function<Outputs(const Inputs&)>& run) {
  const std::string prefix = name + "." + tag + ".";
  INFO("fixture case ", prefix);
  const Fixture& f = fixture();
  const Dtype dtype = tag == "f64" ? f64 : f32;
  const double tolerance = dtype == f64 ? 1e-10 : 1e-5;
  module.to(dtype);

  std::set<std::string> torch_names, own_names;
  const std::set<std::string> inputs_named(input_names.begin(), input_names.end());
  for (const auto& [key, t] : f.tensors)
    if (key.starts_with(prefix + "grad.") && !inputs_named.count(key.substr(prefix.size() + 5)))
      torch_names.insert(key.substr(prefix.size() + 5));
  for (const auto& [key, t] : module.state_dict()) own_names.insert(key);
  CHECK(own_names == torch_names);
  StateDict weights;
  for (const std::string& key : torch_names) weights.emplace_back(key, f[prefix + key]);
  module.load_state_dict(weights);
  module.zero_grad();

  Inputs inputs;
  for (const auto& key : input_names) {
    Tensor t = f[prefix + key].clone().detach();
    if (is_floating(t.dtype())) t.requires_grad_();
    inputs.push_back(t);
  }
  Tensor loss = scalar(0, dtype);
  for (const auto& [key, y] : run(inputs)) {
    const double e = relative_error(y, f[prefix + key]);
    INFO("output ", key, ": relative error ", e);
    CHECK(e <= tolerance);
    loss = loss + sum(y * f[prefix + "grad_output." + key]);
  }
  loss.backward();
  auto compare_grad = [&](const std::string& key, const Tensor& grad) {
    REQUIRE(grad.defined());
    const double e = relative_error(grad, f[prefix + "grad." + key]);
    INFO("gradient of ", key, ": relative error ", e);
    CHECK(e <= tolerance);
  };
  for (const auto& [key, p] : module.named_parameters()) compare_grad(key, p.grad());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) compare_grad(input_names[i], inputs[i].grad());
}

const char* kTags[] = {"f64", "f32"};

/// The inputs, then the module's parameters (f64, requiring grad): gradcheck perturbs the
/// parameters in place, so the checked function calls the module and ignores those extra inputs.
Inputs with_parameters(Inputs inputs, const Module& module) {
  for (const Tensor& p : module.parameters()) {
    REQUIRE((p.dtype() == f64 && p.requires_grad()));
    inputs.push_back(p);
  }
  return inputs;
}

/// Context and weights flattened and joined: one output, so gradcheck covers both.
Tensor joined(const AttentionResult& r) { return concat({flatten(r.context), flatten(r.weights)}, 0); }

/// "weight, bias": the module's parameter names, in order.
std::string names_of(const Module& module) {
  std::string names;
  for (const auto& [name, p] : module.named_parameters()) names += (names.empty() ? "" : ", ") + name;
  return names;
}

const Padding valid = Padding::valid, same = Padding::same, causal = Padding::causal;

}  // namespace

// --- Conv1D: groups, bias = false ------------------------------------------------------------------

TEST_CASE("Conv1D groups and bias=false: parity with PyTorch") {
  struct Case {
    const char* name;
    std::int64_t in, out, kernel, stride, dilation;
    Padding padding;
    std::int64_t groups;
    bool bias;
  };
  for (std::string tag : kTags)
    for (Case c : {Case{"conv_groups2", 4, 6, 3, 1, 1, valid, 2, true},
                   Case{"conv_groups2_same_s2", 6, 4, 2, 2, 1, same, 2, true},
                   Case{"conv_depthwise_same_s2_d2", 4, 4, 3, 2, 2, same, 4, true},
                   Case{"conv_depthwise_x2_causal_nobias", 3, 6, 2, 1, 1, causal, 3, false},
                   Case{"conv_nobias_s2", 3, 4, 3, 2, 1, valid, 1, false}}) {
      Conv1D conv(c.in, c.out, c.kernel, c.stride, c.dilation, c.padding, c.bias, c.groups);
      check_parity(c.name, tag, conv, {"x"}, [&](const Inputs& in) { return Outputs{{"output", conv(in[0])}}; });
    }
}

TEST_CASE("Conv1D groups: PyTorch's weight layout and init; each group is a convolution of its own channels") {
  Conv1D depthwise(4, 8, 3, 1, 1, same, false, 4);
  CHECK(names_of(depthwise) == "weight");  // bias=false: no "bias" in the state_dict, as PyTorch
  CHECK(depthwise.weight.shape() == Shape{8, 1, 3});
  CHECK(max(abs(depthwise.weight)).item() <= 1 / std::sqrt(3.0));  // fan_in = in / groups * k
  CHECK(max(abs(depthwise.weight)).item() > 0.5 / std::sqrt(3.0));
  CHECK(!depthwise.bias.defined());

  // conv1d with G groups = the G convolutions of each group's input channels, joined
  const Tensor x = input({2, 9, 6}, -1, 1, 1), w = input({9, 2, 3}, -1, 1, 2), b = input({9}, -1, 1, 3);
  for (Padding padding : {valid, same, causal})
    for (std::int64_t stride : {1, 2}) {
      CAPTURE(padding_name(padding));
      CAPTURE(stride);
      std::vector<Tensor> parts;
      for (std::int64_t g = 0; g < 3; ++g)
        parts.push_back(conv1d(slice(x, 2, 2 * g, 2 * g + 2), slice(w, 0, 3 * g, 3 * g + 3),
                               slice(b, 0, 3 * g, 3 * g + 3), stride, 2, padding));
      check_close(conv1d(x, w, b, stride, 2, padding, 3), concat(parts, -1), 1e-12);
    }
  SUBCASE("zero-size batch and time") {
    CHECK(conv1d(zeros({0, 5, 4}, f64), zeros({6, 2, 2}, f64), {}, 1, 1, valid, 2).shape() == Shape{0, 4, 6});
    CHECK(conv1d(zeros({2, 0, 4}, f64), zeros({4, 1, 2}, f64), {}, 1, 1, same, 4).shape() == Shape{2, 0, 4});
  }
}

TEST_CASE("Conv1D groups and bias=false: gradcheck and gradgradcheck") {
  struct Case {
    std::int64_t groups;
    Padding padding;
    bool bias;
  };
  for (Case c : {Case{2, same, true}, Case{4, causal, false}, Case{4, valid, true}, Case{1, valid, false}}) {
    CAPTURE(c.groups);
    Conv1D conv(4, 8, 3, 2, 1, c.padding, c.bias, c.groups);
    conv.to(f64);
    check_gradients([&](const Inputs& in) { return conv(in[0]); }, with_parameters({input({2, 7, 4})}, conv));
  }
  check_gradients([](const Inputs& in) { return conv1d(in[0], in[1], in[2], 1, 2, same, 3); },
                  {input({2, 6, 3}, -1, 1, 4), input({6, 1, 2}, -1, 1, 5), input({6}, -1, 1, 6)});
}

TEST_CASE("Conv1D groups: errors name the layer, the shapes and the groups") {
  CHECK(matches(error_of([] { Conv1D(4, 6, 3, 1, 1, valid, true, 4); }),
                R"(^Conv1D: in_channels 4 and out_channels 6 must both be multiples of groups 4$)"));
  CHECK(matches(error_of([] { Conv1D(6, 4, 3, 1, 1, valid, true, 4); }),
                R"(^Conv1D: in_channels 6 and out_channels 4 must both be multiples of groups 4$)"));
  CHECK(matches(error_of([] { Conv1D(4, 4, 3, 1, 1, valid, true, 0); }), R"(multiples of groups 0$)"));
  const Tensor w = zeros({6, 2, 3}, f64);
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 8}, f64), w, {}, 1, 1, valid, 4); }),
                R"(^conv1d: groups must be positive and divide the out_channels of weight \[6, 2, 3\], got 4$)"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 4}, f64), w, {}, 1, 1, valid, -1); }), R"(got -1$)"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 5}, f64), w, {}, 1, 1, valid, 2); }),
                R"(^conv1d: input \[2, 5, 5\] must be \[batch, time, channels\] with 4 channels to match weight )"
                R"(\[6, 2, 3\] in 2 groups$)"));
}

// --- pooling: padding, ceil_mode, count_include_pad ---------------------------------------------

TEST_CASE("pooling padding, ceil_mode and count_include_pad: parity with PyTorch") {
  struct Case {
    const char* name;
    std::int64_t pool_size, stride, padding;
    bool ceil_mode, count_include_pad;
  };
  for (std::string tag : kTags)
    for (Case c : {Case{"k3_s2_p1", 3, 2, 1, false, true}, Case{"k3_s2_p1_exclude", 3, 2, 1, false, false},
                   Case{"k3_s2_ceil", 3, 2, 0, true, true}, Case{"k4_s3_p2_ceil", 4, 3, 2, true, true},
                   Case{"k4_s3_p2_ceil_exclude", 4, 3, 2, true, false},
                   Case{"k4_s3_p2_ceil_dropped", 4, 3, 2, true, true}, Case{"k2_s1_p1", 2, 1, 1, false, true}}) {
      AvgPool1D avg(c.pool_size, c.stride, c.padding, c.ceil_mode, c.count_include_pad);
      check_parity(std::string("avgpool_") + c.name, tag, avg, {"x"},
                   [&](const Inputs& in) { return Outputs{{"output", avg(in[0])}}; });
      if (!c.count_include_pad) continue;  // (no concern of the maximum)
      MaxPool1D max_pool(c.pool_size, c.stride, c.padding, c.ceil_mode);
      check_parity(std::string("maxpool_") + c.name, tag, max_pool, {"x"},
                   [&](const Inputs& in) { return Outputs{{"output", max_pool(in[0])}}; });
    }
}

TEST_CASE("pooling padding and ceil_mode: hand-computed windows") {
  // channel 0: 3, 1, 4, 1.5, 5, 9;  channel 1: 2, 7, 1, 8, 2.5, 6
  const Tensor x = f64_tensor({3, 2, 1, 7, 4, 1, 1.5, 8, 5, 2.5, 9, 6}, {1, 6, 2});
  // padding 1, windows [-1, 1], [1, 3], [3, 5]; ceil_mode adds [5, 7] (it starts inside the input)
  check_values(max_pool1d(x, 3, 2, 1), {1, 3, 2}, {3, 7, 4, 8, 9, 8});
  check_values(max_pool1d(x, 3, 2, 1, true), {1, 4, 2}, {3, 7, 4, 8, 9, 8, 9, 6});
  check_close(avg_pool1d(x, 3, 2, 1), f64_tensor({4.0 / 3, 3, 6.5 / 3, 16.0 / 3, 15.5 / 3, 16.5 / 3}, {1, 3, 2}));
  check_close(avg_pool1d(x, 3, 2, 1, false, false),
              f64_tensor({2, 4.5, 6.5 / 3, 16.0 / 3, 15.5 / 3, 16.5 / 3}, {1, 3, 2}));
  // the ceil_mode window [5, 7] counts steps 5 and 6 (the padding), not 7 (past it), or step 5 alone
  check_close(avg_pool1d(x, 3, 2, 1, true), f64_tensor({4.0 / 3, 3, 6.5 / 3, 16.0 / 3, 15.5 / 3, 16.5 / 3, 4.5, 3},
                                                       {1, 4, 2}));
  check_close(avg_pool1d(x, 3, 2, 1, true, false),
              f64_tensor({2, 4.5, 6.5 / 3, 16.0 / 3, 15.5 / 3, 16.5 / 3, 9, 6}, {1, 4, 2}));
  // ceil_mode without padding: floor((6 - 4) / 3) + 1 = 1 window, ceil 2: [3, 6] hangs one step past
  check_values(max_pool1d(x, 4, 3, 0, true), {1, 2, 2}, {4, 8, 9, 8});
  check_values(avg_pool1d(x, 4, 3, 0, true), {1, 2, 2}, {9.5 / 4, 18.0 / 4, 15.5 / 3, 16.5 / 3});
  // a ceil_mode window that would start in the right padding is dropped: T = 5, k 2, s 2, p 1
  // gives ceil(5 / 2) + 1 = 4 windows, the 4th starting at step 4 * 2 - 2 - 1 = 5 = T: 3 remain
  // (T = 6 keeps its 4th window, which starts at step 5, inside the input)
  CHECK(max_pool1d(slice(x, 1, 0, 5), 2, 2, 1, true).shape() == Shape{1, 3, 2});
  CHECK(max_pool1d(x, 2, 2, 1, true).shape() == Shape{1, 4, 2});
  SUBCASE("the modules keep their options") {
    MaxPool1D max_pool(3, 2, 1, true);
    AvgPool1D avg_pool(3, 0, 1, true, false);
    CHECK((max_pool.padding == 1 && max_pool.ceil_mode && avg_pool.stride == 3 && !avg_pool.count_include_pad));
    check_close(max_pool(x), max_pool1d(x, 3, 2, 1, true));
    check_close(avg_pool(x), avg_pool1d(x, 3, 3, 1, true, false));
  }
  SUBCASE("the maximum's gradient reaches the edge step its padded window picked") {
    Tensor xg = x.detach().requires_grad_();
    sum(max_pool1d(xg, 3, 2, 1, true)).backward();
    check_values(xg.grad(), {1, 6, 2}, {1, 0, 0, 1, 1, 0, 0, 2, 0, 0, 2, 1});
  }
}

TEST_CASE("pooling padding, ceil_mode and count_include_pad: gradcheck and gradgradcheck") {
  const Tensor x = input({2, 8, 3}, -1, 1, 7);  // uniform random values: no ties within a window
  std::vector<std::shared_ptr<UnaryModule>> pools{std::make_shared<MaxPool1D>(3, 2, 1),
                                                  std::make_shared<MaxPool1D>(3, 3, 1, true),
                                                  std::make_shared<AvgPool1D>(3, 3, 1, true, false),
                                                  std::make_shared<MaxPool1D>(4, 3, 2, true),
                                                  std::make_shared<MaxPool1D>(3, 2, 0, true),
                                                  std::make_shared<AvgPool1D>(3, 2, 1),
                                                  std::make_shared<AvgPool1D>(3, 2, 1, false, false),
                                                  std::make_shared<AvgPool1D>(4, 3, 2, true),
                                                  std::make_shared<AvgPool1D>(4, 3, 2, true, false)};
  for (const auto& pool : pools) {
    INFO(pool->type_name());
    check_gradients([&](const Inputs& in) { return (*pool)(in[0]); }, {x});
  }
}

TEST_CASE("pooling: windows that tile the steps (stride = pool_size) equal the unfolded windows") {
  // stride = pool_size reshapes the covered steps instead of unfolding them; the values and the
  // gradients are those of the general windows
  const Tensor x = input({3, 11, 4}, -1, 1, 9);
  for (std::int64_t pool_size : {1, 2, 3, 4})
    for (std::int64_t padding = 0; padding <= pool_size / 2; ++padding)
      for (bool ceil_mode : {false, true}) {
        INFO("pool_size ", pool_size, " padding ", padding, " ceil_mode ", ceil_mode);
        Tensor a = x.detach().requires_grad_(), b = x.detach().requires_grad_();
        const Tensor fast = max_pool1d(a, pool_size, pool_size, padding, ceil_mode);
        // the definition: each window's maximum over the steps of the input it covers
        const std::int64_t windows = fast.size(1);
        std::vector<Tensor> maxima;
        for (std::int64_t w = 0; w < windows; ++w) {
          const std::int64_t start = w * pool_size - padding;
          const std::int64_t lo = std::max<std::int64_t>(start, 0), hi = std::min<std::int64_t>(start + pool_size, 11);
          maxima.push_back(max(slice(b, 1, lo, hi), 1, true).values);
        }
        const Tensor slow = concat(maxima, 1);
        check_close(fast, slow, 0);
        Tensor seed = input(fast.shape(), -1, 1, 4);
        sum(fast * seed).backward();
        sum(slow * seed).backward();
        check_close(a.grad(), b.grad(), 0);
        check_close(avg_pool1d(x, pool_size, pool_size, padding, ceil_mode, false),
                    concat([&] {
                      std::vector<Tensor> means;
                      for (std::int64_t w = 0; w < windows; ++w) {
                        const std::int64_t start = w * pool_size - padding;
                        means.push_back(mean(slice(x, 1, std::max<std::int64_t>(start, 0),
                                                   std::min<std::int64_t>(start + pool_size, 11)),
                                             1, true));
                      }
                      return means;
                    }(), 1), 1e-15);
      }
}

TEST_CASE("pooling padding: errors name the op and the values") {
  CHECK(matches(error_of([] { max_pool1d(zeros({2, 6, 3}, f64), 3, 2, 2); }),
                R"(^max_pool1d: padding 2 must be in \[0, pool_size / 2\] = \[0, 1\] for pool_size 3$)"));
  CHECK(matches(error_of([] { avg_pool1d(zeros({2, 6, 3}, f64), 3, 2, -1); }),
                R"(^avg_pool1d: padding -1 must be in \[0, pool_size / 2\] = \[0, 1\] for pool_size 3$)"));
  CHECK(matches(error_of([] { MaxPool1D(2, 0, 2); }),
                R"(^MaxPool1D: padding 2 must be in \[0, pool_size / 2\] = \[0, 1\] for pool_size 2$)"));
  CHECK(matches(error_of([] { AvgPool1D(5, 1, 3, true, false); }), R"(^AvgPool1D: padding 3 must be in)"));
  CHECK(matches(error_of([] { avg_pool1d(zeros({2, 1, 3}, f64), 4, 1, 1); }),
                R"(^avg_pool1d: input \[2, 1, 3\] has 1 time steps, fewer than the 2 it needs )"
                R"(\(pool_size 4 with padding 1 on each side\)$)"));
  CHECK(matches(error_of([] { max_pool1d(zeros({2, 0, 3}, f64), 2, 1, 1, true); }),
                R"(^max_pool1d: input \[2, 0, 3\] has 0 time steps, fewer than the 1 it needs)"));
}

// --- MultiheadAttention: kdim, vdim -----------------------------------------------------------------

TEST_CASE("MultiheadAttention kdim/vdim: parity with PyTorch, its state_dict loaded by its names") {
  for (std::string tag : kTags) {
    MultiheadAttention mha(8, 2, 0.0, true, 5, 3);
    check_parity("mha_kdim_vdim", tag, mha, {"query", "key", "value", "key_padding_mask"}, [&](const Inputs& in) {
      AttentionResult r = mha.forward(in[0], in[1], in[2], in[3]);
      return Outputs{{"output", r.context}, {"weights", r.weights}};
    });
    MultiheadAttention no_bias(6, 3, 0.0, false, 4);  // vdim = embed_dim, kdim not
    check_parity("mha_kdim_nobias", tag, no_bias, {"query", "key", "value", "attn_mask"}, [&](const Inputs& in) {
      AttentionResult r = no_bias.forward(in[0], in[1], in[2], {}, in[3], false, false);
      return Outputs{{"output", r.context}, {"weights", r.weights}};
    });
  }
}

TEST_CASE("MultiheadAttention kdim/vdim: PyTorch's separate projections, names, shapes and init") {
  MultiheadAttention m(8, 2, 0.0, true, 5, 3);
  CHECK(names_of(m) == "q_proj_weight, k_proj_weight, v_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias");
  CHECK(!m.in_proj_weight.defined());
  CHECK(m.q_proj_weight.shape() == Shape{8, 8});
  CHECK(m.k_proj_weight.shape() == Shape{8, 5});
  CHECK(m.v_proj_weight.shape() == Shape{8, 3});
  CHECK(m.in_proj_bias.shape() == Shape{24});
  CHECK(max(abs(m.k_proj_weight)).item() <= std::sqrt(6.0 / 13));  // Xavier: fan_in kdim, fan_out E
  CHECK(max(abs(m.v_proj_weight)).item() <= std::sqrt(6.0 / 11));
  CHECK(names_of(MultiheadAttention(8, 2, 0.0, false, 8, 4)) == "q_proj_weight, k_proj_weight, v_proj_weight, "
                                                               "out_proj.weight");
  // kdim = vdim = embed_dim (given or 0) is the packed in_proj_weight, as PyTorch
  CHECK(names_of(MultiheadAttention(8, 2, 0.0, true, 8, 8)) ==
        "in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias");
  SUBCASE("the same projections, packed or separate, give the same attention") {
    manual_seed(3);
    MultiheadAttention packed(4, 2), separate(4, 2, 0.0, true, 4, 5);
    packed.to(f64);
    separate.to(f64);
    packed.in_proj_bias.copy_(uniform({12}, -0.5, 0.5, f64));
    auto w = chunk(packed.in_proj_weight, 3, 0);
    separate.q_proj_weight.copy_(w[0]);
    separate.k_proj_weight.copy_(w[1]);
    separate.v_proj_weight.copy_(concat({w[2], zeros({4, 1}, f64)}, 1));  // value's 5th feature unused
    separate.in_proj_bias.copy_(packed.in_proj_bias);
    separate.out_proj->weight.copy_(packed.out_proj->weight);
    Tensor q = input({2, 3, 4}, -1, 1, 1), k = input({2, 4, 4}, -1, 1, 2), v = input({2, 4, 5}, -1, 1, 3);
    check_close(joined(separate.forward(q, k, v)), joined(packed.forward(q, k, slice(v, 2, 0, 4))), 1e-14);
  }
}

TEST_CASE("MultiheadAttention kdim/vdim: gradcheck and gradgradcheck") {
  manual_seed(7);
  MultiheadAttention m(4, 2, 0.0, true, 3, 5);
  m.to(f64);
  m.in_proj_bias.copy_(uniform({12}, -0.5, 0.5, f64));
  m.out_proj->bias.copy_(uniform({4}, -0.5, 0.5, f64));
  Tensor query = input({2, 2, 4}, -1, 1, 1), key = input({2, 3, 3}, -1, 1, 2), value = input({2, 3, 5}, -1, 1, 3);
  Tensor padding = tensor({{0, 0, 1}, {0, 0, 0}}, i64);
  check_gradients([&](const Inputs& in) { return joined(m.forward(in[0], in[1], in[2], padding, {}, false, false)); },
                  with_parameters({query, key, value}, m));
}

TEST_CASE("MultiheadAttention kdim/vdim: errors name the layer and the shapes") {
  CHECK(matches(error_of([] { MultiheadAttention(8, 2, 0.0, true, -1); }),
                R"(^MultiheadAttention: kdim -1 and vdim 0 must be positive \(0: embed_dim 8\)$)"));
  MultiheadAttention m(8, 2, 0.0, true, 5, 3);
  CHECK(matches(error_of([&] { m.forward(zeros({2, 3, 8}), zeros({2, 4, 8}), zeros({2, 4, 3})); }),
                R"(^MultiheadAttention: expected query \[B, Tq, 8\], key \[B, Tk, 5\] \(kdim\) and value )"
                R"(\[B, Tk, 3\] \(vdim\), got query \[2, 3, 8\], key \[2, 4, 8\], value \[2, 4, 3\]$)"));
  // a packed state_dict does not load into separate projections, and the error says which names
  CHECK(matches(error_of([&] { m.load_state_dict(MultiheadAttention(8, 2).state_dict()); }),
                R"(^load_state_dict into MultiheadAttention: missing 'q_proj_weight' \[8, 8\].*)"
                R"(unexpected 'in_proj_weight' \[24, 8\])"));
}

// --- LuongAttention: concat score ---------------------------------------------------------------

TEST_CASE("LuongAttention concat: parity with the formula in PyTorch") {
  for (std::string tag : kTags) {
    LuongAttention luong(4, LuongAttention::Score::concat, 6);
    check_parity("luong_concat", tag, luong, {"query", "keys", "values", "key_padding_mask"}, [&](const Inputs& in) {
      AttentionResult r = luong.forward(in[0], in[1], in[2], in[3]);
      return Outputs{{"output", r.context}, {"weights", r.weights}};
    });
    LuongAttention small(3, LuongAttention::Score::concat);
    check_parity("luong_concat_units_dim", tag, small, {"query", "keys", "values"}, [&](const Inputs& in) {
      AttentionResult r = small.forward(in[0], in[1], in[2]);
      return Outputs{{"output", r.context}, {"weights", r.weights}};
    });
  }
}

TEST_CASE("LuongAttention concat: parameters, a score by hand") {
  LuongAttention luong(4, LuongAttention::Score::concat, 6);
  CHECK(names_of(luong) == "weight, v");
  CHECK(luong.weight.shape() == Shape{6, 8});
  CHECK(luong.v.shape() == Shape{6});
  CHECK(max(abs(luong.weight)).item() <= 1 / std::sqrt(8.0));
  CHECK(LuongAttention(4, LuongAttention::Score::concat).units == 4);
  CHECK(LuongAttention(4, LuongAttention::Score::general).units == 0);

  LuongAttention tiny(1, LuongAttention::Score::concat, 1);
  tiny.to(f64);
  tiny.weight.copy_(tensor({{0.5, -1.0}}, f64));
  tiny.v.copy_(tensor({2.0}, f64));
  // score_j = 2 tanh(0.5 q - k_j) with q = 1, k = [0.25, -1]
  const double s0 = 2 * std::tanh(0.5 - 0.25), s1 = 2 * std::tanh(0.5 + 1.0);
  const double w0 = std::exp(s0) / (std::exp(s0) + std::exp(s1));
  const Tensor query = reshape(tensor({1.0}, f64), {1, 1, 1}), keys = reshape(tensor({0.25, -1.0}, f64), {1, 2, 1});
  AttentionResult r = tiny.forward(query, keys, reshape(tensor({10.0, 20.0}, f64), {1, 2, 1}));
  check_close(r.weights, reshape(tensor({w0, 1 - w0}, f64), {1, 1, 2}), 1e-15);
  check_close(r.context, reshape(tensor({10 * w0 + 20 * (1 - w0)}, f64), {1, 1, 1}), 1e-13);
}

TEST_CASE("LuongAttention concat: gradcheck and gradgradcheck") {
  LuongAttention luong(3, LuongAttention::Score::concat, 5);
  luong.to(f64);
  Tensor q = input({2, 2, 3}, -1, 1, 1), k = input({2, 4, 3}, -1, 1, 2), v = input({2, 4, 2}, -1, 1, 3);
  Tensor padding = tensor({{0, 0, 1, 1}, {0, 0, 0, 1}}, i64);
  check_gradients([&](const Inputs& in) { return joined(luong.forward(in[0], in[1], in[2], padding)); },
                  with_parameters({q, k, v}, luong));
}

TEST_CASE("LuongAttention concat: errors name the layer and the values") {
  CHECK(matches(error_of([] { LuongAttention(4, LuongAttention::Score::dot, 6); }),
                R"(^LuongAttention: units 6 applies to the concat score only \(it has a hidden layer\)$)"));
  CHECK(matches(error_of([] { LuongAttention(4, LuongAttention::Score::concat, -2); }),
                R"(^LuongAttention: units must be positive \(0: dim 4\), got -2$)"));
  LuongAttention luong(4, LuongAttention::Score::concat);
  CHECK(matches(error_of([&] { luong.forward(zeros({2, 3, 4}), zeros({2, 5, 3}), zeros({2, 5, 6})); }),
                R"(^LuongAttention: expected query \[B, Tq, 4\], keys \[B, Tk, 4\] and values \[B, Tk, Dv\], )"
                R"(got query \[2, 3, 4\], keys \[2, 5, 3\], values \[2, 5, 6\]$)"));
  const Tensor q = zeros({2, 3, 4}, f64), k = zeros({2, 5, 4}, f64), v = zeros({2, 5, 6}, f64);
  CHECK(matches(error_of([&] { luong.forward(q, k, v); }),
                R"(^LuongAttention: query, keys and values must be floating and of one dtype )"
                R"(\(the parameters are f32\))"));
}
