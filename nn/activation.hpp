#pragma once
// Activations as modules, for Sequential; the functions themselves are the ops (relu, tanh, ...).
#include "xgrad/autograd/ops.hpp"
#include "xgrad/nn/module.hpp"

namespace xgrad::nn {

/// relu(x) as a module.
class ReLU : public UnaryModule {
 public:
  std::string type_name() const override { return "ReLU"; }
  Tensor forward(const Tensor& x) override { return relu(x); }
};

/// tanh(x) as a module.
class Tanh : public UnaryModule {
 public:
  std::string type_name() const override { return "Tanh"; }
  Tensor forward(const Tensor& x) override { return tanh(x); }
};

/// sigmoid(x) as a module.
class Sigmoid : public UnaryModule {
 public:
  std::string type_name() const override { return "Sigmoid"; }
  Tensor forward(const Tensor& x) override { return sigmoid(x); }
};

}  // namespace xgrad::nn
