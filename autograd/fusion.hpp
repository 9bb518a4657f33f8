#pragma once
// Internal (ops_elementwise.cpp): recording elementwise ops into one fused graph node.
// The design: docs/fusion.md.
#include <span>

#include "xgrad/autograd/formulas.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::autograd::detail {

/// Records out = op(inputs) as one more instruction of this thread's open FusedNode, or of a new
/// one. False when the op must get a node of its own (grad mode off or nothing requires grad,
/// fusion or anomaly mode, an integer dtype, a tensor of fewer than 16 or more than 32 768
/// elements, an operand that a later node made).
bool record_fused(ElementOp op, const Tensor& out, std::span<const Tensor> inputs);

/// g times the derivative of the unary `op` at the saved value v (its operand or its output, as
/// reads(op) says), in one pass over the elements: the first-order backward of an op outside a
/// FusedNode. Compiled with the fused backward, without contracting a * b + c into one rounding
/// (CMakeLists.txt), so that an op gives the same bits in a FusedNode and on its own.
Tensor unary_derivative(ElementOp op, const Tensor& g, const Tensor& v);

/// Lets no later op join the open FusedNode of this thread (a backward starts: the ops of a
/// create_graph backward must not join a node of the graph being run).
void close_fused_node();

}  // namespace xgrad::autograd::detail
