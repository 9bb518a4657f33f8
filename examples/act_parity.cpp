// The parity task of Adaptive Computation Time (Graves 2016, arXiv:1603.08983).
//
// Each input is a vector of 64 entries: a random number of them, from 1 to 64, are set to 1 or -1
// at random places, the rest are 0; the target is 1 when the count of 1s is odd, 0 when it is even.
// The whole vector arrives at once, as a sequence of one step, so a plain RNN gets one update of its
// hidden state to compute the parity, while an RNN wrapped in nn::ACT may ponder over it for as
// many steps as it likes (up to --max-ponder), paying tau per ponder step in its loss. Both are
// Elman RNNs with tanh units and a linear read-out on the last hidden state, at about the same
// parameter count, trained alike (Adam, gradient clipping, BCE with logits). At the end a table
// gives, against the number of non-zero entries (the difficulty), each model's accuracy on
// held-out vectors and the ACT model's mean ponder steps N.
//
// Measured on 2 shared cores (seed 1, 2026-12-03): the full run (20000 steps of batch 128, 49 s for
// ACT, 23 s for the plain RNN) leaves both at chance on 64 entries (0.499 and 0.493; ACT ponders
// 1.3-1.7 steps): Graves trained for far longer. With --bits 16 --steps 30000 ACT learns the
// vectors with 1 to 3 non-zeros (1.00, 0.96, 0.68 against the plain RNN's 0.96, 0.68, 0.30) and
// ponders longer for more non-zeros (2.8, 5.7, 9.9 steps, then 10-14), overall 0.575 against 0.539.
// --quick (3000 steps, 9 s) stays at chance for both (0.498 ACT, 0.500 plain), so it is not part of
// `make demo`.
//
// Usage: act_parity [--steps N] [--batch B] [--lr R] [--bits D] [--hidden H] [--tau T] [--max-ponder N]
//                   [--test N] [--seed S] [--quick | --tiny] [--plot [--plot-dir DIR]]
//                   (--help: every flag and its default; --plot: accuracy and ponder steps as a PNG)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/report.hpp"
#include <xgrad/viz/plot.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

/// A batch of the parity task: x [B, 1, D] (one step), the parity y [B, 1] and the number of
/// non-zero entries of each vector.
struct Parity {
  Tensor x, y;
  std::vector<std::int64_t> nonzeros;
};

/// Vectors with `nonzeros[b]` entries set to +-1 at random places (0 draws the count: 1 to D).
Parity parity(std::vector<std::int64_t> nonzeros, std::int64_t D, Generator& gen) {
  auto& engine = gen.engine();
  const auto B = static_cast<std::int64_t>(nonzeros.size());
  xt::xarray<float> x = xt::zeros<float>({static_cast<std::size_t>(B), std::size_t{1}, static_cast<std::size_t>(D)});
  xt::xarray<float> y = xt::zeros<float>({static_cast<std::size_t>(B), std::size_t{1}});
  std::vector<std::int64_t> places(static_cast<std::size_t>(D));
  for (std::int64_t b = 0; b < B; ++b) {
    if (nonzeros[b] == 0) nonzeros[b] = std::uniform_int_distribution<std::int64_t>(1, D)(engine);
    std::iota(places.begin(), places.end(), 0);
    std::shuffle(places.begin(), places.end(), engine);
    int ones = 0;
    for (std::int64_t i = 0; i < nonzeros[b]; ++i) {
      const bool one = std::bernoulli_distribution(0.5)(engine);
      x(b, 0, places[i]) = one ? 1.0f : -1.0f;
      ones += one;
    }
    y(b, 0) = static_cast<float>(ones % 2);
  }
  return {from_xarray(x), from_xarray(y), nonzeros};
}

/// An Elman RNN (tanh) over the one-step sequence, optionally inside ACT, and a linear read-out.
struct Model : nn::Module {
  nn::Holder<nn::Recurrent> rnn;
  nn::Holder<nn::Linear> head;
  bool act;
  Model(std::int64_t D, std::int64_t H, bool adaptive, std::int64_t max_ponder)
      : rnn(this, "rnn",
            [=](std::int64_t, std::int64_t in) -> std::shared_ptr<nn::Cell> {
              if (!adaptive) return std::make_shared<nn::SimpleRNNCell>(in, H);
              return std::make_shared<nn::ACT>(std::make_shared<nn::SimpleRNNCell>(in + 1, H),
                                               nn::ACTOptions{.max_steps = max_ponder});
            },
            D, nn::RecurrentOptions{.return_sequences = false}),
        head(this, "head", H, 1),
        act(adaptive) {}

  /// The logits [B, 1] and, for ACT, the ponder cost rho [B, 1] (zeros without ACT).
  std::pair<Tensor, Tensor> operator()(const Tensor& x) {
    nn::RecurrentResult r = rnn->run(x);
    Tensor cost = act ? static_cast<nn::ACT&>(rnn->cell(0)).ponder_cost(r.final_state()) : zeros({x.size(0), 1});
    return {head(r.output), cost};
  }
};

/// The plain RNN's hidden size whose parameter count is closest to `target`.
std::int64_t matched_hidden(std::int64_t D, std::int64_t target) {
  auto count = [D](std::int64_t H) { return H * D + H * H + 2 * H + H + 1; };  // W_ih, W_hh, b_ih, b_hh, head
  std::int64_t best = 1;
  for (std::int64_t H = 1; H < 4096; ++H)
    if (std::abs(count(H) - target) < std::abs(count(best) - target)) best = H;
  return best;
}

double train(Model& model, std::int64_t steps, std::int64_t B, std::int64_t D, double lr, double tau, std::uint64_t seed) {
  Generator gen(seed);
  optim::Adam adam(model.parameters(), {.lr = lr});
  optim::ProgressBar bar(steps);
  double loss_avg = 0, acc_avg = 0, ponder_avg = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::int64_t step = 1; step <= steps; ++step) {
    const Parity batch = parity(std::vector<std::int64_t>(static_cast<std::size_t>(B), 0), D, gen);
    adam.zero_grad();
    auto [logits, rho] = model(batch.x);
    Tensor task = nn::bce_with_logits(logits, batch.y);
    Tensor loss = model.act ? task + tau * mean(rho) : task;  // tau * the mean of rho over the batch
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    const double acc = mean(eq(gt(logits.detach(), scalar(0.0f)), batch.y)).item();
    const double w = step == 1 ? 1.0 : 0.02;  // smoothed for display
    loss_avg += w * (task.item() - loss_avg);
    acc_avg += w * (acc - acc_avg);
    ponder_avg += w * (mean(rho).item() - ponder_avg);
    if (model.act)
      bar.update(step, {{"loss", loss_avg}, {"acc", acc_avg}, {"rho", ponder_avg}});
    else
      bar.update(step, {{"loss", loss_avg}, {"acc", acc_avg}});
  }
  bar.finish({{"loss", loss_avg}, {"acc", acc_avg}});
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// Per number of non-zeros k = 1..D: the accuracy and the mean ponder steps N over `per_k` vectors.
struct Scores {
  std::vector<double> accuracy, steps;
  double overall = 0;
};

Scores evaluate(Model& model, std::int64_t D, std::int64_t per_k, std::uint64_t seed) {
  autograd::NoGradGuard no_grad;
  model.eval();
  Generator gen(seed);
  std::vector<std::int64_t> ks;
  for (std::int64_t k = 1; k <= D; ++k) ks.insert(ks.end(), static_cast<std::size_t>(per_k), k);
  const Parity test = parity(ks, D, gen);  // the same vectors for both models
  auto [logits, rho] = model(test.x);
  const auto right = eq(gt(logits, scalar(0.0f)), test.y).to_vector<double>();
  const auto cost = rho.to_vector<double>();
  Scores s{std::vector<double>(static_cast<std::size_t>(D)), std::vector<double>(static_cast<std::size_t>(D)), 0};
  for (std::size_t i = 0; i < right.size(); ++i) {
    const std::size_t k = static_cast<std::size_t>(ks[i] - 1);
    s.accuracy[k] += right[i] / static_cast<double>(per_k);
    // rho = N + R with R in (0, 1], so N = ceil(rho) - 1 (one time step, so rho is that step's)
    if (model.act) s.steps[k] += (std::ceil(cost[i]) - 1) / static_cast<double>(per_k);
    s.overall += right[i] / static_cast<double>(right.size());
  }
  model.train();
  return s;
}

}  // namespace

int main(int argc, char** argv) try {
  examples::Cli cli("act_parity",
                    "Graves's parity task: an RNN with Adaptive Computation Time against a plain RNN of about the "
                    "same size; accuracy and ponder steps against the number of non-zero entries.");
  std::int64_t steps = 0, B = 0, D = 0, H = 0, max_ponder = 0, per_k = 0;
  double lr = 0, tau = 0;
  cli.add("--steps", steps, {20000, 3000, 40}, "training steps of each model")->check(examples::positive);
  cli.add("--batch", B, {128, 128, 16}, "vectors per step")->check(examples::positive);
  cli.add("--lr", lr, {1e-3, 1e-3, 1e-3}, "Adam's learning rate")->check(examples::positive);
  cli.add("--bits", D, {64, 64, 8}, "entries per vector (D)")->check(examples::positive);
  cli.add("--hidden", H, {128, 128, 8}, "the ACT RNN's tanh units (the plain RNN gets as many as match its parameters)")
      ->check(examples::positive);
  cli.add("--tau", tau, {1e-3, 1e-3, 1e-3}, "the ponder cost's weight in the loss")->check(examples::nonnegative);
  cli.add("--max-ponder", max_ponder, {20, 20, 5}, "ACT's max_steps: ponder steps per input at most")
      ->check(examples::positive);
  cli.add("--test", per_k, {100, 40, 10}, "held-out vectors per number of non-zeros")->check(examples::positive);
  cli.add_plot();
  if (auto done = cli.parse(argc, argv)) return *done;
  const bool tiny = cli.tiny();
  const std::uint64_t seed = cli.seed();
  manual_seed(seed);

  Model act(D, H, true, max_ponder);
  const std::int64_t H_plain = matched_hidden(D, act.parameter_count());
  Model plain(D, H_plain, false, 1);
  fmt::print("Parity of {}-entry vectors (1 to {} non-zeros); {} steps of batch {}, Adam lr {}, clip 1\n", D, D, steps,
             B, lr);
  fmt::print("ACT RNN: {} tanh units, at most {} ponder steps, tau {}: {} parameters\n", H, max_ponder, tau,
             act.parameter_count());
  fmt::print("plain RNN: {} tanh units: {} parameters\n\n", H_plain, plain.parameter_count());

  const double seconds_act = train(act, steps, B, D, lr, tau, seed + 7);
  fmt::print("ACT RNN trained in {:.1f} s\n\n", seconds_act);
  const double seconds_plain = train(plain, steps, B, D, lr, tau, seed + 7);
  fmt::print("plain RNN trained in {:.1f} s\n\n", seconds_plain);
  const Scores a = evaluate(act, D, per_k, seed + 100), p = evaluate(plain, D, per_k, seed + 100);

  // the table, in bins of non-zero counts
  const std::int64_t bin = std::max<std::int64_t>(1, D / 16);
  fmt::print("non-zeros   plain RNN acc   ACT RNN acc   ACT ponder steps N\n");
  for (std::int64_t lo = 1; lo <= D; lo += bin) {
    const std::int64_t hi = std::min(D, lo + bin - 1);
    double pa = 0, aa = 0, n = 0;
    for (std::int64_t k = lo; k <= hi; ++k) {
      pa += p.accuracy[k - 1] / static_cast<double>(hi - lo + 1);
      aa += a.accuracy[k - 1] / static_cast<double>(hi - lo + 1);
      n += a.steps[k - 1] / static_cast<double>(hi - lo + 1);
    }
    fmt::print("{:>9}   {:>13.3f}   {:>11.3f}   {:>18.2f}\n", lo == hi ? fmt::format("{}", lo) : fmt::format("{}-{}", lo, hi),
               pa, aa, n);
  }
  fmt::print("{:>9}   {:>13.3f}   {:>11.3f}   {:>18.2f}\n", "all", p.overall, a.overall,
             std::accumulate(a.steps.begin(), a.steps.end(), 0.0) / static_cast<double>(D));

  if (cli.plot()) {  // --plot: accuracy of both and ACT's ponder steps against the non-zero count
    std::vector<std::string> columns;
    xt::xarray<double> acc = xt::zeros<double>({std::size_t{2}, static_cast<std::size_t>(D)});
    xt::xarray<double> ponder = xt::zeros<double>({std::size_t{1}, static_cast<std::size_t>(D)});
    for (std::int64_t k = 0; k < D; ++k) {
      columns.push_back(std::to_string(k + 1));
      acc(0, k) = p.accuracy[k];
      acc(1, k) = a.accuracy[k];
      ponder(0, k) = a.steps[k];
    }
    const std::string path = cli.plot_path("act_parity.png");
    viz::heat_maps({{.values = from_xarray(acc),
                     .title = "accuracy on held-out vectors",
                     .x_label = "non-zero entries",
                     .y_label = "model",
                     .col_labels = columns,
                     .row_labels = {"plain RNN", "ACT RNN"},
                     .value_label = "accuracy",
                     .min = 0,
                     .max = 1},
                    {.values = from_xarray(ponder),
                     .title = "ACT's mean ponder steps N",
                     .x_label = "non-zero entries",
                     .y_label = "",
                     .col_labels = columns,
                     .row_labels = {"ACT RNN"},
                     .value_label = "steps",
                     .min = 0}},
                   path, {.width = 1200, .height = 520, .title = fmt::format("Parity of {}-entry vectors", D)});
    fmt::print("picture: {}\n", path);
  }

  examples::report({.example = "act_parity",
                    .task = fmt::format("parity, {} entries", D),
                    .model = "ACT RNN",
                    .metric = "test accuracy",
                    .value = a.overall,
                    .baseline = p.overall,
                    .higher_is_better = true});
  if (tiny) return std::isfinite(a.overall) && std::isfinite(p.overall) ? 0 : 1;
  return a.overall > p.overall ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
