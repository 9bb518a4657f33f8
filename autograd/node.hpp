#pragma once
// The define-by-run graph. Every op on a tensor that requires grad records a Node: its
// name, edges to the nodes of its inputs, what it saved, and its backward. Nodes are owned
// by the tensors that reference them; backward() frees them unless retain_graph is set.
#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "xgrad/core/small_object.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::autograd {

/// Gradients with respect to each input of a node; an undefined tensor means none.
using Grads = std::vector<Tensor, xgrad::detail::SmallAllocator<Tensor>>;

// --- grad mode, anomaly mode and fusion (thread-local) ---------------------------------------

/// Sets a thread-local mode (read by Get, written by Set) for a scope, restoring the previous
/// value on exit.
template <bool (*Get)(), void (*Set)(bool)>
class ModeGuard {
 public:
  explicit ModeGuard(bool enabled) : previous_(Get()) { Set(enabled); }
  ~ModeGuard() { Set(previous_); }
  ModeGuard(const ModeGuard&) = delete;
  ModeGuard& operator=(const ModeGuard&) = delete;

 private:
  bool previous_;
};

bool grad_enabled();
void set_grad_enabled(bool enabled);

/// Sets grad mode for a scope, restoring the previous mode on exit.
using GradModeGuard = ModeGuard<grad_enabled, set_grad_enabled>;

/// No op records a node while this guard lives (inference, parameter updates).
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

/// When on, the first op whose forward or backward yields NaN/Inf throws an Error naming it.
bool anomaly_enabled();
void set_anomaly_enabled(bool enabled);

/// Sets anomaly mode for a scope (on by default), restoring the previous mode on exit.
class AnomalyModeGuard : public ModeGuard<anomaly_enabled, set_anomaly_enabled> {
 public:
  explicit AnomalyModeGuard(bool enabled = true) : ModeGuard(enabled) {}
};

/// Whether elementwise ops recorded on this thread may share one graph node (docs/fusion.md): a
/// chain such as sigmoid(f) * c + sigmoid(i) * tanh(g) then back-propagates in one pass over its
/// elements instead of one node, and its temporaries, per op, with the same gradients to the
/// bit. On by default; the environment variable XGRAD_FUSION=0 turns it off for the process.
bool fusion_enabled();
void set_fusion_enabled(bool enabled);

/// Sets fusion for a scope, restoring the previous setting on exit.
using FusionGuard = ModeGuard<fusion_enabled, set_fusion_enabled>;

/// Number of graph nodes alive in the process (for tests of graph lifetime).
std::int64_t live_nodes();

// --- nodes --------------------------------------------------------------------------------

class Node;
template <class F>
class Closure;

/// Where a gradient goes: output `output_nr` of `node` (nodes of split have several outputs).
struct Edge {
  std::shared_ptr<Node> node;
  std::uint32_t output_nr = 0;
  explicit operator bool() const { return node != nullptr; }
};

/// A recorded op in the define-by-run graph: its name, edges to the nodes of its inputs, what it
/// saved, and its backward (apply). Owned by the tensors and the later nodes that refer to it.
/// A node's edges, in the small-object pool (one list per recorded op).
using EdgeList = std::vector<Edge, xgrad::detail::SmallAllocator<Edge>>;

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node(const char* name, std::size_t num_inputs, std::uint32_t num_outputs = 1);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// The op that recorded it (a FusedNode: the first of its ops).
  const char* name() const { return name_; }
  /// The op whose result output k is (a FusedNode holds several ops).
  virtual const char* output_name(std::uint32_t) const { return name_; }
  /// Creation order: a backward runs nodes by decreasing number (a topological order).
  std::uint64_t sequence_nr() const { return sequence_nr_; }
  /// Edges to the nodes of the inputs, one per input; empty where no gradient is needed.
  const EdgeList& next() const { return next_; }
  std::uint32_t num_outputs() const { return num_outputs_; }

  /// The gradients of the inputs, given the gradients of this node's outputs (an undefined one
  /// means zero: no gradient reached that output).
  virtual Grads apply(const std::vector<Tensor>& output_grads) = 0;
  /// Frees what backward needed; a later backward through this node throws.
  virtual void release();
  bool released() const { return released_; }
  /// Whether hooks wait for this node to run (a leaf's accumulator with post-accumulate hooks).
  virtual bool has_hooks() const { return false; }

  /// The whole gradient of output k, given those that reached the outputs: output_grads[k],
  /// except for a node that also uses its own outputs (FusedNode). What grad() returns for an
  /// input that is an output of this node.
  virtual Tensor output_gradient(const std::vector<Tensor>& output_grads, std::uint32_t k);
  /// Shape and dtype of output k: what a gradient arriving there must have.
  virtual const Shape& output_shape(std::uint32_t k) const;
  virtual Dtype output_dtype(std::uint32_t k) const;
  /// Throws when a tensor this node's backward reads was modified in place (or given other data
  /// by set_data) after the node was recorded: backward would silently use the new values.
  void check_saved_versions() const;

 protected:
  struct Last {};  ///< tag: sequence number 0, for nodes without inputs (AccumulateGrad)
  Node(const char* name, Last);
  friend struct Engine;
  friend void connect(Node& node, std::span<const Tensor> inputs, std::span<Tensor> outputs, bool save_output);
  template <class F>
  friend void note_saved_inputs(Node& node, const Closure<F>& closure, std::span<const Tensor> inputs);
  /// The output as saved by connect(): tied to this node when grad mode is on (create_graph).
  Tensor saved_output();
  /// For nodes that grow after creation (FusedNode): one more input edge, in front of the
  /// others; one more output.
  void add_edge_front(Edge edge) { next_.insert(next_.begin(), std::move(edge)); }
  void add_output() { ++num_outputs_; }
  /// Throws the error of check_saved_versions for a saved `what` ("input", "output") of the op
  /// `saved_by` (this node's name when null).
  [[noreturn]] void fail_modified(const char* what, const Shape& shape, Dtype dtype, std::uint32_t saved,
                                  std::uint32_t now, const char* saved_by = nullptr) const;
  /// check_saved_versions for one saved input: throws when it got other data (set_data) than
  /// `storage` or moved on from `version`.
  void check_saved_input(const TensorImpl& impl, const Storage* storage, std::uint32_t version,
                         const char* saved_by = nullptr) const;
  /// Throws "trying to backward through the graph a second time": release() freed what it saved.
  [[noreturn]] void fail_released() const;

 private:
  const char* name_;
  std::uint64_t sequence_nr_;
  EdgeList next_;
  std::uint32_t num_outputs_;
  bool released_ = false;
  // Output 0's shape and dtype (the others' in more_outputs_), and its storage when the
  // backward reads the output (e.g. tanh), with the storage's version at recording.
  Shape out_shape_;
  Dtype out_dtype_ = Dtype::f32;
  std::uint32_t out_version_ = 0;
  std::int64_t out_offset_ = 0;
  std::shared_ptr<Storage> out_storage_;
  std::vector<std::pair<Shape, Dtype>, xgrad::detail::SmallAllocator<std::pair<Shape, Dtype>>> more_outputs_;
  // The inputs the backward closure holds (it keeps their TensorImpl alive until release()),
  // each with its storage and that storage's version when the op was recorded.
  // (Held weakly, to be safe even if a closure's bytes ever matched by chance.)
  struct SavedInput {
    std::weak_ptr<TensorImpl> impl;
    const Storage* storage;  // identity only: set_data gives the tensor another storage
    std::uint32_t version;
  };
  std::vector<SavedInput, xgrad::detail::SmallAllocator<SavedInput>> saved_inputs_;
  // No per-backward state lives on a node: graphs that share nodes (a leaf's accumulator) may
  // be back-propagated by several threads at once, so the engine keeps its scratch per call.
};

/// A backward closure, kept in storage zeroed before the closure is moved in: bytes the closure
/// leaves unwritten (padding, a small vector's unused slots) stay zero rather than hold stale
/// memory, so that note_saved_inputs finds only the tensors the closure really holds.
template <class F>
class Closure {
 public:
  explicit Closure(F&& fn) {
    std::memset(bytes_, 0, sizeof(bytes_));
    // Without this barrier GCC drops the memset as a store dead before a constructor starts the
    // object's lifetime (-flifetime-dse), and unwritten bytes keep whatever the heap held.
    asm volatile("" : : "r"(bytes_) : "memory");
    ::new (static_cast<void*>(bytes_)) F(std::move(fn));
    alive_ = true;
  }
  ~Closure() { reset(); }
  Closure(const Closure&) = delete;
  Closure& operator=(const Closure&) = delete;
  void reset() {
    if (alive_) get().~F();
    alive_ = false;
  }
  F& get() { return *std::launder(reinterpret_cast<F*>(bytes_)); }
  const unsigned char* bytes() const { return bytes_; }

 private:
  alignas(F) unsigned char bytes_[sizeof(F)];
  bool alive_ = false;
};

/// The node of a recorded op with one output: its backward is a lambda taking the output's
/// gradient, or (output's gradient, output) for ops whose derivative is written with their output.
template <class F>
class LambdaNode final : public Node {
 public:
  static constexpr bool kSavesOutput = std::is_invocable_v<F&, const Tensor&, const Tensor&>;
  LambdaNode(const char* name, std::size_t num_inputs, F fn) : Node(name, num_inputs), fn_(std::move(fn)) {}
  Grads apply(const std::vector<Tensor>& output_grads) override {
    if constexpr (kSavesOutput) return fn_.get()(output_grads[0], saved_output());
    else return fn_.get()(output_grads[0]);
  }
  void release() override {
    fn_.reset();
    Node::release();
  }
  const Closure<F>& closure() const { return fn_; }

 private:
  Closure<F> fn_;
};

/// The node of a recorded op with several outputs: its backward takes every output's gradient.
template <class F>
class MultiOutputNode final : public Node {
 public:
  MultiOutputNode(const char* name, std::size_t num_inputs, std::uint32_t num_outputs, F fn)
      : Node(name, num_inputs, num_outputs), fn_(std::move(fn)) {}
  Grads apply(const std::vector<Tensor>& output_grads) override { return fn_.get()(output_grads); }
  void release() override {
    fn_.reset();
    Node::release();
  }
  const Closure<F>& closure() const { return fn_; }

 private:
  Closure<F> fn_;
};

/// The node that adds a leaf's incoming gradient into its .grad. A leaf has one accumulator,
/// made when it first joins a graph and kept while it lives (so that recording an op on a leaf
/// allocates nothing), shared by every graph the leaf joins; it adds under a lock, so threads
/// that back-propagate graphs sharing the leaf sum into its .grad without losing a contribution.
/// It refers to the leaf weakly: a graph that outlives its leaf adds into nothing.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  Grads apply(const std::vector<Tensor>& output_grads) override;
  void release() override {}  // a leaf's accumulator serves every graph the leaf joins
  /// The leaf, or null once it is gone.
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }
  /// Takes the leaf's shape and dtype again (set_data replaced its data by another shape).
  void follow_leaf(const TensorImpl& leaf);
  const Shape& output_shape(std::uint32_t) const override { return shape_; }
  Dtype output_dtype(std::uint32_t) const override { return dtype_; }
  /// Hooks run after each accumulation (register_post_accumulate_grad_hook); ids for removal.
  std::uint64_t add_hook(std::function<void(const Tensor&)> hook);
  void remove_hook(std::uint64_t id);
  bool has_hooks() const override { return hook_count_.load(std::memory_order_relaxed) > 0; }

 private:
  std::weak_ptr<TensorImpl> leaf_;
  Shape shape_;  // the leaf's, kept here for a graph that outlives it
  Dtype dtype_;
  std::mutex mutex_;  // guards .grad and the hooks
  std::vector<std::pair<std::uint64_t, std::function<void(const Tensor&)>>> hooks_;
  std::uint64_t next_hook_id_ = 1;
  std::atomic<std::size_t> hook_count_{0};  // read without the lock by the engine
  void accumulate(TensorImpl& leaf, const Tensor& grad);  // into .grad, under mutex_
};

/// Where tensor t's gradient goes: its grad_fn's output, or a leaf's accumulator (empty when t
/// needs no gradient).
Edge gradient_edge(const Tensor& t);

/// True when an op on these inputs must be recorded (grad mode on, some input requires grad).
bool needs_grad(std::span<const Tensor> inputs);

/// Wires a recorded node: edges to the inputs, the outputs' grad_fn, the saved output.
void connect(Node& node, std::span<const Tensor> inputs, std::span<Tensor> outputs, bool save_output);

/// Remembers (with their versions) the inputs that the backward closure holds, so that backward
/// can refuse to run once one of them was modified in place. A closure holds a Tensor as a
/// shared_ptr<TensorImpl>: the input's own shared_ptr bytes (object and control block address)
/// are looked for in the closure's bytes, which start zeroed (Closure). Tensors that a closure
/// keeps inside a container are not seen, hence not checked.
template <class F>
void note_saved_inputs(Node& node, const Closure<F>& closure, std::span<const Tensor> inputs) {
  using Handle = std::shared_ptr<TensorImpl>;
  if constexpr (sizeof(F) >= sizeof(Handle) && !std::is_empty_v<F>) {
    for (const auto& t : inputs) {
      if (!t.defined()) continue;
      unsigned char handle[sizeof(Handle)];
      std::memcpy(handle, static_cast<const void*>(&t.impl_ptr()), sizeof(Handle));
      for (std::size_t at = 0; at + sizeof(Handle) <= sizeof(F); at += alignof(Handle)) {
        if (std::memcmp(closure.bytes() + at, handle, sizeof(Handle)) == 0) {
          const TensorImpl& impl = t.impl();
          node.saved_inputs_.push_back({t.impl_ptr(), impl.storage.get(), impl.storage->version()});
          break;
        }
      }
    }
  }
}

/// Throws "anomaly: <op> ..." when anomaly mode is on and t holds NaN/Inf.
void check_anomaly(const Tensor& t, const char* op, const char* phase);

/// Records `out` as the result of op `name` on `inputs`, with `backward` giving the input
/// gradients. Nothing is recorded when no input requires grad or grad mode is off.
template <class F>
Tensor record(const char* name, Tensor out, std::span<const Tensor> inputs, F&& backward) {
  check_anomaly(out, name, "forward");
  if (!needs_grad(inputs)) return out;
  using Fn = std::decay_t<F>;
  auto node = std::allocate_shared<LambdaNode<Fn>>(xgrad::detail::SmallAllocator<LambdaNode<Fn>>(), name, inputs.size(),
                                                   std::forward<F>(backward));
  connect(*node, inputs, std::span<Tensor>(&out, 1), LambdaNode<Fn>::kSavesOutput);
  note_saved_inputs(*node, node->closure(), inputs);
  return out;
}
template <class F>
Tensor record(const char* name, Tensor out, std::initializer_list<Tensor> inputs, F&& backward) {
  return record(name, std::move(out), std::span<const Tensor>(inputs.begin(), inputs.size()),
                std::forward<F>(backward));
}

/// Records several outputs of one op; `backward` maps the outputs' gradients (undefined where
/// none arrived, meaning zero) to the inputs' gradients.
template <class F>
std::vector<Tensor> record_outputs(const char* name, std::vector<Tensor> outs, std::span<const Tensor> inputs,
                                   F&& backward) {
  for (const auto& out : outs) check_anomaly(out, name, "forward");
  if (!needs_grad(inputs)) return outs;
  using Recorded = MultiOutputNode<std::decay_t<F>>;
  auto node = std::allocate_shared<Recorded>(xgrad::detail::SmallAllocator<Recorded>(), name, inputs.size(),
                                         static_cast<std::uint32_t>(outs.size()), std::forward<F>(backward));
  connect(*node, inputs, std::span<Tensor>(outs), false);
  note_saved_inputs(*node, node->closure(), inputs);
  return outs;
}

namespace detail {
/// Sees every input that requires grad of every op run while grad mode is off (checkpoint's
/// forward: which tensors from outside the checkpointed function it reads, and how often).
struct InputObserver {
  virtual ~InputObserver() = default;
  virtual void seen(const Tensor& input) = 0;
};
/// Installs an observer on this thread for a scope.
class ObserveInputs {
 public:
  explicit ObserveInputs(InputObserver& observer);
  ~ObserveInputs();
  ObserveInputs(const ObserveInputs&) = delete;
  ObserveInputs& operator=(const ObserveInputs&) = delete;

 private:
  InputObserver* previous_;
};
/// The sequence number of the last node created on this thread (0 before the first).
std::uint64_t newest_node_on_thread();
/// The sequence number the next node will get (on any thread): nodes made from now on have at
/// least this number.
std::uint64_t next_sequence_nr();
/// Whether an InputObserver watches this thread's ops (checkpoint's forward).
bool observing_inputs();
/// Releases a node reference without recursing down a long chain (iterative teardown).
void release_node(std::shared_ptr<Node>& node);
/// acc += g in place (same shape and dtype); bumps acc's version.
void add_in_place(Tensor& acc, const Tensor& g);
/// Whether t is the only handle on its buffer (so writing into it changes nothing else).
bool unshared(const Tensor& t);
/// Whether the backward formula running now on this thread may write its result into t's
/// buffer: the engine releases the node right after this call (no retain_graph, no
/// create_graph), and the formula's own handle is the only one on t and on its buffer.
bool reusable_in_backward(const Tensor& t);
}  // namespace detail

}  // namespace xgrad::autograd
