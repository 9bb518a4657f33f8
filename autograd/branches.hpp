#pragma once
// Independent pieces of a computation, side by side: parallel_branches runs each branch's
// forward on a thread of its own (where the pool has one free) and records the branches as one
// node whose backward also runs their graphs side by side. A bidirectional recurrent layer runs
// its two directions this way: two long chains of small ops that a core each keeps busy, where
// splitting each small op across the cores costs more in waking than it saves.
#include <functional>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad::autograd {

/// A piece of a computation: reads tensors from outside (captured), returns its outputs.
using Branch = std::function<std::vector<Tensor>()>;

/// Each branch's outputs. With concurrent_forward the branches run side by side: they must not
/// draw random numbers or write anything another branch reads (the order of such effects would
/// depend on timing); without, one after another on this thread, in order. Backward runs them side
/// by side either way, so their backward formulas and tensor hooks must be thread-safe (xgrad's
/// are).
///
/// The gradients are those of the same ops run one branch after another without it. A branch's
/// backward sums what it sends to each tensor from outside in the order the engine would have,
/// and the branches' sums reach the tensor the last branch's first, as they would have: the
/// gradients are the same to the bit unless a tensor that one branch reads several times also
/// gets gradient from another branch or from outside (then the sum is grouped differently).
/// Tensors made inside a branch that it does not return are not grad() targets (the outer
/// graph reaches a branch's graph through its outputs only).
/// Differentiable twice (create_graph). Under no grad it only runs the branches.
std::vector<std::vector<Tensor>> parallel_branches(const std::vector<Branch>& branches, bool concurrent_forward = true);

}  // namespace xgrad::autograd
