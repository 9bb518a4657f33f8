#pragma once
// The engine's interface to backward formulas and to nodes that run a backward of their own
// (checkpoint, parallel_branches). Not part of the public API.
#include <cstddef>
#include <span>
#include <vector>

#include "xgrad/autograd/node.hpp"

namespace xgrad::autograd::detail {

/// The gradient a^T b of a node's input `input` (a [rows, m], b [rows, n]: a weight's gradient
/// dY^T X). Computed now, except inside a first-order backward() where several nodes send
/// gradients to that input (a recurrent weight read at every time step): there the engine keeps
/// the factors and returns an undefined tensor: a product that runs well alone (a small weight,
/// or a step within LIBXSMM's range) is added onto one running sum, the others are summed in one
/// GEMM over their stacked rows (K up to 1024 instead of K = B per step), and the sum joins the
/// input's gradient when that is complete. Which happens depends only on the graph and the
/// shapes, never on timing. The rule and its measurements: docs/autograd.md.
Tensor weight_gradient(std::size_t input, const Tensor& a, const Tensor& b);

/// One gradient that reached a boundary target: a tensor, or a product a^T b not yet summed.
struct Contribution {
  Tensor grad, a, b;
};

/// backward() from these roots, with spans (Tensor::backward passes its one root without a vector).
void backward(std::span<const Tensor> roots, std::span<const Tensor> grads, bool retain_graph, bool create_graph);

/// grad() over the part of the graph between the outputs and the targets: nothing behind a target
/// is collected or run, and each target gets the gradients that arrived there, summed in arrival
/// order (for a FusedNode's output, without what its own later ops add). With `contributions`
/// (undefined grad_outputs are not allowed then), each gradient that reached a target is also
/// listed separately, in arrival order: checkpoint hands them on one by one (products as
/// products), so that the outer backward sums them in the same order as without checkpointing.
/// With retain_graph the graph stays.
std::vector<Tensor> grad_to_boundary(const std::vector<Tensor>& outputs, const std::vector<Edge>& targets,
                                     const std::vector<Tensor>& grad_outputs, bool create_graph, bool retain_graph,
                                     std::vector<std::vector<Contribution>>* contributions = nullptr);

}  // namespace xgrad::autograd::detail
