#pragma once
// Module: the base of every layer. A module registers its parameters, buffers and submodules by
// name in its constructor; the base walks the tree with dotted names that match PyTorch's
// state_dict, switches train/eval, converts dtypes and saves and loads weights.
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "xgrad/core/safetensors.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::nn {

using StateDict = NamedTensors;

/// The base of every layer. A module registers its parameters, buffers and submodules by name
/// in its constructor; the base walks the tree with dotted names that match PyTorch's
/// state_dict, switches train/eval, converts dtypes and saves and loads weights.
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  /// The layer's kind, for summaries ("Linear", "LSTM").
  virtual std::string type_name() const { return "Module"; }

  /// Parameters of this module and all submodules, in registration order.
  std::vector<Tensor> parameters() const;
  /// The same with dotted names ("encoder.weight_ih_l0").
  NamedTensors named_parameters() const;
  /// Buffers: state that is saved but not trained.
  NamedTensors named_buffers() const;
  /// Direct submodules with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
  /// This module and every submodule with dotted names ("" for this one), depth first.
  std::vector<std::pair<std::string, const Module*>> named_modules() const;

  /// Training mode (dropout active) for this module and all submodules.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Converts every parameter and floating buffer to `dtype` in place.
  void to(Dtype dtype);
  /// Drops the gradients of all parameters.
  void zero_grad();
  /// Number of parameter elements.
  std::int64_t parameter_count() const;

  /// Parameters and buffers by dotted name; the tensors share the module's data.
  StateDict state_dict() const;
  /// Copies values into the module. Strict: a missing, unexpected or wrongly shaped entry throws
  /// an error naming it, and then the module is left exactly as it was.
  void load_state_dict(const StateDict& state);

  /// safetensors I/O of the state_dict (the saved file loads in PyTorch with the same names).
  void save(const std::string& path) const;
  void load(const std::string& path);

 protected:
  /// Registers a trainable tensor (it is made to require grad) and returns the same handle.
  Tensor register_parameter(const std::string& name, Tensor value, bool trainable = true);
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  /// The name under which this module shows the tensor `path` of its child `child`: "child.path"
  /// (PyTorch's dotted names). A layer that presents its children's tensors under other names
  /// (the recurrent layers' flat "weight_ih_l0") overrides it; every walk (parameters, buffers,
  /// state_dict, load, to) goes through it.
  virtual std::string tensor_name(const std::string& child, const std::string& path) const;

  /// Records y as this module's output when a summary is being taken; returns y.
  Tensor traced(const Tensor& y) const;
  /// Whether a summary is being taken on this thread (it records the modules run on it alone).
  static bool tracing();

 private:
  template <class M> friend class Holder;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_name(const std::string& name) const;
  /// Visits every tensor of this module and its submodules with its name: each module's
  /// parameters, then its buffers, then its children in registration order (PyTorch's order).
  void walk_tensors(const std::function<void(const std::string&, const Tensor&, bool parameter)>& visit) const;

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// A submodule held by its parent, which reads like the module itself: `conv(x)`, `gru->run(h)`.
/// Declared as a member, it builds the module and registers it in one line, the type written once:
///
/// ```
///   nn::Holder<nn::Conv1D> conv{this, "conv", 14, 32, 5};
/// ```
///
/// It also wraps an existing module (`Holder<M>(std::make_shared<M>(...))`) and converts to a
/// std::shared_ptr of M or of any base (for Sequential, optimizers, factories).
template <class M>
class Holder {
 public:
  Holder() = default;
  Holder(std::shared_ptr<M> module) : module_(std::move(module)) {}  // NOLINT: implicit by design
  /// Builds M(args...) and registers it in `parent` under `name`.
  template <class... Args>
  Holder(Module* parent, const std::string& name, Args&&... args)
      : module_(std::make_shared<M>(std::forward<Args>(args)...)) {
    parent->add_child(name, module_);
  }

  M* operator->() const { return module_.get(); }
  M& operator*() const { return *module_; }
  /// Calls the module: `linear(x)`, `cell(x, state)`.
  template <class... Args>
  decltype(auto) operator()(Args&&... args) const {
    return (*module_)(std::forward<Args>(args)...);
  }
  /// A cell's step from a raw input with a braced state: `cell(x, {h, c})`.
  decltype(auto) operator()(const Tensor& x, const std::vector<Tensor>& state) const
    requires std::is_invocable_v<M&, const Tensor&, const std::vector<Tensor>&>
  {
    return (*module_)(x, state);
  }
  const std::shared_ptr<M>& ptr() const { return module_; }
  template <class Base>
    requires std::is_convertible_v<M*, Base*>
  operator std::shared_ptr<Base>() const {  // NOLINT: implicit by design
    return module_;
  }
  explicit operator bool() const { return module_ != nullptr; }

 private:
  std::shared_ptr<M> module_;
};

/// A module with one input and one output, the kind Sequential chains.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return traced(forward(x)); }
};

/// Runs its modules one after another.
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules);
  std::string type_name() const override { return "Sequential"; }
  /// Appends a module, named by its position ("0", "1", ...) as in PyTorch.
  Sequential& add(std::shared_ptr<UnaryModule> module);
  Tensor forward(const Tensor& x) override;
  std::size_t size() const { return modules_.size(); }

 private:
  std::vector<std::shared_ptr<UnaryModule>> modules_;
};

/// A Keras-style table of the layers `run` calls: name, kind, output shape, parameters, and
/// totals. `run` performs one forward pass (e.g. on zeros of the input shape).
std::string summary(const Module& model, const std::function<void()>& run);
/// The same for a module with one input: runs it on zeros of `input_shape`.
std::string summary(UnaryModule& model, const Shape& input_shape, Dtype dtype = f32);

}  // namespace xgrad::nn
