// A program outside xgrad, built the way a user builds one (tests/consumer/CMakeLists.txt runs
// it against the installed package, pkg-config and add_subdirectory). Its own core/, nn/ and data/
// headers sit first on the include path under the same names as xgrad's, so a shadowed xgrad
// header shows as a compile error. Exit 0 only when training does what it should.
#include <xgrad/xgrad.hpp>
#include <xgrad/nn/recurrent.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/tensor.hpp"
#include "data/batch.hpp"
#include "nn/linear.hpp"

using namespace xgrad;

namespace {
int failures = 0;
void expect(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  // The consumer's own headers of the same names are the ones it got.
  app::Series series{{1, 2, 3}};
  app::data::Batch own_batch{0, 4};
  expect(series.sum() == 6 && app::nn::affine(2, 3, 1) == 7 && own_batch.size == 4, "the consumer's own headers");

  // xgrad's data/batch.hpp: batches of 0..9 in threes cover every index once.
  auto batches = data::batches(10, 3, /*shuffle=*/true);
  std::vector<int> seen(10, 0);
  for (const auto& b : batches)
    for (auto i : b) ++seen.at(i);
  expect(batches.size() == 4 && std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }),
         "data::batches covers 0..9 once");

  // LSTM + Linear on a fixed batch: x [4, 5, 3] -> final h [4, 8] -> y [4, 1].
  manual_seed(7);
  nn::LSTM lstm(3, 8);
  nn::Linear head(8, 1);
  std::vector<Tensor> params = lstm.parameters();
  for (const Tensor& p : head.parameters()) params.push_back(p);
  expect(params.size() == 6, "LSTM (4) + Linear (2) parameters");
  Tensor x = randn({4, 5, 3});
  Tensor y = randn({4, 1});
  auto loss_of = [&] { return nn::mse_loss(head(lstm.run(x).h()), y); };

  Tensor loss = loss_of();
  const double first = loss.item();
  loss.backward();
  for (const Tensor& p : params) {
    const bool has_grad = p.grad().defined() && p.grad().numel() == p.numel();
    const double size = has_grad ? sum(abs(p.grad())).item() : 0.0;
    expect(has_grad && std::isfinite(size) && size > 0, "every parameter gets a finite, nonzero gradient");
  }
  const Tensor before = head.weight.clone();
  optim::Adam adam(params, {.lr = 0.02});
  adam.step();
  expect(sum(abs(head.weight - before)).item() > 0, "Adam's step moves the weights");
  for (int step = 1; step < 40; ++step) {
    adam.zero_grad();
    Tensor l = loss_of();
    l.backward();
    adam.step();
  }
  double last = 0;
  {
    autograd::NoGradGuard no_grad;
    last = loss_of().item();
  }
  expect(std::isfinite(first) && std::isfinite(last) && last < 0.5 * first, "40 Adam steps halve the loss");

  std::printf("consumer: loss %.4f -> %.4f after 40 steps\n", first, last);
  return failures == 0 ? 0 : 1;
}
