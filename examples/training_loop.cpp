// The README's two training loops on one small problem: a GRU classifying whether a sequence of
// numbers sums to more than zero. First written by hand, then with optim::fit.
#include <fmt/core.h>

#include "common/cli.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

struct Classifier : nn::Module {
  nn::Holder<nn::GRU> gru{this, "gru", 1, 16};
  nn::Holder<nn::Linear> head{this, "head", 16, 2};
  Tensor operator()(const Tensor& x) { return head(gru->run(x).h()); }  // x: [B, T, 1] -> logits [B, 2]
};

int main(int argc, char** argv) {
  examples::Cli cli("training_loop", "The README's two training loops (by hand, then with optim::fit) on a GRU classifying whether a sequence sums above zero.", examples::Shared::none);
  if (auto done = cli.parse(argc, argv)) return *done;
  manual_seed(0);
  Tensor x = randn({256, 12, 1});
  Tensor y = gt(sum(x, {1, 2}), scalar(0)).to(i64);  // label: does the sequence sum above zero?

  // --- by hand --------------------------------------------------------------------------------
  Classifier model;
  optim::Adam adam(model.parameters(), {.lr = 0.01});
  for (int epoch = 1; epoch <= 20; ++epoch) {
    double total = 0;
    for (const auto& rows : data::batches(256, 32)) {
      Tensor xb = data::take(x, rows), yb = data::take(y, rows);
      adam.zero_grad();
      Tensor loss = nn::cross_entropy(model(xb), yb);
      loss.backward();
      optim::clip_grad_norm(model.parameters(), 1.0);
      adam.step();
      total += loss.item() * static_cast<double>(rows.size());
    }
    if (epoch % 5 == 0) fmt::print("epoch {:2d}  loss {:.4f}\n", epoch, total / 256);
  }

  // --- with fit ------------------------------------------------------------------------------
  Classifier fitted;
  optim::Adam opt(fitted.parameters(), {.lr = 0.01});
  std::vector<std::vector<std::int64_t>> order;
  optim::Batches train{.count = 8, .run = [&](std::int64_t i) {
    Tensor xb = data::take(x, order[i]), yb = data::take(y, order[i]);
    Tensor logits = fitted(xb);
    double accuracy = mean(eq(max(logits, 1).indices, yb).to(f32)).item();
    return optim::StepResult{nn::cross_entropy(logits, yb), {{"acc", accuracy}}, static_cast<std::int64_t>(order[i].size())};
  }, .on_epoch_begin = [&](std::int64_t) { order = data::batches(256, 32); }};
  optim::History history = optim::fit(fitted, opt, train, {.epochs = 20, .clip_norm = 1.0});
  const double first = history.epochs.front().at("loss"), last = history.epochs.back().at("loss");
  fmt::print("fit: loss {:.4f} -> {:.4f}, accuracy {:.3f}\n", first, last, history.epochs.back().at("acc"));
  return last < first ? 0 : 1;
}
