#pragma once
// The model and optimizer that fuzz_state_dict loads into, shared with fuzz_seeds (which writes
// their state as seeds, so that the fuzzer starts from files that load).
#include <xgrad/xgrad.hpp>

namespace xgrad::fuzz {

struct Model : nn::Module {
  nn::Holder<nn::LSTM> rnn{this, "rnn", 3, 4, nn::RNNOptions{.num_layers = 2, .bidirectional = true}};
  nn::Holder<nn::Linear> head{this, "head", 8, 2};
};

/// Adam over the model's parameters after one step (so that its state has moments).
inline optim::Adam stepped_adam(Model& model) {
  optim::Adam adam(model.parameters(), {.lr = 0.01});
  for (auto& p : model.parameters()) p.set_grad(ones_like(p));
  adam.step();
  return adam;
}

}  // namespace xgrad::fuzz
