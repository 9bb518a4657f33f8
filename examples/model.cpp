// The README's model: a CNN-GRU regressor defined in a few lines, and its summary.
#include <fmt/core.h>

#include "common/cli.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

struct Forecaster : nn::UnaryModule {
  nn::Holder<nn::Conv1D> conv{this, "conv", 14, 32, 5};
  nn::Holder<nn::MaxPool1D> pool{this, "pool", 3};
  nn::Holder<nn::GRU> gru{this, "gru", 32, 32};
  nn::Holder<nn::Linear> head{this, "head", 32, 1};

  std::string type_name() const override { return "Forecaster"; }
  Tensor forward(const Tensor& x) override {  // x: [B, T, 14]
    Tensor h = pool(relu(conv(x)));           // [B, T', 32], channels-last
    return head(gru->run(h).h());             // the GRU's final hidden state [B, 32] -> [B, 1]
  }
};

int main(int argc, char** argv) {
  examples::Cli cli("model", "A CNN-GRU regressor defined in a few lines, and its summary: the README's model.", examples::Shared::none);
  if (auto done = cli.parse(argc, argv)) return *done;
  Forecaster model;
  fmt::print("{}", nn::summary(model, {32, 240, 14}));
}
