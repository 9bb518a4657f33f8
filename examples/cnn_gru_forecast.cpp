// Forecasting a chaotic series with the course notes' Conv1D -> MaxPooling1D -> Conv1D -> GRU -> Dense.
//
// The Mackey-Glass series (tau = 17) is integrated with Euler steps of 0.1 and sampled every time
// unit:  dx/dt = 0.2 x(t - tau) / (1 + x(t - tau)^10) - 0.1 x(t).
// From a window of the past `window` samples the model predicts the value `horizon` steps after
// the window's last one. The series is split in time (train, then validation, then test), each
// part cut into windows with data::timeseries_windows and normalised with the training part's
// mean and deviation. The convolutions pick out local shape, the pooling halves the length the
// GRU has to run over, and a Dense layer reads the GRU's last state. The loss is the MAE (l1),
// trained with Adam through fit(), halving the learning rate when validation stalls and keeping
// the weights of the best validation epoch.
// Baseline: the naive forecast x(t + h) = x(t), the window's last value.
//
// Usage: cnn_gru_forecast [--epochs N] [--horizon H] [--window W] [--samples N] [--seed S]
//                         [--batch B] [--lr LR] [--quick | --tiny] [--plot [--plot-dir DIR]]
//                         (--help: every flag and its default; --plot: training curves as a PNG)
#include <cmath>
#include <memory>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/report.hpp"
#include <xgrad/viz/plot.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

/// n samples of the Mackey-Glass series, one per time unit, after a transient of 500 units.
Tensor mackey_glass(std::int64_t n, double tau = 17, double dt = 0.1) {
  const auto delay = static_cast<std::size_t>(tau / dt), per_sample = static_cast<std::size_t>(1 / dt);
  const std::size_t transient = 500 * per_sample;
  std::vector<double> x(delay + 1, 1.2);  // constant history x(t <= 0) = 1.2
  xt::xarray<float> samples = xt::xarray<float>::from_shape({static_cast<std::size_t>(n)});
  for (std::size_t step = 0, kept = 0; kept < samples.size(); ++step) {
    const double now = x.back(), past = x[x.size() - 1 - delay];
    x.push_back(now + dt * (0.2 * past / (1 + std::pow(past, 10)) - 0.1 * now));
    if (step >= transient && step % per_sample == 0) samples(kept++) = static_cast<float>(x.back());
  }
  return from_xarray(samples);
}

/// Windows of `window` samples of a part of the series and the value `horizon` steps after each.
data::Windows forecast_windows(const Tensor& series, std::int64_t window, std::int64_t horizon) {
  Tensor targets = slice(series, 0, window - 1 + horizon, series.size(0));
  data::Windows w = data::timeseries_windows(unsqueeze(series, -1), targets, window);  // [N, W, 1], [N]
  w.targets = unsqueeze(w.targets, -1);                                                // [N, 1]
  return w;
}

struct Forecaster : nn::UnaryModule {
  nn::Holder<nn::Conv1D> conv1{this, "conv1", 1, 32, 5};
  nn::Holder<nn::MaxPool1D> pool{this, "pool", 2};
  nn::Holder<nn::Conv1D> conv2{this, "conv2", 32, 32, 5};
  nn::Holder<nn::GRU> gru{this, "gru", 32, 32};
  nn::Holder<nn::Linear> dense{this, "dense", 32, 1};

  Tensor forward(const Tensor& x) override {                // x: [B, W, 1]
    Tensor h = pool(relu(conv1(x)));  // [B, (W - 4) / 2, 32]
    h = relu(conv2(h));               // [B, (W - 4) / 2 - 4, 32]
    return dense(gru->run(h).h());    // the GRU's last state -> [B, 1]
  }
};

}  // namespace

int main(int argc, char** argv) try {
  examples::Cli cli("cnn_gru_forecast",
                    "Forecasts the Mackey-Glass series with Conv1D -> MaxPool1D -> Conv1D -> GRU -> Dense, "
                    "against the naive last-value forecast.");
  std::int64_t epochs = 0, horizon = 10, window = 0, samples = 0, batch = 32;
  double lr = 3e-3;
  cli.add("--epochs", epochs, {40, 20, 2}, "training epochs (the best validation epoch is kept)")->check(examples::positive);
  cli.add("--horizon", horizon, "forecast this many steps after the window's last one")->check(examples::positive);
  cli.add("--window", window, {120, 120, 40}, "past samples the model reads (at least 16)");
  cli.add("--samples", samples, {6000, 3000, 600}, "length of the series (70% train, 15% validation, 15% test)")
      ->check(examples::positive);
  cli.add("--batch", batch, "windows per batch")->check(examples::positive);
  cli.add("--lr", lr, "Adam's learning rate (halved when validation stalls)")->check(examples::positive);
  cli.add_plot();
  if (auto done = cli.parse(argc, argv)) return *done;
  const bool tiny = cli.tiny();
  const std::uint64_t seed = cli.seed();
  check(window >= 16, "cnn_gru_forecast: --window {} is too short for the two convolutions (need 16 or more)", window);
  manual_seed(seed);
  Generator shuffle(seed);

  // Chronological split 70 / 15 / 15, normalised with the training part's statistics.
  Tensor series = mackey_glass(samples);
  const std::int64_t n_train = samples * 70 / 100, n_val = samples * 15 / 100;
  Tensor train_part = slice(series, 0, 0, n_train);
  const double mu = mean(train_part).item(), sd = std::sqrt(mean(square(train_part - mu)).item());
  auto part = [&](std::int64_t start, std::int64_t stop) {
    return forecast_windows((slice(series, 0, start, stop) - mu) / sd, window, horizon);
  };
  const data::Windows train = part(0, n_train), val = part(n_train, n_train + n_val),
                      test = part(n_train + n_val, samples);
  check(val.inputs.size(0) > 0 && test.inputs.size(0) > 0,
        "cnn_gru_forecast: --samples {} leaves no validation or test windows of {} + {} steps", samples, window, horizon);
  fmt::print("Mackey-Glass (tau 17), {} samples: forecast {} steps ahead from windows of {}; {} / {} / {} windows\n",
             samples, horizon, window, train.inputs.size(0), val.inputs.size(0), test.inputs.size(0));

  Forecaster model;
  fmt::print("{}", nn::summary(model, {batch, window, 1}));
  // Test MAE in the series' own units; the naive forecast repeats the window's last value.
  auto test_mae = [&] {
    autograd::NoGradGuard no_grad;
    model.eval();
    double mae = nn::l1_loss(model(test.inputs), test.targets).item() * sd;
    model.train();
    return mae;
  };
  Tensor last = reshape(slice(test.inputs, 1, window - 1, window), {-1, 1});  // [N, 1]
  const double naive = nn::l1_loss(last, test.targets).item() * sd;
  const double mean_forecast = mean(abs(test.targets)).item() * sd;  // always the training mean
  const double untrained = test_mae();

  // Batch sources for fit(): the training windows reshuffled every epoch, validation in order.
  auto step = [&](const data::Windows& w, const std::vector<std::int64_t>& rows) {
    Tensor x = data::take(w.inputs, rows), y = data::take(w.targets, rows);
    return optim::StepResult{nn::l1_loss(model(x), y), {}, static_cast<std::int64_t>(rows.size())};
  };
  std::vector<std::vector<std::int64_t>> order;
  const auto val_order = data::batches(val.inputs.size(0), batch, /*shuffle=*/false);
  const optim::Batches train_batches{
      .count = (train.inputs.size(0) + batch - 1) / batch,
      .run = [&](std::int64_t i) { return step(train, order[i]); },
      .on_epoch_begin = [&](std::int64_t) { order = data::batches(train.inputs.size(0), batch, true, &shuffle); }};
  const optim::Batches val_batches{.count = static_cast<std::int64_t>(val_order.size()),
                                   .run = [&](std::int64_t i) { return step(val, val_order[i]); }};
  optim::Adam adam(model.parameters(), {.lr = lr});
  auto best = std::make_shared<optim::EarlyStopping>(model, "val_loss", /*patience=*/epochs, 0, optim::Mode::min,
                                                     /*restore_best=*/true);
  optim::ReduceLROnPlateau plateau(adam, optim::Mode::min, /*factor=*/0.5, /*patience=*/2);
  const optim::History history = optim::fit(
      model, adam, train_batches, {.epochs = epochs, .clip_norm = 1.0, .plateau = &plateau, .callbacks = {best}},
      &val_batches);
  if (cli.plot()) {  // --plot: the loss per epoch, training and validation, and the learning rate
    const std::string path = cli.plot_path("cnn_gru_forecast_curves.png");
    viz::training_curves(history, path,
                         {.width = 1000, .height = 420,
                          .title = fmt::format("CNN-GRU on Mackey-Glass, {} steps ahead: the MAE loss "
                                               "(normalised units) and the learning rate per epoch",
                                               horizon)});
    fmt::print("picture: {}\n", path);
  }

  const double mae = test_mae();
  fmt::print("best validation epoch {}; test MAE {:.4f} (untrained {:.4f}); naive last value {:.4f}, training mean {:.4f}\n",
             best->best_epoch() + 1, mae, untrained, naive, mean_forecast);
  examples::report({.example = "cnn_gru_forecast",
                    .task = fmt::format("Mackey-Glass, {} steps ahead", horizon),
                    .model = "Conv1D-MaxPool-Conv1D-GRU-Dense",
                    .metric = "test MAE",
                    .value = mae,
                    .baseline = naive});
  if (tiny) return std::isfinite(mae) && mae < untrained ? 0 : 1;
  return mae < naive ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
