// The README's model: a CNN-GRU regressor defined in a few lines, and its summary.
#include <fmt/core.h>

#include "xgrad.hpp"

using namespace xgrad;

struct Forecaster : nn::UnaryModule {
  std::shared_ptr<nn::Conv1D> conv = register_module("conv", std::make_shared<nn::Conv1D>(14, 32, 5));
  std::shared_ptr<nn::MaxPool1D> pool = register_module("pool", std::make_shared<nn::MaxPool1D>(3));
  std::shared_ptr<nn::GRU> gru = register_module("gru", std::make_shared<nn::GRU>(32, 32));
  std::shared_ptr<nn::Linear> head = register_module("head", std::make_shared<nn::Linear>(32, 1));

  std::string type_name() const override { return "Forecaster"; }
  Tensor forward(const Tensor& x) override {            // x: [B, T, 14]
    Tensor h = (*pool)(relu((*conv)(x)));                 // [B, T', 32], channels-last
    Tensor last = gru->run(h).states[0][0];               // the final hidden state [B, 32]
    return (*head)(last);                                 // [B, 1]
  }
};

int main() {
  Forecaster model;
  fmt::print("{}", nn::summary(model, {32, 240, 14}));
}
