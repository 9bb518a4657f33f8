#pragma once
// Included by the autograd/ops_*.cpp files only: what defining an op needs in one place.
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/kernel.hpp"

namespace xgrad {

namespace detail {
/// Normalised, sorted, distinct axes; throws naming the op on a bad or repeated axis.
std::vector<std::size_t> reduce_axes(const Axes& axes, const Shape& shape, const char* op);
/// The shape after reducing `axes`: size 1 there (keepdim) or removed.
Shape reduced_shape(const Shape& shape, const std::vector<std::size_t>& axes, bool keepdim);
/// The values of an i64 index tensor, each checked to lie in [0, bound) along `axis` of `shape`;
/// throws naming the op otherwise (ops_index.cpp).
const std::int64_t* checked_index(const Tensor& index, const char* op, std::int64_t bound, std::int64_t axis,
                                  const Shape& shape);
}  // namespace detail

using autograd::Grads;
using autograd::record;
using detail::checked_index;
using detail::dispatch;
using detail::dispatch_floating;
using detail::evaluate;
using detail::reduce_axes;
using detail::reduced_shape;
using detail::view;

}  // namespace xgrad
