#pragma once
// Running the graph backwards: backward() into the leaves' .grad, grad() into return values.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "xgrad/core/tensor.hpp"

/// \namespace xgrad::autograd
/// The graph and its engine: nodes, backward, grad, grad mode and anomaly mode.
/// Overview: \ref layer_autograd.
namespace xgrad::autograd {

/// Accumulates d(sum of roots * grads)/d(leaf) into every reachable leaf's .grad. An undefined
/// entry of `grads` means 1 for a one-element root. Frees the graph unless retain_graph;
/// with create_graph the backward itself is recorded (for higher-order derivatives).
void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads = {}, bool retain_graph = false,
              bool create_graph = false);

/// Returns d(sum of outputs * grad_outputs)/d(input) for each input, leaving every .grad
/// untouched. retain_graph defaults to create_graph. An input that the outputs do not depend
/// on throws, or gives an undefined tensor when allow_unused.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {}, bool create_graph = false,
                         std::optional<bool> retain_graph = std::nullopt, bool allow_unused = false);

class AccumulateGrad;

/// Called with a leaf once backward() has added the last contribution of the graph to its .grad,
/// while the rest of backward still runs (PyTorch's register_post_accumulate_grad_hook). On the
/// thread that runs backward; not by grad(), which leaves .grad alone.
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;

/// A registered hook; destroying the handle (or remove()) unregisters it. It keeps the leaf's
/// accumulator, so the hook stays with the leaf across graphs.
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::shared_ptr<AccumulateGrad> accumulator, std::uint64_t id);
  HookHandle(HookHandle&& other) noexcept;
  HookHandle& operator=(HookHandle&& other) noexcept;
  ~HookHandle();
  void remove();

 private:
  std::shared_ptr<AccumulateGrad> accumulator_;
  std::uint64_t id_ = 0;
};

/// Runs `hook` after each backward that reaches `leaf` (a tensor that requires grad and was
/// made by the user, not by an op) has accumulated into its .grad. Every contribution of that
/// backward is in when it runs: backward runs a leaf's accumulation as soon as the last node
/// feeding it has run, not at the end. dist::DataParallel starts its allreduces from here.
[[nodiscard]] HookHandle register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook);

/// Runs `callback` when the backward() now running has finished (every node run, every .grad
/// accumulated), before it returns, on its thread; callbacks run in the order queued. Only
/// inside a backward (from a hook or a node's backward); elsewhere it throws.
void queue_callback(std::function<void()> callback);

}  // namespace xgrad::autograd
