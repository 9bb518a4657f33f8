// A new recurrent cell in one screen, proven with one call, then trained.
//
// Zoneout (Krueger et al. 2016) around any cell: in training, each unit of the new state keeps
// its previous value with probability z (a per-unit coin), like dropout that preserves instead of
// zeroing; in eval the state moves by the expected amount:
//   training: h' = m * h + (1 - m) * cell(x, h),  m ~ Bernoulli(z);   eval: h' = z h + (1 - z) cell(x, h)
// The cell owns another cell (a registered submodule), behaves differently in train and eval and
// passes the recurrent-dropout mask on; the generic driver gives it sequences, masking, stacking,
// bidirectionality and dropout, and the layer reaches everything it registers (parameters(),
// state_dict(), to(), train()/eval(), save/load). nn::check_cell proves it: float64 gradcheck and
// gradgradcheck through a few steps, state shapes, registration, the recurrent-dropout mask, eval
// determinism and a state_dict round trip, then the same inside a 2-layer bidirectional layer with
// lengths and dropout. Then it is trained on the adding problem (Hochreiter & Schmidhuber 1997):
// of T numbers in [0, 1), two are marked (one in each half) and the target is their sum; always
// predicting the mean sum 1.0 scores an MSE of about 0.167. Adam with gradient clipping, a linear
// head on the last hidden state.
//
// Usage: custom_cell [--steps N] [--length T] [--hidden H] [--batch B] [--lr LR] [--zoneout Z] [--seed S]
//                    [--prove] [--quick | --tiny]   (--help: every flag and its default)
#include <cmath>
#include <memory>
#include <string>

#include <fmt/core.h>

#include "common/adding.hpp"
#include "common/cli.hpp"
#include "common/report.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

class Zoneout : public nn::Cell {
 public:
  Zoneout(std::shared_ptr<nn::Cell> cell, double z)
      : Cell(cell->input_size(), cell->hidden_size(), cell->state_count()), cell_(register_module("cell", cell)), z_(z) {}
  std::string type_name() const override { return "Zoneout"; }
  std::vector<Shape> state_shapes() const override { return cell_->state_shapes(); }
  Tensor project_input(const Tensor& x) override { return cell_->project_input(x); }
  void set_recurrent_mask(const Tensor& mask) override { cell_->set_recurrent_mask(mask); }

  nn::State step(const Tensor& x, const nn::State& state) override {
    nn::State next = cell_->step(x, state);
    for (std::size_t i = 0; i < next.size(); ++i) {
      const Tensor &h = state[i], &n = next[i];
      next[i] = is_training() ? where(lt(uniform(h.shape(), 0, 1, h.dtype()), full_like(h, z_)), h, n)
                              : z_ * h + (1 - z_) * n;
    }
    return next;
  }

 private:
  std::shared_ptr<nn::Cell> cell_;
  double z_;
};

using examples::Adding;
using examples::adding_problem;

/// A zoned-out MGU layer and a linear head on its last hidden state.
struct Regressor : nn::Module {
  nn::Holder<nn::Recurrent> rnn;
  nn::Holder<nn::Linear> head;
  Regressor(std::int64_t hidden, double z)
      : rnn(this, "rnn", [=](std::int64_t, std::int64_t in) { return std::make_shared<Zoneout>(std::make_shared<nn::MGUCell>(in, hidden), z); }, 2),
        head(this, "head", hidden, 1) {}
  Tensor operator()(const Tensor& x) { return head(rnn->run(x).h()); }  // [B, T, 2] -> [B, 1]
};

}  // namespace

int main(int argc, char** argv) try {
  examples::Cli cli("custom_cell",
                    "A zoneout cell around a shipped MGU, defined here, proven by nn::check_cell, then trained on "
                    "the adding problem.");
  std::int64_t T = 0, steps = 0, H = 0, B = 64;
  double lr = 1e-2, z = 0.1;
  bool prove = false;
  cli.add("--length", T, {50, 50, 20}, "steps per sequence of the adding problem")->check(examples::positive);
  cli.add("--steps", steps, {1000, 400, 30}, "training steps")->check(examples::positive);
  cli.add("--hidden", H, {32, 32, 8}, "hidden units")->check(examples::positive);
  cli.add("--batch", B, "sequences per batch")->check(examples::positive);
  cli.add("--lr", lr, "Adam's learning rate")->check(examples::positive);
  cli.add("--zoneout", z, "probability that a unit keeps its previous value")->check(examples::probability);
  cli.add_switch("--prove", prove, "only prove the cell (nn::check_cell) and stop");
  if (auto done = cli.parse(argc, argv)) return *done;
  const bool tiny = cli.tiny();
  const std::uint64_t seed = cli.seed();
  manual_seed(seed);

  // 1. Prove it: alone (float64 gradcheck and gradgradcheck through 3 steps w.r.t. the input, the
  //    state and every parameter; state shapes; registration; recurrent-dropout mask; eval
  //    determinism; state_dict round trip), then inside a 2-layer bidirectional layer.
  auto zoned_mgu = [](std::int64_t, std::int64_t in) { return std::make_shared<Zoneout>(std::make_shared<nn::MGUCell>(in, 4), 0.25); };
  fmt::print("{}\n\n", nn::check_cell(zoned_mgu));
  if (prove) return 0;  // --prove: the proof alone

  // 2. Train it on the adding problem, against always predicting 1 on a fixed test set.
  Generator data_gen(seed), test_gen(20250117);
  const Adding test = adding_problem(tiny ? 200 : 1000, T, test_gen);
  const double baseline = mean(square(test.y - 1.0)).item();
  Regressor model(H, z);
  auto test_mse = [&] {
    autograd::NoGradGuard no_grad;
    model.eval();
    const double mse = nn::mse_loss(model(test.x), test.y).item();
    model.train();
    return mse;
  };
  const double untrained = test_mse();
  fmt::print("Adding problem, T = {}: MGU with zoneout {}, {} hidden units ({} parameters), {} steps of batch {}, Adam lr {}\n",
             T, z, H, model.parameter_count(), steps, B, lr);

  optim::Adam adam(model.parameters(), {.lr = lr});
  optim::ProgressBar bar(steps);
  double running = 0;
  for (std::int64_t step = 1; step <= steps; ++step) {
    Adding batch = adding_problem(B, T, data_gen);
    adam.zero_grad();
    Tensor loss = nn::mse_loss(model(batch.x), batch.y);
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    running = step == 1 ? loss.item() : 0.95 * running + 0.05 * loss.item();  // smoothed for display
    bar.update(step, {{"loss", running}});
  }
  bar.finish({{"loss", running}});

  const double mse = test_mse();
  fmt::print("test MSE {:.4f} (untrained {:.4f}); always predicting 1: {:.4f}\n", mse, untrained, baseline);
  examples::report({.example = "custom_cell",
                    .task = fmt::format("adding problem, T = {}", T),
                    .model = "zoneout MGU (custom cell)",
                    .metric = "test MSE",
                    .value = mse,
                    .baseline = baseline});
  if (tiny) return std::isfinite(mse) && mse < untrained ? 0 : 1;
  return mse < baseline ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
