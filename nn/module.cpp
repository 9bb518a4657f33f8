#include "xgrad/nn/module.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <fmt/format.h>

#include "xgrad/autograd/node.hpp"
#include "xgrad/core/random.hpp"

namespace xgrad::nn {

namespace {

/// The modules whose forward ran during summary(), with their output shapes, in call order.
struct Trace {
  std::vector<std::pair<const Module*, Shape>> calls;
};
thread_local Trace* t_trace = nullptr;

std::string join(const std::string& prefix, const std::string& name) {
  if (prefix.empty()) return name;
  return name.empty() ? prefix : prefix + "." + name;
}

}  // namespace

// --- registration ----------------------------------------------------------------------------

void Module::check_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos)
    fail("{}: '{}' is not a valid name (non-empty, without dots)", type_name(), name);
  auto taken = [&](const auto& list) {
    return std::any_of(list.begin(), list.end(), [&](const auto& entry) { return entry.first == name; });
  };
  if (taken(parameters_) || taken(buffers_) || taken(children_)) fail("{}: the name '{}' is registered twice", type_name(), name);
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool trainable) {
  check_name(name);
  if (trainable) value.requires_grad_();
  parameters_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_name(name);
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_name(name);
  if (!module) fail("{}: register_module('{}') of a null module", type_name(), name);
  // a module inside its own subtree would make every walk (parameters, train, summary) recurse forever
  for (const auto& [path, m] : module->named_modules())
    if (m == this)
      fail("{}: registering '{}' ({}) would make a cycle: this module is {}", type_name(), name, module->type_name(),
           path.empty() ? "that module itself" : fmt::format("its submodule '{}'", path));
  children_.emplace_back(name, std::move(module));
}

// --- walking the tree ---------------------------------------------------------------------------

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out{{"", this}};
  for (const auto& [name, child] : children_)
    for (const auto& [sub, m] : child->named_modules()) out.emplace_back(join(name, sub), m);
  return out;
}

std::string Module::tensor_name(const std::string& child, const std::string& path) const { return join(child, path); }

void Module::walk_tensors(const std::function<void(const std::string&, const Tensor&, bool)>& visit) const {
  for (const auto& [name, p] : parameters_) visit(name, p, true);
  for (const auto& [name, b] : buffers_) visit(name, b, false);
  for (const auto& entry : children_)  // (clang 14 cannot capture a structured binding)
    entry.second->walk_tensors([&](const std::string& path, const Tensor& t, bool parameter) {
      visit(tensor_name(entry.first, path), t, parameter);
    });
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  walk_tensors([&](const std::string& name, const Tensor& t, bool parameter) {
    if (parameter) out.emplace_back(name, t);
  });
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  walk_tensors([&](const std::string& name, const Tensor& t, bool parameter) {
    if (!parameter) out.emplace_back(name, t);
  });
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (const auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::int64_t Module::parameter_count() const {
  std::int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& p : parameters()) p.zero_grad();
}

void Module::to(Dtype dtype) {
  if (!is_floating(dtype))  // as PyTorch: parameters require grad, which needs floating data
    fail("{}: to({}): a module converts only to a floating dtype (f32 or f64)", type_name(), dtype_name(dtype));
  autograd::NoGradGuard no_grad;
  for (auto& [name, p] : named_parameters())
    if (p.dtype() != dtype) p.set_data(p.detach().to(dtype));
  for (auto& [name, b] : named_buffers())
    if (is_floating(b.dtype()) && b.dtype() != dtype) b.set_data(b.detach().to(dtype));
}

// --- state_dict ----------------------------------------------------------------------------------

StateDict Module::state_dict() const {
  StateDict out;  // each module's parameters, then its buffers: PyTorch's order
  walk_tensors([&](const std::string& name, const Tensor& t, bool) { out.emplace_back(name, t.detach()); });
  return out;
}

void Module::load_state_dict(const StateDict& state) {
  // Validate everything first, then copy: a failed load leaves the module unchanged.
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state)
    if (!given.emplace(name, &t).second) fail("load_state_dict: '{}' appears twice", name);
  std::vector<std::string> problems;
  StateDict own = state_dict();
  std::set<std::string> expected;
  for (const auto& [name, t] : own) {
    expected.insert(name);
    auto it = given.find(name);
    if (it == given.end()) {
      problems.push_back(fmt::format("missing '{}' {}", name, t.shape()));
    } else if (!it->second->defined()) {
      problems.push_back(fmt::format("'{}' is an undefined tensor, the module expects {}", name, t.shape()));
    } else if (it->second->shape() != t.shape()) {
      problems.push_back(fmt::format("'{}' has shape {}, the module expects {}", name, it->second->shape(), t.shape()));
    } else if (is_floating(it->second->dtype()) != is_floating(t.dtype())) {
      problems.push_back(fmt::format("'{}' is {}, the module expects {}", name, dtype_name(it->second->dtype()),
                                     dtype_name(t.dtype())));
    }
  }
  for (const auto& [name, t] : state)
    if (!expected.count(name))
      problems.push_back(t.defined() ? fmt::format("unexpected '{}' {}", name, t.shape())
                                     : fmt::format("unexpected '{}' (an undefined tensor)", name));
  if (!problems.empty())
    fail("load_state_dict into {}: {}", type_name(), fmt::join(problems, "; "));
  for (auto& [name, t] : own) t.copy_(*given.at(name));
}

void Module::save(const std::string& path) const { save_safetensors(path, state_dict()); }

void Module::load(const std::string& path) {
  StateDict state = load_safetensors(path);
  try {
    load_state_dict(state);
  } catch (const Error& e) {
    fail("{} (from {})", e.what(), path);
  }
}

// --- summary --------------------------------------------------------------------------------------

Tensor Module::traced(const Tensor& y) const {
  if (t_trace && y.defined()) {
    auto& calls = t_trace->calls;
    if (std::none_of(calls.begin(), calls.end(), [this](const auto& c) { return c.first == this; }))
      calls.emplace_back(this, y.shape());
  }
  return y;
}

bool Module::tracing() { return t_trace != nullptr; }

std::string summary(const Module& model, const std::function<void()>& run) {
  Trace trace;
  {
    autograd::NoGradGuard no_grad;
    const Generator rng = default_generator();  // the pass may draw dropout masks: leave no trace
    t_trace = &trace;
    try {
      run();
    } catch (...) {
      t_trace = nullptr;
      default_generator() = rng;
      throw;
    }
    t_trace = nullptr;
    default_generator() = rng;
  }
  std::map<const Module*, Shape> shapes(trace.calls.begin(), trace.calls.end());
  auto with_commas = [](std::int64_t n) {
    std::string digits = std::to_string(n), out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return out;
  };
  const std::string rule(72, '='), thin(72, '-');
  std::string out = fmt::format("{:<36}{:<22}{:>14}\n{}\n", "Layer (type)", "Output Shape", "Param #", rule);
  bool first = true;
  for (const auto& [name, m] : model.named_modules()) {
    auto it = shapes.find(m);
    if (name.empty() || it == shapes.end()) continue;  // the model itself, or a module that was not called
    if (!first) out += thin + "\n";
    first = false;
    out += fmt::format("{:<36}{:<22}{:>14}\n", fmt::format("{} ({})", name, m->type_name()), to_string(it->second),
                       with_commas(m->parameter_count()));
  }
  std::int64_t trainable = 0, total = 0;
  for (const auto& p : model.parameters()) {
    total += p.numel();
    if (p.requires_grad()) trainable += p.numel();
  }
  out += rule + "\n";
  out += fmt::format("Total params: {}\nTrainable params: {}\nNon-trainable params: {}\n", with_commas(total),
                     with_commas(trainable), with_commas(total - trainable));
  return out;
}

std::string summary(UnaryModule& model, const Shape& input_shape, Dtype dtype) {
  return summary(model, [&] { model(zeros(input_shape, dtype)); });
}

// --- Sequential -------------------------------------------------------------------------------------

Sequential::Sequential(std::initializer_list<std::shared_ptr<UnaryModule>> modules) {
  for (const auto& m : modules) add(m);
}

Sequential& Sequential::add(std::shared_ptr<UnaryModule> module) {
  modules_.push_back(register_module(std::to_string(modules_.size()), std::move(module)));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor y = x;
  for (auto& m : modules_) y = (*m)(y);
  return y;
}

}  // namespace xgrad::nn
