#pragma once
// Activation checkpointing: trade compute for memory. checkpoint(fn, inputs) runs fn without
// recording its graph and records one node instead; its backward runs fn again, with grad, and
// back-propagates through that copy. Peak memory then holds one checkpointed piece's graph at a
// time instead of all of them (torch.utils.checkpoint, which PyTorch has only in Python).
#include <functional>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad::autograd {

/// A piece of a computation to checkpoint: tensors in, tensors out. It may read tensors from
/// outside (a module's parameters, captured by the closure): they get their gradients too. It
/// must compute the same values when run again (the second run draws from a copy of the default
/// generator as the first run found it, so dropout drawing from it repeats its masks, and the
/// default generator itself is left alone; other generators are not replayed).
using CheckpointFunction = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;

/// fn(inputs), with fn's graph recomputed during backward instead of kept. The gradients are
/// bit-identical to those without checkpointing: each contribution to a tensor from outside fn
/// is handed on separately, so the outer backward sums them in the same order. Under no grad,
/// or when nothing fn reads requires grad, it is fn(inputs). Differentiable twice (create_graph).
std::vector<Tensor> checkpoint(const CheckpointFunction& fn, const std::vector<Tensor>& inputs);

}  // namespace xgrad::autograd
