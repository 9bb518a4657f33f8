#include "xgrad/autograd/node.hpp"

#include <pthread.h>

#include <array>
#include <cmath>
#include <cstdint>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/kernel.hpp"

namespace xgrad::autograd {

namespace {
thread_local bool t_grad_enabled = true;
thread_local bool t_anomaly_enabled = false;
std::atomic<std::int64_t> g_live_nodes{0};
std::atomic<std::uint64_t> g_next_sequence_nr{1};
thread_local std::uint64_t t_newest_node = 0;
}  // namespace

std::uint64_t detail::newest_node_on_thread() { return t_newest_node; }
std::uint64_t detail::next_sequence_nr() { return g_next_sequence_nr.load(std::memory_order_relaxed); }

bool grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }
bool anomaly_enabled() { return t_anomaly_enabled; }
void set_anomaly_enabled(bool enabled) { t_anomaly_enabled = enabled; }
std::int64_t live_nodes() { return g_live_nodes.load(std::memory_order_relaxed); }

// --- iterative teardown ---------------------------------------------------------------------
// Destroying the last tensor of a 150 000-op chain would otherwise recurse once per node
// (tensor -> grad_fn -> captured input tensor -> its grad_fn ...). Every owning reference to
// a node is dropped through release_node, which defers the destruction of a node whose last
// owner we are onto a thread-local stack and drains it in a loop.

namespace {
// Set once this thread's teardown stack is destroyed (at thread exit, or at program exit for the
// main thread); a static Tensor destroyed after that releases its graph recursively.
thread_local bool t_stack_destroyed = false;
struct TeardownStack {
  std::vector<std::shared_ptr<Node>> nodes;
  ~TeardownStack() { t_stack_destroyed = true; }
};
}  // namespace

void detail::release_node(std::shared_ptr<Node>& node) {
  if (!node) return;
  if (node.use_count() > 1 || t_stack_destroyed) {
    node.reset();
    return;
  }
  thread_local TeardownStack teardown;
  auto& stack = teardown.nodes;
  thread_local bool draining = false;
  stack.push_back(std::move(node));
  if (draining) return;
  draining = true;
  while (!stack.empty()) {
    std::shared_ptr<Node> last = std::move(stack.back());
    stack.pop_back();
    last.reset();  // may push this node's inputs onto the stack
  }
  draining = false;
}

}  // namespace xgrad::autograd

xgrad::TensorImpl::~TensorImpl() { autograd::detail::release_node(grad_fn); }

namespace xgrad::autograd {

// --- nodes ---------------------------------------------------------------------------------

Node::Node(const char* name, std::size_t num_inputs, std::uint32_t num_outputs)
    : name_(name),
      sequence_nr_(g_next_sequence_nr.fetch_add(1, std::memory_order_relaxed)),
      next_(num_inputs),
      num_outputs_(num_outputs) {
  t_newest_node = sequence_nr_;
  g_live_nodes.fetch_add(1, std::memory_order_relaxed);
}

// Created lazily, after the first node that uses its leaf, yet it must run after all of them.
Node::Node(const char* name, Last) : name_(name), sequence_nr_(0), num_outputs_(1) {
  g_live_nodes.fetch_add(1, std::memory_order_relaxed);
}

Node::~Node() {
  for (auto& edge : next_) detail::release_node(edge.node);
  g_live_nodes.fetch_sub(1, std::memory_order_relaxed);
}

void Node::release() {
  released_ = true;
  saved_inputs_.clear();  // the closure that kept them alive is gone
  for (auto& edge : next_) detail::release_node(edge.node);
  out_storage_.reset();
}

const Shape& Node::output_shape(std::uint32_t k) const { return k == 0 ? out_shape_ : more_outputs_.at(k - 1).first; }
Dtype Node::output_dtype(std::uint32_t k) const { return k == 0 ? out_dtype_ : more_outputs_.at(k - 1).second; }

Tensor Node::output_gradient(const std::vector<Tensor>& output_grads, std::uint32_t k) { return output_grads[k]; }

void Node::fail_modified(const char* what, const Shape& shape, Dtype dtype, std::uint32_t saved,
                         std::uint32_t now, const char* saved_by) const {
  fail("backward: one of the variables needed for gradient computation has been modified by an inplace "
       "operation: the {} {} {} that '{}' saved is at version {}; expected version {} instead",
       what, dtype_name(dtype), shape, saved_by ? saved_by : name_, now, saved);
}

void Node::check_saved_versions() const {
  if (out_storage_ && out_storage_->version() != out_version_)
    fail_modified("output", out_shape_, out_dtype_, out_version_, out_storage_->version());
  for (const auto& s : saved_inputs_)
    if (const auto impl = s.impl.lock()) check_saved_input(*impl, s.storage, s.version);  // else: not held after all
}

void Node::check_saved_input(const TensorImpl& impl, const Storage* storage, std::uint32_t version,
                             const char* saved_by) const {
  if (impl.storage.get() != storage)
    fail("backward: one of the variables needed for gradient computation was given other data by set_data "
         "after '{}' saved it (now {} {})",
         saved_by ? saved_by : name_, dtype_name(impl.dtype), impl.shape);
  if (impl.storage->version() != version)
    fail_modified("input", impl.shape, impl.dtype, version, impl.storage->version(), saved_by);
}

void Node::fail_released() const {
  fail("backward: trying to backward through the graph a second time (the saved values of '{}' were freed by the "
       "first backward); pass retain_graph=true to the first backward if you need to",
       name_);
}

Tensor Node::saved_output() {
  if (!out_storage_) fail("{}: its saved output was freed by an earlier backward", name_);
  auto impl = std::allocate_shared<TensorImpl>(xgrad::detail::SmallAllocator<TensorImpl>(), out_storage_, out_offset_, out_shape_, out_dtype_);
  if (grad_enabled()) {  // create_graph: the output stays connected, so its use is differentiated
    impl->grad_fn = shared_from_this();
    impl->requires_grad = true;
  }
  return Tensor(std::move(impl));
}

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf) : Node("AccumulateGrad", Last{}), leaf_(leaf) {
  follow_leaf(*leaf);
}

void AccumulateGrad::follow_leaf(const TensorImpl& leaf) {
  shape_ = leaf.shape;
  dtype_ = leaf.dtype;
}

Grads AccumulateGrad::apply(const std::vector<Tensor>& output_grads) {
  const std::shared_ptr<TensorImpl> leaf = leaf_.lock();
  if (!leaf) return {};  // the leaf is gone: nobody can read its gradient
  decltype(hooks_) hooks;
  {
    std::lock_guard lock(mutex_);
    accumulate(*leaf, output_grads[0]);
    if (!hooks_.empty()) hooks = hooks_;  // run unlocked: a hook may take long (an allreduce) or touch the leaf
  }
  if (!hooks.empty()) {
    const Tensor leaf_tensor(leaf);
    for (const auto& [id, hook] : hooks) hook(leaf_tensor);
  }
  return {};
}

std::uint64_t AccumulateGrad::add_hook(std::function<void(const Tensor&)> hook) {
  std::lock_guard lock(mutex_);
  hooks_.emplace_back(next_hook_id_, std::move(hook));
  hook_count_.store(hooks_.size(), std::memory_order_relaxed);
  return next_hook_id_++;
}

void AccumulateGrad::remove_hook(std::uint64_t id) {
  std::lock_guard lock(mutex_);
  std::erase_if(hooks_, [id](const auto& entry) { return entry.first == id; });
  hook_count_.store(hooks_.size(), std::memory_order_relaxed);
}

void AccumulateGrad::accumulate(TensorImpl& leaf, const Tensor& grad) {
  if (grad.shape() != leaf.shape || grad.dtype() != leaf.dtype)
    fail("backward: a gradient {} {} reached a leaf of shape {} {} (AccumulateGrad); was the leaf's data "
         "replaced by set_data after the graph was recorded?",
         grad.shape(), dtype_name(grad.dtype()), leaf.shape, dtype_name(leaf.dtype));
  Tensor& acc = leaf.grad;
  if (!acc.defined()) {
    // Keep the incoming buffer when nobody else can see it; otherwise copy, so that later
    // in-place accumulation never writes into another tensor.
    acc = grad_enabled() || detail::unshared(grad) ? grad : grad.detach().clone();
  } else if (grad_enabled() || acc.requires_grad()) {
    acc = acc + grad;  // create_graph: the accumulation itself is differentiable
  } else {
    detail::add_in_place(acc, grad);
  }
}

namespace detail {

void add_in_place(Tensor& acc, const Tensor& g) {
  xgrad::detail::dispatch(acc.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* a = acc.data<T>();
    const T* b = g.data<T>();
    for (std::int64_t i = 0, n = acc.numel(); i < n; ++i) a[i] += b[i];
  });
  acc.bump_version();
}

bool unshared(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1 && !t.requires_grad();
}

}  // namespace detail

// --- recording -------------------------------------------------------------------------------

namespace {
/// Guards the leaves' grad_accumulator fields: threads that record ops on a shared leaf must
/// find (or make) the same accumulator. Striped by the leaf's address, so that threads working
/// on different leaves rarely meet.
struct AccumulatorStripes {
  std::array<std::mutex, 64> mutexes;
  AccumulatorStripes() {
    // fork() holds every stripe, so that no stripe is copied locked into the child by a thread
    // the child does not have.
    ::pthread_atfork([] { for (auto& m : instance().mutexes) m.lock(); },
                     [] { for (auto& m : instance().mutexes) m.unlock(); },
                     [] { for (auto& m : instance().mutexes) m.unlock(); });
  }
  static AccumulatorStripes& instance() {
    static AccumulatorStripes stripes;
    return stripes;
  }
};

std::mutex& accumulator_mutex(const TensorImpl* leaf) {
  auto& stripes = AccumulatorStripes::instance().mutexes;
  return stripes[(reinterpret_cast<std::uintptr_t>(leaf) >> 6) % stripes.size()];
}
}  // namespace

Edge gradient_edge(const Tensor& t) {
  auto& impl = t.impl();
  if (impl.grad_fn) return {impl.grad_fn, impl.output_nr};
  if (!impl.requires_grad) return {};
  // Once made, the accumulator is never replaced: read without the lock.
  const auto matches_leaf = [&impl] {
    const auto& acc = static_cast<const AccumulateGrad&>(*impl.grad_accumulator);
    return acc.output_shape(0) == impl.shape && acc.output_dtype(0) == impl.dtype;
  };
  if (!impl.has_accumulator.load(std::memory_order_acquire) || !matches_leaf()) {
    std::lock_guard lock(accumulator_mutex(&impl));
    if (!impl.grad_accumulator) {
      impl.grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
      impl.has_accumulator.store(true, std::memory_order_release);
    } else if (!matches_leaf()) {  // set_data gave the leaf another shape or dtype
      static_cast<AccumulateGrad&>(*impl.grad_accumulator).follow_leaf(impl);
    }
  }
  return {impl.grad_accumulator, 0};
}

namespace {
thread_local detail::InputObserver* t_observer = nullptr;
}

detail::ObserveInputs::ObserveInputs(InputObserver& observer) : previous_(t_observer) { t_observer = &observer; }
detail::ObserveInputs::~ObserveInputs() { t_observer = previous_; }
bool detail::observing_inputs() { return t_observer != nullptr; }

bool needs_grad(std::span<const Tensor> inputs) {
  if (!t_grad_enabled) {
    if (t_observer)
      for (const auto& t : inputs)
        if (t.defined() && t.impl().requires_grad) t_observer->seen(t);
    return false;
  }
  for (const auto& t : inputs)
    if (t.defined() && t.impl().requires_grad) return true;
  return false;
}

void connect(Node& node, std::span<const Tensor> inputs, std::span<Tensor> outputs, bool save_output) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined()) node.next_[i] = gradient_edge(inputs[i]);
  if (outputs.empty()) return;
  node.out_shape_ = outputs[0].impl().shape;
  node.out_dtype_ = outputs[0].impl().dtype;
  if (outputs.size() > 1) node.more_outputs_.reserve(outputs.size() - 1);
  for (std::size_t k = 1; k < outputs.size(); ++k) node.more_outputs_.emplace_back(outputs[k].shape(), outputs[k].dtype());
  if (save_output) {  // single-output ops only
    auto& impl = outputs[0].impl();
    node.out_storage_ = impl.storage;
    node.out_offset_ = impl.offset;
    node.out_version_ = impl.storage->version();
  }
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    auto& impl = outputs[k].impl();
    impl.grad_fn = node.shared_from_this();
    impl.output_nr = static_cast<std::uint32_t>(k);
    impl.requires_grad = true;
  }
}

void check_anomaly(const Tensor& t, const char* op, const char* phase) {
  if (!t_anomaly_enabled || !t.defined() || !is_floating(t.dtype())) return;
  bool finite = xgrad::detail::dispatch_floating(t.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  });
  if (!finite) fail("anomaly: the {} of '{}' produced NaN or Inf (shape {})", phase, op, t.shape());
}

}  // namespace xgrad::autograd
