// Conv1D, pooling and losses: values against hand-computed numbers and against the definitions
// written as plain loops over doubles (PyTorch/Keras semantics), float64 gradcheck and
// gradgradcheck with respect to the input and every parameter, and the error messages.
#include <cmath>
#include <memory>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::nn;
using namespace xgrad::testing;

namespace {

using Values = std::vector<double>;

/// gradcheck + gradgradcheck of a module (converted to f64) w.r.t. its input and all parameters;
/// gradcheck perturbs the parameters in place, so the function just calls the module.
void check_module_gradients(UnaryModule& module, const Tensor& x) {
  module.to(f64);
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : module.parameters()) inputs.push_back(p);
  check_gradients([&module](const std::vector<Tensor>& in) { return module(in[0]); }, inputs);
}

/// A convolution configuration with its output length and left padding worked out by hand.
struct ConvCase {
  Padding padding;
  std::int64_t kernel, stride, dilation, length, out_length, left_pad;
};

/// Conv1d by its definition in plain doubles: y[b, t, o] = bias[o] + sum_{c, j} w[o, c, j] *
/// x[b, t*stride + j*dilation - left, c], x taken as 0 outside [0, T).
Tensor direct_conv1d(const Tensor& x, const Tensor& w, const Tensor& bias, const ConvCase& c) {
  const std::int64_t batch = x.size(0), length = x.size(1), in = x.size(2), out = w.size(0);
  const Values xv = x.to_vector<double>(), wv = w.to_vector<double>(), bv = bias.to_vector<double>();
  Values y;
  for (std::int64_t b = 0; b < batch; ++b)
    for (std::int64_t t = 0; t < c.out_length; ++t)
      for (std::int64_t o = 0; o < out; ++o) {
        double acc = bv[o];
        for (std::int64_t ch = 0; ch < in; ++ch)
          for (std::int64_t j = 0; j < c.kernel; ++j) {
            const std::int64_t s = t * c.stride + j * c.dilation - c.left_pad;
            if (s >= 0 && s < length) acc += wv[(o * in + ch) * c.kernel + j] * xv[(b * length + s) * in + ch];
          }
        y.push_back(acc);
      }
  return f64_tensor(y, {batch, c.out_length, out});
}

/// Mean or sum of plain per-element losses (for Reduction::none compare the vector itself).
double reduced(const Values& losses, Reduction reduction, double count) {
  double total = 0;
  for (double v : losses) total += v;
  return reduction == Reduction::sum ? total : total / count;
}

/// Per-row cross-entropy in plain doubles: log(sum_c exp(z_c)) - z_target (0 where ignored).
Values direct_cross_entropy(const Tensor& logits, const std::vector<std::int64_t>& targets, std::int64_t ignore) {
  const Values z = logits.to_vector<double>();
  const std::size_t classes = static_cast<std::size_t>(logits.shape().back());
  Values out;
  for (std::size_t r = 0; r < targets.size(); ++r) {
    if (targets[r] == ignore) {
      out.push_back(0);
      continue;
    }
    double top = z[r * classes], total = 0;
    for (std::size_t c = 0; c < classes; ++c) top = std::max(top, z[r * classes + c]);
    for (std::size_t c = 0; c < classes; ++c) total += std::exp(z[r * classes + c] - top);
    out.push_back(top + std::log(total) - z[r * classes + targets[r]]);
  }
  return out;
}

const Padding valid = Padding::valid, same = Padding::same, causal = Padding::causal;

}  // namespace

TEST_CASE("Conv1D: PyTorch's parameter names, layout and init") {
  Conv1D conv(3, 4, 5);
  CHECK(conv.type_name() == "Conv1D");
  auto named = conv.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.shape() == Shape{4, 3, 5});
  CHECK(named[1].first == "bias");
  CHECK(named[1].second.shape() == Shape{4});
  const double bound = 1 / std::sqrt(15.0);  // fan_in = in_channels * kernel_size
  for (const auto& [name, p] : named)
    for (double v : p.to_vector<double>()) CHECK(std::abs(v) <= bound);
  CHECK(Conv1D(3, 4, 5, 1, 1, valid, false).parameters().size() == 1);
  CHECK(conv(zeros({2, 9, 3})).shape() == Shape{2, 5, 4});
}

TEST_CASE("conv1d: hand-computed values for each padding, stride and dilation") {
  // x = 1, 2, 3, 4 (one channel), weight [1, 10], bias 0.5: y[t] = x[a] + 10 x[b] + 0.5
  const Tensor x = reshape(tensor({1, 2, 3, 4}, f64), {1, 4, 1});
  const Tensor w = tensor({{{1, 10}}}, f64), b = tensor({0.5}, f64);
  check_values(conv1d(x, w, b), {1, 3, 1}, {21.5, 32.5, 43.5});
  check_values(conv1d(x, w, b, 2), {1, 2, 1}, {21.5, 43.5});
  check_values(conv1d(x, w, b, 1, 2), {1, 2, 1}, {31.5, 42.5});
  check_values(conv1d(x, w, b, 1, 1, causal), {1, 4, 1}, {10.5, 21.5, 32.5, 43.5});  // 0, 1, 2, 3, 4
  check_values(conv1d(x, w, b, 1, 1, same), {1, 4, 1}, {21.5, 32.5, 43.5, 4.5});     // 1, 2, 3, 4, 0
  check_values(conv1d(x, w, {}, 1, 1, same), {1, 4, 1}, {21, 32, 43, 4});
}

TEST_CASE("conv1d: output length and values equal the direct loop (Keras' same and causal rules)") {
  // same: T_out = ceil(T / s), total = max((T_out - 1) s + d (k - 1) + 1 - T, 0), left = total / 2
  const std::vector<ConvCase> cases = {
      {valid, 3, 1, 1, 7, 5, 0},  {valid, 3, 2, 1, 7, 3, 0},  {valid, 3, 1, 2, 7, 3, 0},
      {valid, 3, 2, 2, 7, 2, 0},  {valid, 3, 2, 2, 10, 3, 0}, {same, 3, 1, 1, 7, 7, 1},
      {same, 3, 2, 1, 7, 4, 1},   {same, 3, 1, 2, 7, 7, 2},   {same, 3, 2, 2, 7, 4, 2},
      {same, 3, 3, 1, 7, 3, 1},   {same, 4, 1, 1, 7, 7, 1},   {same, 2, 2, 1, 7, 4, 0},
      {same, 3, 2, 2, 10, 5, 1},  {causal, 3, 1, 1, 7, 7, 2}, {causal, 3, 1, 2, 7, 7, 4},
      {causal, 3, 2, 1, 7, 4, 2}, {causal, 3, 2, 2, 10, 5, 4}, {causal, 2, 3, 2, 7, 3, 2},
      {valid, 1, 1, 1, 7, 7, 0},  {valid, 7, 1, 1, 7, 1, 0},  {valid, 3, 9, 1, 7, 1, 0},
      {same, 3, 9, 1, 7, 1, 0},   {valid, 2, 5, 1, 12, 3, 0}};
  for (const ConvCase& c : cases) {
    INFO(std::string(padding_name(c.padding)), " k=", c.kernel, " stride=", c.stride, " dilation=", c.dilation, " T=", c.length);
    const Tensor x = input({2, c.length, 3}, -1, 1, 3), w = input({4, 3, c.kernel}, -1, 1, 4), b = input({4}, -1, 1, 5);
    const Tensor y = conv1d(x, w, b, c.stride, c.dilation, c.padding);
    CHECK(y.shape() == Shape{2, c.out_length, 4});
    check_close(y, direct_conv1d(x, w, b, c), 1e-12);
  }
  SUBCASE("a zero-size batch, and same/causal on an empty sequence") {
    CHECK(conv1d(zeros({0, 5, 3}, f64), zeros({4, 3, 2}, f64)).shape() == Shape{0, 4, 4});
    CHECK(conv1d(zeros({2, 0, 3}, f64), zeros({4, 3, 2}, f64), {}, 1, 1, same).shape() == Shape{2, 0, 4});
    CHECK(conv1d(zeros({2, 0, 3}, f64), zeros({4, 3, 2}, f64), {}, 1, 1, causal).shape() == Shape{2, 0, 4});
  }
}

TEST_CASE("Conv1D: gradcheck w.r.t. input, weight and bias") {
  SUBCASE("valid") {
    Conv1D conv(2, 3, 3);
    check_module_gradients(conv, input({2, 6, 2}));
  }
  SUBCASE("same, stride 2, dilation 2") {
    Conv1D conv(2, 3, 3, 2, 2, same);
    check_module_gradients(conv, input({2, 7, 2}));
  }
  SUBCASE("causal, dilation 2, no bias") {
    Conv1D conv(2, 3, 2, 1, 2, causal, false);
    check_module_gradients(conv, input({1, 5, 2}));
  }
  SUBCASE("the free function") {
    check_gradients([](const std::vector<Tensor>& in) { return conv1d(in[0], in[1], in[2], 2, 1, same); },
                    {input({2, 5, 2}), input({3, 2, 2}, -1, 1, 2), input({3}, -1, 1, 3)});
  }
}

TEST_CASE("conv1d: errors name the op and the shapes") {
  const Tensor w = zeros({4, 2, 3}, f64);
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 3}, f64), w); }),
                R"(conv1d: input \[2, 5, 3\] must be \[batch, time, channels\] with 2 channels to match weight \[4, 2, 3\])"));
  CHECK(matches(error_of([&] { conv1d(zeros({5, 2}, f64), w); }), R"(conv1d: input \[5, 2\] must be \[batch, time)"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 2}, f64), zeros({4, 2}, f64)); }),
                R"(conv1d: weight must be \[out_channels, in_channels, kernel_size >= 1\], got \[4, 2\])"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 2}, f64), w, zeros({3}, f64)); }),
                R"(conv1d: bias \[3\] must be \[4\] to match weight \[4, 2, 3\])"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 2}, f64), w, {}, 0); }),
                R"(conv1d: stride and dilation must be positive, got 0 and 1)"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 4, 2}, f64), w, {}, 1, 2); }),
                R"(conv1d: input \[2, 4, 2\] has 4 time steps, fewer than the kernel span 5 \(kernel 3, dilation 2\) with 'valid' padding)"));
  CHECK(matches(error_of([&] { conv1d(zeros({2, 5, 2}), w); }),
                R"(conv1d: input f32 \[2, 5, 2\] and weight f64 \[4, 2, 3\] have different dtypes)"));
  CHECK(matches(error_of([] { Conv1D(3, 4, 0); }),
                R"(Conv1D: in_channels, out_channels and kernel_size must be positive, got 3, 4 and 0)"));
  CHECK(matches(error_of([] { Conv1D(3, 4, 2, 1, 0); }), R"(Conv1D: stride and dilation must be positive, got 1 and 0)"));
}

TEST_CASE("pooling: hand-computed values, Keras' valid windows") {
  // channel 0: 3, 1, 4, 1.5, 5, 9;  channel 1: 2, 7, 1, 8, 2.5, 6
  const Tensor x = f64_tensor({3, 2, 1, 7, 4, 1, 1.5, 8, 5, 2.5, 9, 6}, {1, 6, 2});
  check_values(max_pool1d(x, 2), {1, 3, 2}, {3, 7, 4, 8, 9, 6});
  check_values(max_pool1d(x, 3, 1), {1, 4, 2}, {4, 7, 4, 8, 5, 8, 9, 8});
  check_values(max_pool1d(x, 2, 3), {1, 2, 2}, {3, 7, 5, 8});
  check_values(max_pool1d(x, 4), {1, 1, 2}, {4, 8});  // the last 2 steps fall off
  check_values(avg_pool1d(x, 2), {1, 3, 2}, {2, 4.5, 2.75, 4.5, 7, 4.25});
  check_values(avg_pool1d(x, 2, 4), {1, 2, 2}, {2, 4.5, 7, 4.25});
  check_values(global_max_pool1d(x), {1, 2}, {9, 8});
  check_close(global_avg_pool1d(x), f64_tensor({23.5 / 6, 26.5 / 6}, {1, 2}));
  SUBCASE("the modules, stride defaulting to pool_size") {
    MaxPool1D max_pool(2);
    AvgPool1D avg_pool(3, 0);
    CHECK(max_pool.stride == 2);
    CHECK(avg_pool.stride == 3);
    CHECK(max_pool.type_name() == "MaxPool1D");
    check_close(max_pool(x), max_pool1d(x, 2));
    check_close(AvgPool1D(2, 1)(x), avg_pool1d(x, 2, 1));
    check_close(avg_pool(x), f64_tensor({8.0 / 3, 10.0 / 3, 15.5 / 3, 16.5 / 3}, {1, 2, 2}));
    check_close(GlobalMaxPool1D()(x), global_max_pool1d(x));
    check_close(GlobalAvgPool1D()(x), global_avg_pool1d(x));
    CHECK(MaxPool1D(2).parameters().empty());
  }
  SUBCASE("max pooling sends the gradient to each window's maximum") {
    Tensor xg = x.detach().requires_grad_();
    sum(max_pool1d(xg, 2)).backward();
    check_values(xg.grad(), {1, 6, 2}, {1, 0, 0, 1, 1, 0, 0, 1, 0, 0, 1, 1});
  }
}

TEST_CASE("pooling: gradcheck") {
  // uniform random values: no ties within a window
  const Tensor x = input({2, 7, 3}, -1, 1, 7);
  MaxPool1D max2(2);
  MaxPool1D max3(3, 2);
  AvgPool1D avg2(2);
  AvgPool1D avg3(3, 1);
  GlobalMaxPool1D global_max;
  GlobalAvgPool1D global_avg;
  for (UnaryModule* pool : std::vector<UnaryModule*>{&max2, &max3, &avg2, &avg3, &global_max, &global_avg}) {
    INFO(pool->type_name());
    check_module_gradients(*pool, x);
  }
}

TEST_CASE("pooling: errors") {
  CHECK(matches(error_of([] { max_pool1d(zeros({2, 1, 3}, f64), 2); }),
                R"(max_pool1d: input \[2, 1, 3\] has 1 time steps, fewer than the 2 it needs)"));
  CHECK(matches(error_of([] { avg_pool1d(zeros({2, 3}, f64), 2); }),
                R"(avg_pool1d: input \[2, 3\] must be \[batch, time, channels\])"));
  CHECK(matches(error_of([] { max_pool1d(zeros({2, 4, 3}, f64), 0); }),
                R"(max_pool1d: pool_size must be positive and stride non-negative \(0: pool_size\), got 0 and 0)"));
  CHECK(matches(error_of([] { AvgPool1D(2, -1); }), R"(AvgPool1D: pool_size must be positive .* got 2 and -1)"));
  CHECK(matches(error_of([] { global_max_pool1d(zeros({2, 0, 3}, f64)); }),
                R"(global_max_pool1d: input \[2, 0, 3\] has 0 time steps, fewer than the 1 it needs)"));
  CHECK(matches(error_of([] { global_avg_pool1d(zeros({4}, f64)); }),
                R"(global_avg_pool1d: input \[4\] must be \[batch, time, channels\])"));
}

TEST_CASE("a CNN stack: Conv1D -> MaxPool1D -> GlobalAvgPool1D, channels-last throughout") {
  Sequential model{std::make_shared<Conv1D>(3, 8, 3, 1, 1, same), std::make_shared<MaxPool1D>(2),
                   std::make_shared<GlobalAvgPool1D>()};
  CHECK(model(zeros({2, 10, 3})).shape() == Shape{2, 8});
}

TEST_CASE("mse_loss, l1_loss: values against the formula, every reduction") {
  const Tensor p = input({2, 3}), t = input({2, 3}, -1, 1, 2);
  const Values pv = p.to_vector<double>(), tv = t.to_vector<double>();
  Values squared, absolute;
  for (std::size_t i = 0; i < pv.size(); ++i) {
    squared.push_back((pv[i] - tv[i]) * (pv[i] - tv[i]));
    absolute.push_back(std::abs(pv[i] - tv[i]));
  }
  check_close(mse_loss(p, t, Reduction::none), f64_tensor(squared, {2, 3}));
  check_close(mse_loss(p, t), scalar(reduced(squared, Reduction::mean, 6), f64));
  check_close(mse_loss(p, t, Reduction::sum), scalar(reduced(squared, Reduction::sum, 6), f64));
  check_close(l1_loss(p, t, Reduction::none), f64_tensor(absolute, {2, 3}));
  check_close(l1_loss(p, t), scalar(reduced(absolute, Reduction::mean, 6), f64));
  check_close(l1_loss(p, t, Reduction::sum), scalar(reduced(absolute, Reduction::sum, 6), f64));
  check_values(mse_loss(tensor({1.0, 2.0}, f64), tensor({1, 4}, i64)), {}, {2});  // target takes p's dtype
}

TEST_CASE("bce_with_logits: the stable formula, extreme logits, the gradient at 0") {
  const Tensor x = tensor({-2.5, -0.3, 0, 0.8, 3}, f64), t = tensor({0, 1, 0.25, 1, 0.5}, f64);
  Values expected;  // max(x, 0) - x t + log(1 + e^-|x|)
  for (std::size_t i = 0; i < 5; ++i) {
    const double xi = x.to_vector<double>()[i], ti = t.to_vector<double>()[i];
    expected.push_back(std::max(xi, 0.0) - xi * ti + std::log1p(std::exp(-std::abs(xi))));
  }
  check_close(bce_with_logits(x, t, Reduction::none), f64_tensor(expected, {5}));
  check_close(bce_with_logits(x, t), scalar(reduced(expected, Reduction::mean, 5), f64));
  check_close(bce_with_logits(x, t, Reduction::sum), scalar(reduced(expected, Reduction::sum, 5), f64));
  SUBCASE("extreme logits stay finite, in f32 too") {
    for (Dtype dtype : {f64, f32}) {
      // (the order avoids literals like {a, a, 0, 0}, which g++ 12.2 -march=native miscompiles here)
      Tensor big = tensor({1000, -1000, -1000, 1000}, dtype).requires_grad_();
      Tensor loss = bce_with_logits(big, tensor({0, 0, 1, 1}, dtype), Reduction::none);
      check_values(loss, {4}, {1000, 0, 1000, 0});
      sum(loss).backward();
      check_values(big.grad(), {4}, {1, 0, -1, 0});  // sigmoid(x) - t
    }
  }
  SUBCASE("d/dx = sigmoid(x) - t, also at exactly x = 0") {
    Tensor zero = tensor({0.0}, f64).requires_grad_();
    bce_with_logits(zero, tensor({0.25}, f64), Reduction::sum).backward();
    check_values(zero.grad(), {1}, {0.25});
  }
}

TEST_CASE("cross_entropy, nll_loss: values against the formula, ignore_index, reductions") {
  const Tensor logits = input({2, 3, 4}, -3, 3);
  const std::vector<std::int64_t> targets = {0, 3, -100, 2, 1, -100};
  const Tensor target = tensor({{0, 3, -100}, {2, 1, -100}}, i64);
  const Values rows = direct_cross_entropy(logits, targets, -100);
  check_close(cross_entropy(logits, target, -100, Reduction::none), f64_tensor(rows, {2, 3}));
  check_close(cross_entropy(logits, target), scalar(reduced(rows, Reduction::mean, 4), f64));  // 4 not ignored
  check_close(cross_entropy(logits, target, -100, Reduction::sum), scalar(reduced(rows, Reduction::sum, 4), f64));
  check_close(nll_loss(log_softmax(logits, -1), target), cross_entropy(logits, target));
  SUBCASE("ignore_index may be a real class (padding id 0)") {
    const Tensor padded = tensor({{0, 3, 1}, {2, 0, 0}}, i64);
    const Values padded_rows = direct_cross_entropy(logits, {0, 3, 1, 2, 0, 0}, 0);
    check_close(cross_entropy(logits, padded, 0), scalar(reduced(padded_rows, Reduction::mean, 3), f64));
  }
  SUBCASE("one sample: logits [C], target rank 0") {
    check_close(cross_entropy(tensor({1, 2, 3}, f64), tensor(2, i64)),
                scalar(direct_cross_entropy(tensor({1, 2, 3}, f64), {2}, -100)[0], f64));
  }
  SUBCASE("all targets ignored: the mean is NaN, as in PyTorch") {
    CHECK(std::isnan(cross_entropy(logits, full({2, 3}, -100, i64)).item()));
    check_values(cross_entropy(logits, full({2, 3}, -100, i64), -100, Reduction::sum), {}, {0});
  }
  SUBCASE("nll_loss picks -log_probs[target]") {
    check_values(nll_loss(tensor({{-1, -2}, {-3, -4}}, f64), tensor({1, 0}, i64), -100, Reduction::none), {2}, {2, 3});
  }
}

TEST_CASE("cross_entropy: extreme logits stay finite") {
  for (Dtype dtype : {f64, f32}) {
    Tensor logits = tensor({{1000, -1000, 0}, {-1e4, 1e4, 5}}, dtype).requires_grad_();
    Tensor loss = cross_entropy(logits, tensor({1, 0}, i64));
    check_values(loss, {}, {11000});  // (2000 + 20000) / 2
    loss.backward();
    check_values(logits.grad(), {2, 3}, {0.5, -0.5, 0, -0.5, 0.5, 0});  // (softmax - one_hot) / 2
  }
  // an ignored row whose logit at the placeholder class is -inf contributes 0, not NaN
  Tensor masked = tensor({{-INFINITY, 1, 2}, {0, 1, 2}}, f64).requires_grad_();
  Tensor loss = cross_entropy(masked, tensor({-100, 2}, i64), -100, Reduction::sum);
  CHECK(std::isfinite(loss.item()));
  loss.backward();
  CHECK(isfinite(masked.grad()).to_vector<double>() == Values(6, 1.0));
}

TEST_CASE("losses: gradcheck w.r.t. predictions and targets, every reduction") {
  const Tensor p = input({3, 4}), t = input({3, 4}, -1, 1, 2);
  const Tensor above = input({3, 4}, 1, 2, 3), below = input({3, 4}, -1, 0, 4);  // |p - t| >= 1: no kink
  const Tensor logits = tensor({{-2.5, 0, 0.7}, {3, -0.4, 1.2}}, f64).requires_grad_();  // 0 included
  const Tensor probabilities = input({2, 3}, 0, 1, 5);
  const Tensor class_logits = input({2, 3, 4}, -2, 2, 6);
  const Tensor target = tensor({{0, 3, -100}, {2, 1, 1}}, i64);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    INFO("reduction ", static_cast<int>(r));
    check_gradients([r](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1], r); }, {p, t});
    check_gradients([r](const std::vector<Tensor>& in) { return l1_loss(in[0], in[1], r); }, {above, below});
    check_gradients([r](const std::vector<Tensor>& in) { return bce_with_logits(in[0], in[1], r); },
                    {logits, probabilities});
    check_gradients([=](const std::vector<Tensor>& in) { return cross_entropy(in[0], target, -100, r); },
                    {class_logits});
    check_gradients([=](const std::vector<Tensor>& in) { return nll_loss(in[0], target, -100, r); }, {class_logits});
  }
}

TEST_CASE("losses: errors name the op, the shapes and the bad target") {
  const Tensor a = zeros({2, 3}, f64), b = zeros({3, 2}, f64);
  CHECK(matches(error_of([&] { mse_loss(a, b); }), R"(mse_loss: prediction \[2, 3\] and target \[3, 2\] must have the same shape)"));
  CHECK(matches(error_of([&] { l1_loss(a, zeros({2, 1}, f64)); }), R"(l1_loss: prediction \[2, 3\] and target \[2, 1\])"));
  CHECK(matches(error_of([&] { bce_with_logits(a, b); }), R"(bce_with_logits: prediction \[2, 3\] and target \[3, 2\])"));
  CHECK(matches(error_of([&] { mse_loss(zeros({2}, i64), zeros({2}, i64)); }),
                R"(mse_loss: prediction must be floating point, got i64 \[2\])"));
  const Tensor logits = zeros({2, 3}, f64);
  CHECK(matches(error_of([&] { cross_entropy(logits, tensor({0, 3}, i64)); }),
                R"(cross_entropy: target 3 is out of range for 3 classes \(ignore_index -100\), target shape \[2\])"));
  CHECK(matches(error_of([&] { nll_loss(logits, tensor({-1, 0}, i64)); }), R"(nll_loss: target -1 is out of range for 3 classes)"));
  CHECK(matches(error_of([&] { cross_entropy(logits, tensor({-100, 0}, i64), 0); }),
                R"(cross_entropy: target -100 is out of range for 3 classes \(ignore_index 0\))"));
  CHECK(matches(error_of([&] { cross_entropy(logits, zeros({3}, i64)); }),
                R"(cross_entropy: target \[3\] must be the scores' shape \[2, 3\] without the last \(class\) axis)"));
  CHECK(matches(error_of([&] { cross_entropy(logits, zeros({2}, f64)); }),
                R"(cross_entropy: target must be i64 class indices \(the logits. shape \[2, 3\] without the last axis\) or probabilities of the logits. shape, got f64 \[2\])"));
  CHECK(matches(error_of([&] { nll_loss(scalar(0, f64), scalar(0, i64)); }),
                R"(nll_loss: scores must be floating point \[..., classes\], got f64 \[\])"));
}

TEST_CASE("every layer with one input passes the one-call check") {
  std::vector<std::pair<std::shared_ptr<UnaryModule>, Shape>> layers{
      {std::make_shared<Linear>(3, 2), {2, 3}},
      {std::make_shared<Linear>(3, 2, false), {2, 4, 3}},
      {std::make_shared<Conv1D>(3, 2, 3, 2, 1, Padding::same), {2, 5, 3}},
      {std::make_shared<Conv1D>(2, 2, 2, 1, 2, Padding::causal), {1, 4, 2}},
      {std::make_shared<MaxPool1D>(2), {2, 4, 3}},
      {std::make_shared<AvgPool1D>(3, 1), {2, 5, 2}},
      {std::make_shared<GlobalMaxPool1D>(), {2, 4, 3}},
      {std::make_shared<GlobalAvgPool1D>(), {2, 4, 3}},
      {std::make_shared<Sequential>(Sequential{std::make_shared<Linear>(3, 4), std::make_shared<Tanh>(),
                                               std::make_shared<Linear>(4, 2), std::make_shared<Sigmoid>()}),
       {2, 3}},
      {std::make_shared<RNN>(3, 2, RNNOptions{.num_layers = 2}), {2, 3, 3}},
      {std::make_shared<GRU>(3, 2, RNNOptions{.bidirectional = true}), {2, 3, 3}},
      {std::make_shared<LSTM>(3, 2), {2, 3, 3}},
      {std::make_shared<DepthGatedLSTM>(3, 2, RecurrentOptions{.num_layers = 2}), {2, 3, 3}},
  };
  for (auto& [layer, shape] : layers) {
    INFO(layer->type_name(), " on ", to_string(shape));
    layer->eval();
    std::string report;
    CHECK_NOTHROW(report = check_module(*layer, shape));
    CHECK(matches(report, "gradcheck and gradgradcheck"));
  }
}
