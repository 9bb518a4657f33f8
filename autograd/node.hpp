#pragma once
// The define-by-run graph. Every op on a tensor that requires grad records a Node: its
// name, edges to the nodes of its inputs, what it saved, and its backward. Nodes are owned
// by the tensors that reference them; backward() frees them unless retain_graph is set.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "core/tensor.hpp"

namespace xgrad::autograd {

/// Gradients with respect to each input of a node; an undefined tensor means none.
using Grads = std::vector<Tensor>;

// --- grad mode and anomaly mode (thread-local) -----------------------------------------------

bool grad_enabled();
void set_grad_enabled(bool enabled);

/// Sets grad mode for a scope, restoring the previous mode on exit.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(grad_enabled()) { set_grad_enabled(enabled); }
  ~GradModeGuard() { set_grad_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

/// No op records a node while this guard lives (inference, parameter updates).
class NoGradGuard : public GradModeGuard {
 public:
  NoGradGuard() : GradModeGuard(false) {}
};

/// When on, the first op whose forward or backward yields NaN/Inf throws an Error naming it.
bool anomaly_enabled();
void set_anomaly_enabled(bool enabled);

class AnomalyModeGuard {
 public:
  explicit AnomalyModeGuard(bool enabled = true) : previous_(anomaly_enabled()) { set_anomaly_enabled(enabled); }
  ~AnomalyModeGuard() { set_anomaly_enabled(previous_); }
  AnomalyModeGuard(const AnomalyModeGuard&) = delete;
  AnomalyModeGuard& operator=(const AnomalyModeGuard&) = delete;

 private:
  bool previous_;
};

/// Number of graph nodes alive in the process (for tests of graph lifetime).
std::int64_t live_nodes();

// --- nodes --------------------------------------------------------------------------------

class Node;

/// Where a gradient goes: output `output_nr` of `node` (nodes of split have several outputs).
struct Edge {
  std::shared_ptr<Node> node;
  std::uint32_t output_nr = 0;
  explicit operator bool() const { return node != nullptr; }
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node(const char* name, std::size_t num_inputs, std::uint32_t num_outputs = 1);
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  const char* name() const { return name_; }
  /// Creation order: a backward runs nodes by decreasing number (a topological order).
  std::uint64_t sequence_nr() const { return sequence_nr_; }
  /// Edges to the nodes of the inputs, one per input; empty where no gradient is needed.
  const std::vector<Edge>& next() const { return next_; }
  std::uint32_t num_outputs() const { return num_outputs_; }

  /// The gradients of the inputs, given the gradients of this node's outputs (an undefined one
  /// means zero: no gradient reached that output).
  virtual Grads apply(const std::vector<Tensor>& output_grads) = 0;
  /// Frees what backward needed; a later backward through this node throws.
  virtual void release();
  bool released() const { return released_; }

 protected:
  struct Last {};  ///< tag: sequence number 0, for nodes without inputs (AccumulateGrad)
  Node(const char* name, Last);
  friend struct Engine;
  friend void connect(Node& node, std::span<const Tensor> inputs, std::span<Tensor> outputs, bool save_output);
  /// The output as saved by connect(): tied to this node when grad mode is on (create_graph).
  Tensor saved_output();

 private:
  const char* name_;
  std::uint64_t sequence_nr_;
  std::vector<Edge> next_;
  std::uint32_t num_outputs_;
  bool released_ = false;
  // Saved output storage (only for ops whose backward reads their output, e.g. tanh).
  std::shared_ptr<Storage> out_storage_;
  std::int64_t out_offset_ = 0;
  Shape out_shape_;
  Dtype out_dtype_ = Dtype::f32;
  // Engine scratch, valid during one backward pass.
  std::vector<Tensor> pending_grads_;  // one per output
  std::uint64_t visit_mark_ = 0;
  bool needed_ = false;
  std::vector<std::pair<std::uint32_t, int>> targets_;  // (output, index in grad()'s inputs)
};

/// The node of a recorded op with one output: its backward is a lambda taking the output's
/// gradient, or (output's gradient, output) for ops whose derivative is written with their output.
template <class F>
class LambdaNode final : public Node {
 public:
  static constexpr bool kSavesOutput = std::is_invocable_v<F&, const Tensor&, const Tensor&>;
  LambdaNode(const char* name, std::size_t num_inputs, F fn) : Node(name, num_inputs), fn_(std::move(fn)) {}
  Grads apply(const std::vector<Tensor>& output_grads) override {
    if constexpr (kSavesOutput) return (*fn_)(output_grads[0], saved_output());
    else return (*fn_)(output_grads[0]);
  }
  void release() override {
    fn_.reset();
    Node::release();
  }

 private:
  std::optional<F> fn_;
};

/// The node of a recorded op with several outputs: its backward takes every output's gradient.
template <class F>
class MultiOutputNode final : public Node {
 public:
  MultiOutputNode(const char* name, std::size_t num_inputs, std::uint32_t num_outputs, F fn)
      : Node(name, num_inputs, num_outputs), fn_(std::move(fn)) {}
  Grads apply(const std::vector<Tensor>& output_grads) override { return (*fn_)(output_grads); }
  void release() override {
    fn_.reset();
    Node::release();
  }

 private:
  std::optional<F> fn_;
};

/// The node that adds a leaf's incoming gradient into its .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> leaf);
  Grads apply(const std::vector<Tensor>& output_grads) override;
  void release() override {}  // a leaf's accumulator serves every graph the leaf joins
  const std::shared_ptr<TensorImpl>& leaf() const { return leaf_; }

 private:
  std::shared_ptr<TensorImpl> leaf_;
};

/// Where tensor t's gradient goes: its grad_fn's output, or a leaf's accumulator (empty when t
/// needs no gradient).
Edge gradient_edge(const Tensor& t);

/// True when an op on these inputs must be recorded (grad mode on, some input requires grad).
bool needs_grad(std::span<const Tensor> inputs);

/// Wires a recorded node: edges to the inputs, the outputs' grad_fn, the saved output.
void connect(Node& node, std::span<const Tensor> inputs, std::span<Tensor> outputs, bool save_output);

/// Throws "anomaly: <op> ..." when anomaly mode is on and t holds NaN/Inf.
void check_anomaly(const Tensor& t, const char* op, const char* phase);

/// Records `out` as the result of op `name` on `inputs`, with `backward` giving the input
/// gradients. Nothing is recorded when no input requires grad or grad mode is off.
template <class F>
Tensor record(const char* name, Tensor out, std::span<const Tensor> inputs, F&& backward) {
  check_anomaly(out, name, "forward");
  if (!needs_grad(inputs)) return out;
  using Fn = std::decay_t<F>;
  auto node = std::make_shared<LambdaNode<Fn>>(name, inputs.size(), std::forward<F>(backward));
  connect(*node, inputs, std::span<Tensor>(&out, 1), LambdaNode<Fn>::kSavesOutput);
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
  auto node = std::make_shared<MultiOutputNode<std::decay_t<F>>>(name, inputs.size(), static_cast<std::uint32_t>(outs.size()),
                                                                 std::forward<F>(backward));
  connect(*node, inputs, std::span<Tensor>(outs), false);
  return outs;
}

namespace detail {
/// Releases a node reference without recursing down a long chain (iterative teardown).
void release_node(std::shared_ptr<Node>& node);
/// acc += g in place (same shape and dtype).
void add_in_place(Tensor& acc, const Tensor& g);
/// Whether t is the only handle on its buffer (so writing into it changes nothing else).
bool unshared(const Tensor& t);
}  // namespace detail

}  // namespace xgrad::autograd
