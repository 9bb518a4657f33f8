// PyTorch parity: every fixture of tests/fixtures (written by make_fixtures.py with PyTorch)
// is loaded into the matching xgrad layer by name; outputs and the gradients of inputs and
// parameters must agree within 1e-10 (float64) or 1e-5 (float32), relative to each tensor's scale.
#include <algorithm>
#include <functional>
#include <map>

#include "relative_error.hpp"
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

double g_largest_f32 = 0, g_largest_f64 = 0;  // reported at the end

/// Loads the fixture's weights into `module` (by its own names), runs `run` on the fixture's
/// inputs, backpropagates the fixture's upstream gradients, and compares every output and gradient.
void check_parity(const std::string& name, Module& module, const std::vector<std::string>& input_names,
                  const std::function<std::map<std::string, Tensor>(const std::vector<Tensor>&)>& run) {
  INFO("fixture ", name);
  Fixture f(name);
  const Dtype dtype = name.ends_with("_f64") ? f64 : f32;
  const double tolerance = dtype == f64 ? 1e-10 : 1e-5;
  module.to(dtype);
  StateDict weights;
  for (const auto& [key, t] : module.state_dict()) weights.emplace_back(key, f[key]);
  module.load_state_dict(weights);
  module.zero_grad();

  std::vector<Tensor> inputs;
  for (const auto& key : input_names) {
    Tensor t = f[key].clone().detach();
    if (is_floating(t.dtype())) t.requires_grad_();
    inputs.push_back(t);
  }
  auto outputs = run(inputs);
  Tensor loss = scalar(0, dtype);
  for (const auto& [key, y] : outputs) {
    double e = relative_error(y, f[key]);
    INFO("output ", key, ": relative error ", e);
    CHECK(e <= tolerance);
    (dtype == f64 ? g_largest_f64 : g_largest_f32) = std::max(dtype == f64 ? g_largest_f64 : g_largest_f32, e);
    loss = loss + sum(y * f["grad_output." + key]);
  }
  loss.backward();
  auto compare_grad = [&](const std::string& key, const Tensor& grad) {
    REQUIRE(grad.defined());
    double e = relative_error(grad, f["grad." + key]);
    INFO("gradient of ", key, ": relative error ", e);
    CHECK(e <= tolerance);
    (dtype == f64 ? g_largest_f64 : g_largest_f32) = std::max(dtype == f64 ? g_largest_f64 : g_largest_f32, e);
  };
  for (const auto& [key, p] : module.named_parameters()) compare_grad(key, p.grad());
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) compare_grad(input_names[i], inputs[i].grad());
}

std::map<std::string, Tensor> recurrent_outputs(Recurrent& layer, const std::vector<Tensor>& in) {
  RecurrentResult r = layer.run(in[0], in.size() > 1 ? in[1] : Tensor());
  std::map<std::string, Tensor> out{{"output", r.output}, {"h_n", stack_states(r.states, 0)}};
  if (r.states[0].size() == 2) out["c_n"] = stack_states(r.states, 1);
  return out;
}

const char* kDtypes[] = {"f64", "f32"};

}  // namespace

TEST_CASE("parity with PyTorch: Linear and Embedding") {
  for (std::string tag : kDtypes) {
    Linear linear(5, 3);
    check_parity("linear_" + tag, linear, {"x"}, [&](auto& in) { return std::map<std::string, Tensor>{{"output", linear(in[0])}}; });
    Embedding embedding(7, 3, 0);
    check_parity("embedding_" + tag, embedding, {"ids"},
                 [&](auto& in) { return std::map<std::string, Tensor>{{"output", embedding(in[0])}}; });
  }
}

TEST_CASE("parity with PyTorch: RNN, GRU, LSTM (stacked, bidirectional, packed lengths)") {
  for (std::string tag : kDtypes) {
    RNN rnn(3, 4);
    check_parity("rnn_tanh_" + tag, rnn, {"x"}, [&](auto& in) { return recurrent_outputs(rnn, in); });
    RNN relu(3, 4, {.num_layers = 2}, Nonlinearity::relu);
    check_parity("rnn_relu_2layer_" + tag, relu, {"x"}, [&](auto& in) { return recurrent_outputs(relu, in); });
    GRU gru(3, 4, {.num_layers = 2});
    check_parity("gru_2layer_" + tag, gru, {"x"}, [&](auto& in) { return recurrent_outputs(gru, in); });
    GRU bigru(3, 4, {.bidirectional = true});
    check_parity("gru_bidirectional_lengths_" + tag, bigru, {"x", "lengths"},
                 [&](auto& in) { return recurrent_outputs(bigru, in); });
    LSTM lstm(3, 4);
    check_parity("lstm_" + tag, lstm, {"x"}, [&](auto& in) { return recurrent_outputs(lstm, in); });
    LSTM deep(3, 4, {.num_layers = 2, .bidirectional = true});
    check_parity("lstm_2layer_bidirectional_lengths_" + tag, deep, {"x", "lengths"},
                 [&](auto& in) { return recurrent_outputs(deep, in); });
  }
  MESSAGE("largest relative deviation from PyTorch so far: f64 ", g_largest_f64, ", f32 ", g_largest_f32);
}

TEST_CASE("parity with PyTorch: Conv1d (stride, dilation, same and causal padding) and pooling") {
  struct Case {
    const char* name;
    std::int64_t k, stride, dilation;
    Padding padding;
  };
  for (std::string tag : kDtypes) {
    for (Case c : {Case{"valid_s2_d2", 3, 2, 2, Padding::valid}, Case{"same_k4", 4, 1, 1, Padding::same},
                   Case{"same_s2", 3, 2, 1, Padding::same}, Case{"causal_d2", 3, 1, 2, Padding::causal}}) {
      Conv1D conv(3, 4, c.k, c.stride, c.dilation, c.padding);
      check_parity(std::string("conv1d_") + c.name + "_" + tag, conv, {"x"},
                   [&](auto& in) { return std::map<std::string, Tensor>{{"output", conv(in[0])}}; });
    }
    MaxPool1D max_pool(3, 2);
    check_parity("maxpool1d_" + tag, max_pool, {"x"},
                 [&](auto& in) { return std::map<std::string, Tensor>{{"output", max_pool(in[0])}}; });
    AvgPool1D avg_pool(2);
    check_parity("avgpool1d_" + tag, avg_pool, {"x"},
                 [&](auto& in) { return std::map<std::string, Tensor>{{"output", avg_pool(in[0])}}; });
  }
  MESSAGE("largest relative deviation from PyTorch so far: f64 ", g_largest_f64, ", f32 ", g_largest_f32);
}

TEST_CASE("parity with PyTorch: MultiheadAttention with key padding and attention masks") {
  for (std::string tag : kDtypes) {
    MultiheadAttention mha(8, 2);
    check_parity("mha_" + tag, mha, {"query", "key", "value", "key_padding_mask", "attn_mask"}, [&](auto& in) {
      AttentionResult r = mha.forward(in[0], in[1], in[2], in[3], in[4]);
      return std::map<std::string, Tensor>{{"output", r.context}, {"weights", r.weights}};
    });
  }
  MESSAGE("largest relative deviation from PyTorch: f64 ", g_largest_f64, ", f32 ", g_largest_f32);
}
