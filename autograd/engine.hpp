#pragma once
// Running the graph backwards: backward() into the leaves' .grad, grad() into return values.
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

}  // namespace xgrad::autograd
