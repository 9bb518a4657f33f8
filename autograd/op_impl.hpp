#pragma once
// Included by the autograd/ops_*.cpp files only: what defining an op needs in one place.
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/kernel.hpp"

namespace xgrad {

using autograd::Grads;
using autograd::record;
using detail::dispatch;
using detail::dispatch_floating;
using detail::evaluate;
using detail::view;

}  // namespace xgrad
