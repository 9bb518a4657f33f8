#pragma once
// Optimizers with PyTorch's update rules and defaults, so runs can be compared step by step.
// Updates run in place on the parameters' data and record nothing. Parameters without a
// gradient are skipped, as in PyTorch. Every hyper-parameter is checked when the optimizer is
// made (NaN, infinities and out-of-range values are errors naming the optimizer and the field),
// and so is every learning rate set later and every field of a loaded state.
#include <map>
#include <string>
#include <vector>

#include "xgrad/core/safetensors.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::optim {

/// The base of every optimizer: the parameters, the learning rate and per-parameter buffers,
/// saved and loaded with state_dict() so a resumed run continues bit-identically.
class Optimizer {
 public:
  /// `name` appears in errors ("SGD", "Adam", ...). A tensor listed more than once (lists built
  /// by concatenating the parameters of modules that share a tensor, such as tied embeddings)
  /// is kept once, at its first position, as PyTorch's parameters() does: otherwise it would be
  /// stepped twice per step. parameters() and the state's indices refer to the list without
  /// the repeats.
  Optimizer(std::vector<Tensor> params, double lr, const char* name = "optimizer");
  virtual ~Optimizer() = default;

  /// One update of every parameter from its .grad.
  virtual void step() = 0;
  /// Drops every parameter's gradient.
  void zero_grad();

  double lr() const { return lr_; }
  /// Sets the learning rate; NaN, an infinity or a negative value is an error (nothing changes).
  void set_lr(double lr);
  const char* name() const { return name_; }
  const std::vector<Tensor>& parameters() const { return params_; }

  /// Everything a resumed run needs: the learning rate, the parameter count ("num_parameters"),
  /// step counts and per-parameter buffers ("state.<index>.<buffer>"). Loading it continues
  /// bit-identically. Loading checks every field: lr finite and >= 0, the parameter count (when
  /// the state has one), buffer names this optimizer uses with its parameters' shapes, step
  /// counts whole and >= 0, second moments (square_avg, exp_avg_sq, sum, ...) >= 0.
  NamedTensors state_dict() const;
  void load_state_dict(const NamedTensors& state);
  void save(const std::string& path) const { save_safetensors(path, state_dict()); }
  void load(const std::string& path) { load_state_dict(load_safetensors(path)); }

 protected:
  /// The buffer `name` of parameter i, created full of `initial` like the parameter on first use.
  Tensor& buffer(std::size_t i, const std::string& name, double initial = 0);
  bool has_buffer(std::size_t i, const std::string& name) const;
  /// Counts one more step of parameter i and returns the count (PyTorch's per-parameter "step").
  double count_step(std::size_t i);
  /// Before a step changes anything: every buffer of a parameter with a gradient must still have
  /// that parameter's dtype and shape (a module converted with to() after its optimizer stepped
  /// has not), or an error names the optimizer, the buffer and both.
  void check_buffers() const;
  /// The buffer names the optimizer keeps (besides "step"); a loaded state with another name is
  /// an error. Empty (a user's optimizer that did not set it): any name is accepted.
  std::vector<std::string> buffer_names_;
  /// Of those, the running sums of squares, which a loaded state must hold >= 0 (sqrt of them).
  std::vector<std::string> square_buffers_;
  double lr_;

 private:
  const char* name_;
  std::vector<Tensor> params_;
  std::vector<std::map<std::string, Tensor>> buffers_;  // per parameter, by name (stable references)
};

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
};

/// Stochastic gradient descent: g += wd p; b = momentum b + (1 - dampening) g (b = g at first);
/// g = nesterov ? g + momentum b : b; p -= lr g.
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SGDOptions options = {});
  void step() override;

 private:
  SGDOptions options_;
};

struct RMSpropOptions {
  double lr = 0.01;
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
};

/// RMSprop: s = alpha s + (1 - alpha) g^2; avg = sqrt(s - centered mean^2) + eps;
/// p -= lr g / avg (through a momentum buffer when momentum > 0).
class RMSprop : public Optimizer {
 public:
  RMSprop(std::vector<Tensor> params, RMSpropOptions options = {});
  void step() override;

 private:
  RMSpropOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  ///< Adam: added to the gradient (L2); AdamW: decoupled, default 1e-2
  bool amsgrad = false;
};

/// Adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
/// p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  void step() override;

 protected:
  Adam(std::vector<Tensor> params, AdamOptions options, bool decoupled);

 private:
  AdamOptions options_;
  bool decoupled_;  ///< AdamW: p *= 1 - lr wd before the Adam step, instead of g += wd p
};

/// AdamW (Loshchilov & Hutter): Adam with decoupled weight decay (default 1e-2).
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamOptions options = {.weight_decay = 1e-2});
};

struct AdagradOptions {
  double lr = 0.01;
  double lr_decay = 0;
  double weight_decay = 0;
  double initial_accumulator_value = 0;
  double eps = 1e-10;
};

/// Adagrad: s += g^2; p -= lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps).
class Adagrad : public Optimizer {
 public:
  Adagrad(std::vector<Tensor> params, AdagradOptions options = {});
  void step() override;

 private:
  AdagradOptions options_;
};

}  // namespace xgrad::optim
