// The losses' options against PyTorch (tests/fixtures/losses.py), their gradients, Keras' names
// and their errors.
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <set>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::nn;
using namespace xgrad::testing;

namespace {

using Loss = std::function<Tensor(const Inputs&)>;

/// One case per fixture name: the reduction is the name's last part ("mean", "sum", "none").
std::map<std::string, Loss> cases() {
  const Tensor weight5 = tensor({0.5, 2.0, 1.0, 0.25, 3.0}, f64);
  const Tensor bweight = tensor({1.0, 2.0, 0.5, 1.5}, f64);
  const Tensor pos_weight = tensor({3.0, 1.0, 0.5, 2.0}, f64);
  std::map<std::string, Loss> out;
  const std::pair<const char*, Reduction> reductions[] = {
      {"mean", Reduction::mean}, {"sum", Reduction::sum}, {"none", Reduction::none}};
  for (const auto& [tag, r] : reductions) {
    const std::string red(tag);
    out["cross_entropy.weight." + red] = [=](const Inputs& in) {
      return cross_entropy(in[0], in[1], {.weight = weight5, .reduction = r});
    };
    out["cross_entropy.smoothing." + red] = [=](const Inputs& in) {
      return cross_entropy(in[0], in[1], {.reduction = r, .label_smoothing = 0.2});
    };
    out["cross_entropy.weight_smoothing." + red] = [=](const Inputs& in) {
      return cross_entropy(in[0], in[1], {.weight = weight5, .reduction = r, .label_smoothing = 0.1});
    };
    out["cross_entropy.soft." + red] = [=](const Inputs& in) {
      return cross_entropy(in[0], in[1], {.weight = weight5, .reduction = r, .label_smoothing = 0.3});
    };
    out["nll_loss.weight." + red] = [=](const Inputs& in) {
      return nll_loss(in[0], in[1], {.weight = weight5, .reduction = r});
    };
    out["binary_cross_entropy." + red] = [=](const Inputs& in) { return binary_cross_entropy(in[0], in[1], r); };
    out["binary_cross_entropy.weight." + red] = [=](const Inputs& in) {
      return binary_cross_entropy(in[0], in[1], r, bweight);
    };
    out["bce_with_logits.pos_weight." + red] = [=](const Inputs& in) {
      return bce_with_logits(in[0], in[1], r, {}, pos_weight);
    };
    out["bce_with_logits.weight_pos_weight." + red] = [=](const Inputs& in) {
      return bce_with_logits(in[0], in[1], r, bweight, pos_weight);
    };
    out["smooth_l1_loss.beta1." + red] = [=](const Inputs& in) { return smooth_l1_loss(in[0], in[1], r); };
    out["smooth_l1_loss.beta0_5." + red] = [=](const Inputs& in) { return smooth_l1_loss(in[0], in[1], r, 0.5); };
    out["smooth_l1_loss.beta0." + red] = [=](const Inputs& in) { return smooth_l1_loss(in[0], in[1], r, 0.0); };
    out["huber_loss.delta1." + red] = [=](const Inputs& in) { return huber_loss(in[0], in[1], r); };
    out["huber_loss.delta2_5." + red] = [=](const Inputs& in) { return huber_loss(in[0], in[1], r, 2.5); };
    out["kl_div." + red] = [=](const Inputs& in) { return kl_div(in[0], in[1], r); };
    out["kl_div.log_target." + red] = [=](const Inputs& in) { return kl_div(in[0], in[1], r, true); };
  }
  out["kl_div.batchmean"] = [](const Inputs& in) { return kl_div(in[0], in[1], Reduction::batchmean); };
  out["cross_entropy.weight.mean.f32"] = [](const Inputs& in) {
    return cross_entropy(in[0], in[1], {.weight = tensor({0.5, 2.0, 1.0, 0.25, 3.0}, f32), .label_smoothing = 0.1});
  };
  return out;
}

/// Composites reduce in another order than PyTorch's fused kernels: 16 units in the last place,
/// plus 4 of the tensor's largest element (a tiny gradient carries its larger terms' rounding).
constexpr Agreement kLosses{.ulps = 16, .scaled = 4};

/// Where xgrad deliberately differs from PyTorch 1.13 (README, "Losses").
const KnownDifferences& known_differences() {
  static const KnownDifferences known = [] {
    KnownDifferences k;
    // smooth_l1 with beta = 0 is l1_loss, whose (sub)gradient at d = 0 is 0; PyTorch's kernel
    // gives -g there to the input AND to the target (it calls its backward with the two swapped)
    for (const char* r : {"mean", "sum", "none"})
      for (int input = 0; input < 2; ++input)
        k[fmt::format("smooth_l1_loss.beta0.{}.grad{}", r, input)] = {{0},
                                                                       "beta = 0 at d = 0: l1's 0, not PyTorch's -g"};
    return k;
  }();
  return known;
}

std::set<std::string> fixture_cases(const Fixture& fixture) {
  std::set<std::string> names;
  for (const auto& [key, t] : fixture.tensors)
    if (key.ends_with(".out")) names.insert(key.substr(0, key.size() - 4));
  return names;
}

}  // namespace

TEST_CASE("losses: every option agrees with PyTorch (values and gradients, edge values included)") {
  const Fixture fixture("losses");
  const auto table = cases();
  const auto names = fixture_cases(fixture);
  for (const auto& [name, f] : table) {
    INFO(name, " has no case in tests/fixtures/losses.py");
    CHECK(names.count(name) == 1);
  }
  for (const std::string& name : names) {
    INFO(name);
    REQUIRE_MESSAGE(table.count(name) == 1, "the fixture's case has no call here");
    Inputs in;
    for (std::size_t k = 0; fixture.has(fmt::format("{}.in{}", name, k)); ++k) {
      const Tensor& x = fixture[fmt::format("{}.in{}", name, k)];
      in.push_back(is_floating(x.dtype()) ? x.detach().requires_grad_() : x);
    }
    const Tensor y = table.at(name)(in);
    check_against_pytorch(name + ".out", y, fixture[name + ".out"], kLosses, known_differences());
    sum(y * fixture[name + ".cot"].to(y.dtype())).backward();
    for (std::size_t k = 0; k < in.size(); ++k) {
      const std::string key = fmt::format("{}.grad{}", name, k);
      if (!fixture.has(key)) continue;
      REQUIRE_MESSAGE(in[k].grad().defined(), key);
      check_against_pytorch(key, in[k].grad(), fixture[key], kLosses, known_differences());
    }
  }
}

TEST_CASE("losses with options: gradcheck and gradgradcheck in float64") {
  const Tensor logits = input({4, 5}, -2, 2, 3);
  const Tensor target = tensor({1.0, 4.0, 0.0, 1.0}, f64).to(i64);
  const Tensor weight = tensor({0.5, 2.0, 1.0, 0.25, 3.0}, f64);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    CAPTURE(static_cast<int>(r));
    check_gradients([&](const Inputs& in) {
      return cross_entropy(in[0], target, {.weight = weight, .reduction = r, .label_smoothing = 0.15});
    }, {logits});
    check_gradients([&](const Inputs& in) {
      return cross_entropy(in[0], softmax(in[1], -1), {.weight = weight, .reduction = r, .label_smoothing = 0.1});
    }, {logits, input({4, 5}, -1, 1, 4)});
    check_gradients([&](const Inputs& in) { return nll_loss(in[0], target, {.weight = weight, .reduction = r}); },
                    {logits});
    // probabilities and targets inside (0, 1), away from the clamp
    check_gradients([&](const Inputs& in) { return binary_cross_entropy(in[0], in[1], r, weight); },
                    {input({3, 5}, 0.05, 0.95, 5), input({3, 5}, 0, 1, 6)});
    check_gradients([&](const Inputs& in) { return bce_with_logits(in[0], in[1], r, weight, weight * 2.0); },
                    {input({3, 5}, -3, 3, 7), input({3, 5}, 0, 1, 8)});
    // differences away from the kinks at |d| = beta, delta and 0
    const Tensor d = input_away_from_zero({3, 4}, 9) * 2.0;
    const Tensor zero = zeros({3, 4}, f64);
    check_gradients([&](const Inputs& in) { return smooth_l1_loss(in[0], zero, r, 0.3); }, {d.detach().requires_grad_()});
    check_gradients([&](const Inputs& in) { return huber_loss(in[0], zero, r, 1.7); }, {d.detach().requires_grad_()});
    check_gradients([&](const Inputs& in) { return kl_div(log_softmax(in[0], -1), softmax(in[1], -1), r); },
                    {input({3, 4}, -1, 1, 10), input({3, 4}, -1, 1, 11)});
    check_gradients([&](const Inputs& in) { return kl_div(in[0], in[1], r, true); },
                    {input({3, 4}, -2, 0, 12), input({3, 4}, -2, 0, 13)});
  }
  check_gradients([&](const Inputs& in) { return kl_div(in[0], softmax(in[1], -1), Reduction::batchmean); },
                  {input({3, 4}, -2, 0, 14), input({3, 4}, -1, 1, 15)});
}

TEST_CASE("losses: zero-size inputs") {
  const Tensor empty = zeros({0, 3}, f64).requires_grad_();
  CHECK(smooth_l1_loss(empty, zeros({0, 3}, f64), Reduction::sum).item() == 0);
  CHECK(huber_loss(empty, zeros({0, 3}, f64), Reduction::none).shape() == Shape{0, 3});
  CHECK(binary_cross_entropy(empty, zeros({0, 3}, f64), Reduction::sum).item() == 0);
  CHECK(std::isnan(kl_div(empty, zeros({0, 3}, f64)).item()));  // the mean of nothing, as PyTorch
  CHECK(cross_entropy(empty, zeros({0}, i64), {.weight = ones({3}, f64), .reduction = Reduction::sum}).item() == 0);
}

TEST_CASE("loss_by_name: Keras' names and semantics") {
  const Tensor p = reshape(tensor({0.2, 0.7, 0.1, 0.5, 0.25, 0.25}, f64), {2, 3});
  const Tensor t = reshape(tensor({0.0, 1.0, 0.0, 0.3, 0.3, 0.4}, f64), {2, 3});
  check_close(loss_by_name("mse")(p, t), mse_loss(p, t));
  check_close(loss_by_name("mean_squared_error")(p, t), mse_loss(p, t));
  check_close(loss_by_name("mae")(p, t), l1_loss(p, t));
  check_close(loss_by_name("mean_absolute_error")(p, t), l1_loss(p, t));
  check_close(loss_by_name("huber")(p * 5.0, t), huber_loss(p * 5.0, t));
  // Keras: -mean(t log(p + eps) + (1 - t) log(1 - p + eps)), p clipped to [eps, 1 - eps]
  double bce = 0, cce = 0;
  const auto pv = p.to_vector<double>(), tv = t.to_vector<double>();
  const double eps = 1e-7;
  for (std::size_t i = 0; i < pv.size(); ++i)
    bce -= tv[i] * std::log(pv[i] + eps) + (1 - tv[i]) * std::log(1 - pv[i] + eps);
  for (std::size_t i = 0; i < pv.size(); ++i) cce -= tv[i] * std::log(pv[i]);  // rows of p sum to 1
  check_close(loss_by_name("binary_crossentropy")(p, t), scalar(bce / 6, f64));
  check_close(loss_by_name("categorical_crossentropy")(p, t), scalar(cce / 2, f64));
  // kld: t and p clipped to [eps, 1]; a zero target contributes eps log(eps / p)
  double kld_rows = 0;
  for (std::size_t i = 0; i < pv.size(); ++i) {
    const double ti = std::max(tv[i], eps);
    kld_rows += ti * std::log(ti / pv[i]);
  }
  check_close(loss_by_name("kld")(p, t), scalar(kld_rows / 2, f64));
  check_close(loss_by_name("kl_divergence")(p, t), scalar(kld_rows / 2, f64));
  // sparse: -log p_y of probabilities (rows summing to 1)
  check_close(loss_by_name("sparse_categorical_crossentropy")(p, tensor({1.0, 2.0}, f64).to(i64)),
              scalar(-(std::log(0.7) + std::log(0.25)) / 2, f64));
  CHECK(matches(error_of([] { loss_by_name("mean_squared_errors"); }),
                R"(loss_by_name: unknown loss 'mean_squared_errors'; known: mse, )"));
}

TEST_CASE("losses: bad options and inputs are errors naming the loss") {
  const Tensor logits = zeros({2, 3}, f64);
  const Tensor target = tensor({0.0, 2.0}, f64).to(i64);
  CHECK(matches(error_of([&] { cross_entropy(logits, target, {.weight = ones({4}, f64)}); }),
                R"(cross_entropy: weight must be floating point \[3\] \(one per class\), got f64 \[4\])"));
  CHECK(matches(error_of([&] { cross_entropy(logits, target, {.label_smoothing = 1.5}); }),
                R"(cross_entropy: label_smoothing must lie in \[0, 1\], got 1.5)"));
  CHECK(matches(error_of([&] { cross_entropy(logits, zeros({2, 4}, f64)); }),
                R"(cross_entropy: target must be i64 class indices \(the logits' shape \[2, 3\] without the last axis\) or probabilities of the logits' shape, got f64 \[2, 4\])"));
  CHECK(matches(error_of([&] { nll_loss(logits, target, {.weight = ones({3}, i64)}); }),
                R"(nll_loss: weight must be floating point \[3\])"));
  CHECK(matches(error_of([&] { binary_cross_entropy(full({2}, 1.5, f64), zeros({2}, f64)); }),
                R"(binary_cross_entropy: every element of the probabilities must lie in \[0, 1\] \(shape \[2\]\))"));
  CHECK(matches(error_of([&] { binary_cross_entropy(full({2}, NAN, f64), zeros({2}, f64)); }),
                R"(binary_cross_entropy: every element of the probabilities)"));
  CHECK(matches(error_of([&] { binary_cross_entropy(zeros({2}, f64), full({2}, -1, f64)); }),
                R"(binary_cross_entropy: every element of the targets must lie in \[0, 1\])"));
  CHECK(matches(error_of([&] { bce_with_logits(zeros({2, 3}, f64), zeros({2, 3}, f64), Reduction::mean, {}, ones({2}, f64)); }),
                R"(bce_with_logits: pos_weight \[2\] does not broadcast to the input's shape \[2, 3\])"));
  CHECK(matches(error_of([&] { smooth_l1_loss(logits, logits, Reduction::mean, -1); }),
                R"(smooth_l1_loss: beta must be >= 0, got -1)"));
  CHECK(matches(error_of([&] { huber_loss(logits, logits, Reduction::mean, 0); }),
                R"(huber_loss: delta must be > 0, got 0)"));
  CHECK(matches(error_of([&] { kl_div(logits, zeros({3, 2}, f64)); }),
                R"(kl_div: prediction \[2, 3\] and target \[3, 2\] must have the same shape)"));
}

TEST_CASE("tensor_batches: Keras' fit(x, y) with a loss by name") {
  manual_seed(3);
  nn::Linear model(3, 1);
  const Tensor x = randn({50, 3}, f32);
  const Tensor y = matmul(x, reshape(tensor({0.5, -2.0, 1.0}, f32), {3, 1})) + 0.25;
  optim::Adam adam(model.parameters(), {.lr = 0.05});
  const auto history = optim::fit(model, adam, optim::tensor_batches(model, x, y, "mse", 8),
                                  {.epochs = 40, .progress = false});
  REQUIRE(history.epochs.size() == 40);
  CHECK(history.epochs.back().at("loss") < 1e-3 * history.epochs.front().at("loss"));

  // every epoch visits each row once, in batches of 8 (the last of 2), in a new order
  const Tensor rows = reshape(arange(50, f32), {50, 1});
  std::vector<double> seen;
  const nn::LossFunction record = [&](const Tensor& prediction, const Tensor& target) {
    for (double v : target.to_vector<double>()) seen.push_back(v);
    return mse_loss(prediction, target);
  };
  nn::Linear probe(1, 1);
  optim::SGD sgd(probe.parameters(), {.lr = 0});
  const optim::Batches batches = optim::tensor_batches(probe, rows, rows, record, 8);
  CHECK(batches.count == 7);
  optim::fit(probe, sgd, batches, {.epochs = 2, .progress = false});
  REQUIRE(seen.size() == 100);
  std::vector<double> first(seen.begin(), seen.begin() + 50), second(seen.begin() + 50, seen.end());
  CHECK(first != second);
  std::sort(first.begin(), first.end());
  std::sort(second.begin(), second.end());
  CHECK(first == rows.to_vector<double>());
  CHECK(second == rows.to_vector<double>());
  CHECK(matches(error_of([&] { optim::tensor_batches(probe, rows, zeros({3, 1}), "mse"); }),
                R"(tensor_batches: x \[50, 1\] and y \[3, 1\] must have the same number of rows)"));
}
