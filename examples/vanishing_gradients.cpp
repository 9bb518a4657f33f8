// Vanishing gradients, measured: the adding problem (Hochreiter & Schmidhuber 1997).
//
// Each input is a sequence of T steps [value in [0, 1), marker]; exactly two steps are marked,
// one in each half, and the target is the sum of the two marked values. Predicting the mean
// sum (1.0) always scores an MSE of about 1/6 = 0.167. To beat it, the error at the last step
// has to travel back to the first marker, T/2 or more steps away.
//
// Five recurrent layers of the same hidden size are trained on the same batches with the same
// budget (Adam, gradient norm clipped to 1): SimpleRNN, GRU, LSTM, a 2-layer depth-gated LSTM
// (Yao et al. 2015) and a dilated RNN (Chang et al. 2017: GRU cells, the second layer reading its
// state from 8 steps back, so the first marker is ~T/8 hops from the end instead of ~T); the
// LSTMs start with a forget-gate bias of 1, as in Keras. A linear
// head reads the last hidden state. For each the table gives the test MSE and the gradient that
// reaches the first time step, |dL/dx_1| (per sequence, autograd::grad with respect to the
// input), before and after training, next to |dL/dx_T| at the last step. In the SimpleRNN the
// first step's gradient is smaller than the last's by dozens of orders of magnitude and the
// model stays at the baseline; the gated cells learn to keep it alive (the GRU within a few
// hundred steps, the LSTMs typically a few hundred steps later).
//
// Usage: vanishing_gradients [--steps N] [--length T] [--hidden H] [--batch B] [--lr LR] [--seed S]
//                            [--models SimpleRNN,GRU,LSTM,DepthGatedLSTM,DilatedRNN]
//                            [--dilations 1,8] [--dilated-cell gru|rnn] [--quick | --tiny]
//                            (--help: every flag and its default)
#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/core.h>

#include "common/adding.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

using examples::Adding;
using examples::adding_problem;

/// A recurrent layer and a linear head on its last hidden state (of the top layer).
struct Regressor : nn::Module {
  std::shared_ptr<nn::Recurrent> rnn;
  nn::Holder<nn::Linear> head;
  Regressor(std::shared_ptr<nn::Recurrent> layer, std::int64_t hidden)
      : rnn(register_module("rnn", std::move(layer))), head(this, "head", hidden, 1) {}
  Tensor operator()(const Tensor& x) { return head(rnn->run(x).h()); }  // [B, T, 2] -> [B, 1]
};

/// Root mean square over sequences of |dL_i/dx_i[t]| at steps 0 and T-1, L_i the squared error of
/// sequence i. Taken in float64, whose range shows gradients that float32 would flush to zero.
std::pair<double, double> input_gradients(Regressor& model, const Adding& data) {
  model.to(f64);
  Tensor x = data.x.to(f64).requires_grad_();
  Tensor loss = nn::mse_loss(model(x), data.y.to(f64), nn::Reduction::sum);
  Tensor g = autograd::grad({loss}, {x})[0];  // [N, T, 2]
  model.to(f32);
  const std::int64_t T = g.size(1);
  const double n = static_cast<double>(g.size(0));
  auto rms = [&](std::int64_t t) { return std::sqrt(sum(square(slice(g, 1, t, t + 1))).item() / n); };
  return {rms(0), rms(T - 1)};
}

/// Keras' unit_forget_bias: the forget-gate bias of every LSTM layer starts at 1 (gates i, f, g, o[, d]),
/// so that the cell starts out keeping ~73% of its state per step instead of ~50%.
void unit_forget_bias(nn::Module& model, std::int64_t H) {
  autograd::NoGradGuard no_grad;
  for (auto& [name, b] : model.named_parameters()) {
    if (name.find("bias_ih") == std::string::npos) continue;
    Tensor j = arange(static_cast<double>(b.size(0)));
    b.copy_(b + ge(j, scalar(H)) * lt(j, scalar(2 * H)));
  }
}

double test_mse(Regressor& model, const Adding& data) {
  autograd::NoGradGuard no_grad;
  return nn::mse_loss(model(data.x), data.y).item();
}

struct Row {
  std::string name;
  std::int64_t params = 0;
  double mse_before = 0, mse = 0, grad_first_before = 0, grad_first = 0, grad_last = 0, seconds = 0;
};

}  // namespace

int main(int argc, char** argv) try {
  examples::Cli cli("vanishing_gradients",
                    "The adding problem for SimpleRNN, GRU, LSTM, a depth-gated LSTM and a dilated RNN on the same "
                    "budget, with the gradient that reaches the first time step.");
  const std::vector<std::string> all_models{"SimpleRNN", "GRU", "LSTM", "DepthGatedLSTM", "DilatedRNN"};
  std::int64_t T = 0, requested_steps = 0, H = 0, B = 64;
  double lr = 2e-2;
  std::vector<std::string> chosen = all_models;
  std::vector<std::int64_t> dilations{1, 8};
  std::string dilated_cell = "gru";
  cli.add("--length", T, {100, 100, 20}, "steps per sequence (at least 4)");
  cli.add("--steps", requested_steps, {2000, 1000, 20}, "training steps per model (rounded to 5 epochs)")
      ->check(examples::positive);
  cli.add("--hidden", H, {32, 32, 8}, "hidden units")->check(examples::positive);
  cli.add("--batch", B, "sequences per batch")->check(examples::positive);
  cli.add("--lr", lr, "Adam's learning rate")->check(examples::positive);
  cli.add("--models", chosen, "the models to train (comma-separated)")->delimiter(',')->check(CLI::IsMember(all_models));
  cli.add("--dilations", dilations, "the dilated RNN's dilation per layer (comma-separated)")
      ->delimiter(',')
      ->check(examples::positive);
  cli.add("--dilated-cell", dilated_cell, "the dilated RNN's cell")->check(CLI::IsMember({"gru", "rnn"}));
  if (auto done = cli.parse(argc, argv)) return *done;
  const bool tiny = cli.tiny();
  const std::uint64_t seed = cli.seed();
  const std::int64_t epochs = 5;  // fit() shows progress per epoch: here a fifth of the steps
  const std::int64_t steps = epochs * std::max<std::int64_t>(1, requested_steps / epochs);
  check(T >= 4, "vanishing_gradients: --length {} is too short (need 4 or more: a marker in each half)", T);

  Generator test_gen(20250117);  // one fixed test set for every seed and model
  const Adding test = adding_problem(tiny ? 200 : 1000, T, test_gen);
  const double baseline = mean(square(test.y - 1.0)).item();  // always predicting 1
  fmt::print("Adding problem, T = {}: hidden {}, {} steps of batch {}, Adam lr {} with clipping at norm 1\n", T, H,
             steps, B, lr);
  fmt::print("test set {} sequences; always predicting 1: MSE {:.4f}\n", test.x.size(0), baseline);

  using Make = std::function<std::shared_ptr<nn::Recurrent>()>;
  const std::vector<std::pair<std::string, Make>> models = {
      {"SimpleRNN", [&] { return std::make_shared<nn::RNN>(2, H); }},
      {"GRU", [&] { return std::make_shared<nn::GRU>(2, H); }},
      {"LSTM", [&] { return std::make_shared<nn::LSTM>(2, H); }},
      {"DepthGatedLSTM", [&] { return std::make_shared<nn::DepthGatedLSTM>(2, H, nn::RecurrentOptions{.num_layers = 2}); }},
      {"DilatedRNN", [&] {
         return std::make_shared<nn::DilatedRNN>(
             [&](std::int64_t, std::int64_t in) -> std::shared_ptr<nn::Cell> {
               if (dilated_cell == "gru") return std::make_shared<nn::GRUCell>(in, H);
               return std::make_shared<nn::SimpleRNNCell>(in, H);
             },
             2, dilations);
       }},
  };
  std::vector<Row> rows;
  for (const auto& [name, make] : models) {
    if (std::find(chosen.begin(), chosen.end(), name) == chosen.end()) continue;
    manual_seed(seed);  // the same initialisation stream and
    Generator train_gen(seed + 1);  // the same training batches for every model
    Regressor model(make(), H);
    if (name.find("LSTM") != std::string::npos) unit_forget_bias(model, H);
    Row row{name, model.parameter_count()};
    row.mse_before = test_mse(model, test);
    row.grad_first_before = input_gradients(model, test).first;

    optim::Adam adam(model.parameters(), {.lr = lr});
    optim::Batches train{.count = steps / epochs, .run = [&](std::int64_t) {
      Adding batch = adding_problem(B, T, train_gen);
      return optim::StepResult{nn::mse_loss(model(batch.x), batch.y), {}, B};
    }};
    fmt::print("\n{} ({} layer{}, {} parameters)\n", name, model.rnn->options().num_layers,
               model.rnn->options().num_layers > 1 ? "s" : "", row.params);
    optim::History history = optim::fit(model, adam, train, {.epochs = epochs, .clip_norm = 1.0});
    for (const auto& logs : history.epochs) row.seconds += logs.at("seconds");

    row.mse = test_mse(model, test);
    std::tie(row.grad_first, row.grad_last) = input_gradients(model, test);
    rows.push_back(row);
  }
  check(!rows.empty(), "vanishing_gradients: --models names none of SimpleRNN, GRU, LSTM, DepthGatedLSTM, DilatedRNN");

  fmt::print("\nAdding problem, T = {}, {} steps each (baseline MSE {:.4f})\n", T, steps, baseline);
  fmt::print("{:<15} {:>7} {:>9} {:>9} {:>14} {:>10} {:>10} {:>7}\n", "model", "params", "MSE init", "test MSE",
             "|dL/dx_1| init", "|dL/dx_1|", "|dL/dx_T|", "time");
  const Row* best = &rows.front();
  bool fell = true;
  for (const Row& r : rows) {
    fmt::print("{:<15} {:>7} {:>9.3g} {:>9.3g} {:>14.2e} {:>10.2e} {:>10.2e} {:>6.1f}s\n", r.name, r.params,
               r.mse_before, r.mse, r.grad_first_before, r.grad_first, r.grad_last, r.seconds);
    if (r.mse < best->mse) best = &r;
    fell = fell && std::isfinite(r.mse) && r.mse < r.mse_before;
  }
  fmt::print("(gradient norms per test sequence: at the first step before and after training, at the last after)\n");

  examples::report({.example = "vanishing_gradients",
                    .task = fmt::format("adding problem, T = {}", T),
                    .model = best->name,
                    .metric = "test MSE",
                    .value = best->mse,
                    .baseline = baseline});
  if (tiny) return fell ? 0 : 1;
  return best->mse < baseline ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
