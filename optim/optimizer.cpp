#include "xgrad/optim/optimizer.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <type_traits>
#include <unordered_set>

#include "xgrad/autograd/node.hpp"
#include "xgrad/core/kernel.hpp"
#include "xgrad/core/parallel.hpp"

namespace xgrad::optim {

// --- the base: parameters, buffers, state_dict -----------------------------------------------------

namespace {

/// A learning rate must be finite and >= 0; `where` says whose and from where ("SGD, set_lr").
void check_lr(double lr, const std::string& where) {
  if (!(lr >= 0)) fail("optimizer: the learning rate must be non-negative, got {} ({})", lr, where);
  if (!std::isfinite(lr)) fail("optimizer: the learning rate must be finite, got {} ({})", lr, where);
}

}  // namespace

Optimizer::Optimizer(std::vector<Tensor> params, double lr, const char* name) : lr_(lr), name_(name) {
  check_lr(lr, fmt::format("{}, lr", name));
  if (params.empty()) fail("optimizer: got an empty parameter list");  // as PyTorch: surely a mistake
  std::unordered_set<const TensorImpl*> seen;
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i].defined() || !is_floating(params[i].dtype()) || !params[i].is_leaf())
      fail("optimizer: parameter {} must be a floating leaf tensor", i);
    if (seen.insert(&params[i].impl()).second) params_.push_back(params[i]);  // a repeat is kept once
  }
  buffers_.resize(params_.size());
}

void Optimizer::set_lr(double lr) {
  check_lr(lr, fmt::format("{}, set_lr", name_));
  lr_ = lr;
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

Tensor& Optimizer::buffer(std::size_t i, const std::string& name, double initial) {
  auto it = buffers_[i].find(name);
  if (it == buffers_[i].end()) it = buffers_[i].emplace(name, full(params_[i].shape(), initial, params_[i].dtype())).first;
  return it->second;
}

bool Optimizer::has_buffer(std::size_t i, const std::string& name) const { return buffers_[i].count(name) > 0; }

double Optimizer::count_step(std::size_t i) {
  auto it = buffers_[i].find("step");
  if (it == buffers_[i].end()) it = buffers_[i].emplace("step", scalar(0, f64)).first;
  return *it->second.data<double>() += 1;
}

void Optimizer::check_buffers() const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i].grad().defined()) continue;
    for (const auto& [name, t] : buffers_[i])
      if (name != "step" && (t.dtype() != params_[i].dtype() || t.shape() != params_[i].shape()))
        fail("{}: the buffer '{}' of parameter {} is {} {}, but the parameter is now {} {} (convert a model before "
             "making its optimizer)",
             name_, name, i, dtype_name(t.dtype()), t.shape(), dtype_name(params_[i].dtype()), params_[i].shape());
  }
}

NamedTensors Optimizer::state_dict() const {
  NamedTensors out{{"lr", scalar(lr_, f64)},
                   {"num_parameters", scalar(static_cast<double>(params_.size()), i64)}};
  for (std::size_t i = 0; i < buffers_.size(); ++i)
    for (const auto& [name, t] : buffers_[i]) out.emplace_back(fmt::format("state.{}.{}", i, name), t.clone());
  return out;
}

void Optimizer::load_state_dict(const NamedTensors& state) {
  // Validate everything first; a failed load leaves the optimizer as it was.
  double lr = lr_;
  std::vector<std::map<std::string, Tensor>> buffers(params_.size());
  for (const auto& [key, t] : state) {
    if (!t.defined()) fail("optimizer load_state_dict: '{}' is an undefined tensor ({})", key, name_);
    if (key == "lr") {
      if (t.numel() != 1) fail("optimizer load_state_dict: 'lr' must hold one value, got shape {}", t.shape());
      lr = t.item();
      check_lr(lr, fmt::format("{}, load_state_dict 'lr'", name_));
      continue;
    }
    if (key == "num_parameters") {  // absent from states saved before it was written: not required
      const double n = t.numel() == 1 ? t.item() : -1;
      if (n != static_cast<double>(params_.size()))
        fail("optimizer load_state_dict: the state is for {} parameters, but this {} has {}",
             t.numel() == 1 ? fmt::format("{}", n) : fmt::format("shape {} of", t.shape()), name_, params_.size());
      continue;
    }
    std::size_t index = 0;
    char name[64] = {0};
    // the key must be exactly as state_dict() writes it (sscanf also takes "state.+0.x", "state.00.x", "state.0.x y")
    if (std::sscanf(key.c_str(), "state.%zu.%63s", &index, name) != 2 || index >= params_.size() ||
        key != fmt::format("state.{}.{}", index, name))
      fail("optimizer load_state_dict: unexpected entry '{}' for {} parameters", key, params_.size());
    const std::string buffer_name = name;
    const bool is_step = buffer_name == "step";
    if (!is_step && !buffer_names_.empty() &&
        std::find(buffer_names_.begin(), buffer_names_.end(), buffer_name) == buffer_names_.end())
      fail("optimizer load_state_dict: unexpected entry '{}': {} keeps no buffer '{}'", key, name_, buffer_name);
    const Shape want = is_step ? Shape{} : params_[index].shape();
    if (t.shape() != want) fail("optimizer load_state_dict: '{}' has shape {}, expected {}", key, t.shape(), want);
    Tensor value = t.clone().to(is_step ? f64 : params_[index].dtype());
    if (is_step) {
      const double step = value.item();
      if (!(step >= 0 && std::isfinite(step) && step == std::floor(step)))
        fail("optimizer load_state_dict: '{}' is {}; a step count must be a whole number >= 0 ({})", key, step, name_);
    } else if (std::find(square_buffers_.begin(), square_buffers_.end(), buffer_name) != square_buffers_.end()) {
      // running sums of squares: a negative (or NaN) one makes sqrt NaN
      for (const double v : value.to(f64).to_vector<double>())
        if (!(v >= 0)) fail("optimizer load_state_dict: '{}' holds {}; it must be >= 0 ({})", key, v, name_);
    }
    buffers[index][buffer_name] = value;
  }
  lr_ = lr;
  buffers_ = std::move(buffers);
}

// --- the update rules ----------------------------------------------------------------------------------

namespace {

// A parameter of at least twice this many elements is updated by the pool's threads, each a range
// (memory-bound: a large embedding's update streams its parameter and gradient once).
constexpr std::int64_t kParallelUpdate = std::int64_t{1} << 15;

/// Calls f(begin, end, p, g), for ranges [begin, end) that cover parameter p (on the pool's threads
/// when p is large), with raw pointers of p and its gradient, in p's type. Each element's update
/// reads nothing but that element: the result does not depend on the split.
template <class F>
void with_data(const Tensor& p, F&& f) {
  detail::dispatch_floating(p.dtype(), "optimizer", [&](auto tag) {
    using T = decltype(tag);
    Tensor g = p.grad();
    if (g.dtype() != p.dtype()) fail("optimizer: a {} gradient for a {} parameter", dtype_name(g.dtype()), dtype_name(p.dtype()));
    if (g.shape() != p.shape())
      fail("optimizer: a gradient of shape {} for a parameter of shape {}", g.shape(), p.shape());
    T* param = p.data<T>();
    const T* grad = g.data<T>();
    parallel_for(p.numel(), detail::parallel_threshold(kParallelUpdate), [&](std::int64_t begin, std::int64_t end) { f(begin, end, param, grad); });
    p.bump_version();  // an in-place write: a graph that saved p now refuses to back-propagate
  });
}

/// The gradient with L2 weight decay, g + decay * p; without decay the term is left out, as
/// PyTorch does (0 * inf would turn an infinite parameter into NaN).
template <class T>
T decayed(T g, T p, T decay) {
  return decay != T(0) ? g + decay * p : g;
}

/// p -= lr g over [begin, end), leaving alone each block whose gradients are all +0: there
/// p - lr * +0 is p, bit for bit, for any p (-0, quiet NaN and infinities included) when lr is finite
/// and >= 0, so the block's parameters are neither read nor written. The rows of an embedding
/// that no token of the batch used are such blocks (bilstm_tagger: 94 % of a 10 MB table).
/// A gradient of -0 is not skipped: -0 - lr * -0 is +0.
template <class T>
void descend_skipping_zeros(T* p, const T* g, T lr, std::int64_t begin, std::int64_t end) {
  using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
  constexpr std::int64_t kBlock = 64;
  for (std::int64_t k = begin; k < end; k += kBlock) {
    const std::int64_t stop = std::min(end, k + kBlock);
    Bits any = 0;
    for (std::int64_t j = k; j < stop; ++j) any |= std::bit_cast<Bits>(g[j]);
    if (any == 0) continue;
    for (std::int64_t j = k; j < stop; ++j) p[j] -= lr * g[j];
  }
}

/// PyTorch's checks of the hyperparameters: each of these must be >= 0 (NaN is not), and,
/// beyond PyTorch, finite.
void check_non_negative(const char* op, std::initializer_list<std::pair<const char*, double>> values) {
  for (const auto& [name, value] : values) {
    if (!(value >= 0)) fail("{}: {} must be non-negative, got {}", op, name, value);
    if (!std::isfinite(value)) fail("{}: {} must be finite, got {}", op, name, value);
  }
}

/// eps divides: it must be > 0 (and finite).
void check_eps(const char* op, double eps) {
  check_non_negative(op, {{"eps", eps}});
  if (!(eps > 0)) fail("{}: eps must be positive, got {}", op, eps);
}

}  // namespace

SGD::SGD(std::vector<Tensor> params, SGDOptions o) : Optimizer(std::move(params), o.lr, "SGD"), options_(o) {
  check_non_negative("SGD", {{"momentum", o.momentum}, {"weight_decay", o.weight_decay}});
  if (!std::isfinite(o.dampening)) fail("SGD: dampening must be finite, got {}", o.dampening);
  buffer_names_ = {"momentum_buffer"};
  if (o.nesterov && (o.momentum <= 0 || o.dampening != 0)) fail("SGD: Nesterov momentum needs momentum > 0 and dampening 0");
}

void SGD::step() {
  check_buffers();
  const auto& o = options_;
  for (std::size_t i = 0; i < parameters().size(); ++i) {
    const Tensor& param = parameters()[i];
    if (!param.grad().defined()) continue;
    const bool first = !has_buffer(i, "momentum_buffer");
    Tensor* buf = o.momentum != 0 ? &buffer(i, "momentum_buffer") : nullptr;
    with_data(param, [&](std::int64_t begin, std::int64_t end, auto* p, const auto* g) {
      using T = std::remove_pointer_t<decltype(p)>;
      if (!buf && o.weight_decay == 0 && std::isfinite(T(lr_))) return descend_skipping_zeros(p, g, T(lr_), begin, end);
      T* b = buf ? buf->data<T>() : nullptr;
      for (std::int64_t k = begin; k < end; ++k) {
        T d = decayed(g[k], p[k], T(o.weight_decay));
        if (b) {
          b[k] = first ? d : T(o.momentum) * b[k] + T(1 - o.dampening) * d;
          d = o.nesterov ? d + T(o.momentum) * b[k] : b[k];
        }
        p[k] -= T(lr_) * d;
      }
    });
  }
}

RMSprop::RMSprop(std::vector<Tensor> params, RMSpropOptions o)
    : Optimizer(std::move(params), o.lr, "RMSprop"), options_(o) {
  check_non_negative("RMSprop", {{"alpha", o.alpha}, {"weight_decay", o.weight_decay}, {"momentum", o.momentum}});
  if (o.alpha > 1) fail("RMSprop: alpha must be at most 1, got {}", o.alpha);  // else square_avg turns negative
  check_eps("RMSprop", o.eps);
  buffer_names_ = {"square_avg", "grad_avg", "momentum_buffer"};
  square_buffers_ = {"square_avg"};
}

void RMSprop::step() {
  check_buffers();
  const auto& o = options_;
  for (std::size_t i = 0; i < parameters().size(); ++i) {
    const Tensor& param = parameters()[i];
    if (!param.grad().defined()) continue;
    count_step(i);
    Tensor& square_avg = buffer(i, "square_avg");
    Tensor* grad_avg = o.centered ? &buffer(i, "grad_avg") : nullptr;
    Tensor* momentum = o.momentum > 0 ? &buffer(i, "momentum_buffer") : nullptr;
    with_data(param, [&](std::int64_t begin, std::int64_t end, auto* p, const auto* g) {
      using T = std::remove_pointer_t<decltype(p)>;
      T *s = square_avg.data<T>(), *ga = grad_avg ? grad_avg->data<T>() : nullptr, *b = momentum ? momentum->data<T>() : nullptr;
      const T alpha(o.alpha);
      for (std::int64_t k = begin; k < end; ++k) {
        const T d = decayed(g[k], p[k], T(o.weight_decay));
        s[k] = alpha * s[k] + (1 - alpha) * d * d;
        T avg;
        if (ga) {
          ga[k] = alpha * ga[k] + (1 - alpha) * d;
          // s - ga^2 in one rounding, as PyTorch's addcmul (and what an optimised build
          // contracts it to): where s overflowed to inf it stays inf, not inf - inf = NaN
          avg = std::sqrt(std::fma(-ga[k], ga[k], s[k])) + T(o.eps);
        } else {
          avg = std::sqrt(s[k]) + T(o.eps);
        }
        if (b) {
          b[k] = T(o.momentum) * b[k] + d / avg;
          p[k] -= T(lr_) * b[k];
        } else {
          p[k] -= T(lr_) * d / avg;
        }
      }
    });
  }
}

Adam::Adam(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, false) {}

Adam::Adam(std::vector<Tensor> params, AdamOptions o, bool decoupled)
    : Optimizer(std::move(params), o.lr, decoupled ? "AdamW" : "Adam"), options_(o), decoupled_(decoupled) {
  if (!(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1))
    fail("Adam: betas must be in [0, 1), got ({}, {})", o.beta1, o.beta2);
  check_non_negative("Adam", {{"weight_decay", o.weight_decay}});
  check_eps("Adam", o.eps);
  buffer_names_ = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  square_buffers_ = {"exp_avg_sq", "max_exp_avg_sq"};
}

void Adam::step() {
  check_buffers();
  const auto& o = options_;
  for (std::size_t i = 0; i < parameters().size(); ++i) {
    const Tensor& param = parameters()[i];
    if (!param.grad().defined()) continue;
    const double t = count_step(i);
    Tensor& exp_avg = buffer(i, "exp_avg");
    Tensor& exp_avg_sq = buffer(i, "exp_avg_sq");
    Tensor* max_sq = o.amsgrad ? &buffer(i, "max_exp_avg_sq") : nullptr;
    const double bias1 = 1 - std::pow(o.beta1, t), bias2_sqrt = std::sqrt(1 - std::pow(o.beta2, t));
    with_data(param, [&](std::int64_t begin, std::int64_t end, auto* p, const auto* g) {
      using T = std::remove_pointer_t<decltype(p)>;
      T *m = exp_avg.data<T>(), *v = exp_avg_sq.data<T>(), *vmax = max_sq ? max_sq->data<T>() : nullptr;
      const T b1(o.beta1), b2(o.beta2), step_size(lr_ / bias1);
      for (std::int64_t k = begin; k < end; ++k) {
        T d = g[k];
        if (decoupled_) p[k] *= T(1 - lr_ * o.weight_decay);
        else d = decayed(d, p[k], T(o.weight_decay));
        m[k] = b1 * m[k] + (1 - b1) * d;
        v[k] = b2 * v[k] + (1 - b2) * d * d;
        T second = v[k];
        if (vmax) second = vmax[k] = std::max(vmax[k], v[k]);
        p[k] -= step_size * m[k] / (std::sqrt(second) / T(bias2_sqrt) + T(o.eps));
      }
    });
  }
}

AdamW::AdamW(std::vector<Tensor> params, AdamOptions options) : Adam(std::move(params), options, true) {}

Adagrad::Adagrad(std::vector<Tensor> params, AdagradOptions o)
    : Optimizer(std::move(params), o.lr, "Adagrad"), options_(o) {
  check_non_negative("Adagrad", {{"lr_decay", o.lr_decay},
                                 {"weight_decay", o.weight_decay},
                                 {"initial_accumulator_value", o.initial_accumulator_value}});
  check_eps("Adagrad", o.eps);
  buffer_names_ = {"sum"};
  square_buffers_ = {"sum"};
}

void Adagrad::step() {
  check_buffers();
  const auto& o = options_;
  for (std::size_t i = 0; i < parameters().size(); ++i) {
    const Tensor& param = parameters()[i];
    if (!param.grad().defined()) continue;
    const double t = count_step(i);
    Tensor& sum = buffer(i, "sum", o.initial_accumulator_value);
    const double clr = lr_ / (1 + (t - 1) * o.lr_decay);
    with_data(param, [&](std::int64_t begin, std::int64_t end, auto* p, const auto* g) {
      using T = std::remove_pointer_t<decltype(p)>;
      T* s = sum.data<T>();
      for (std::int64_t k = begin; k < end; ++k) {
        const T d = decayed(g[k], p[k], T(o.weight_decay));
        s[k] += d * d;
        p[k] -= T(clr) * d / (std::sqrt(s[k]) + T(o.eps));
      }
    });
  }
}

}  // namespace xgrad::optim
