#pragma once
// Everything public in xgrad: tensors, autograd, ops, gradient checks.
#include "xgrad/autograd/branches.hpp"
#include "xgrad/autograd/checkpoint.hpp"
#include "xgrad/autograd/engine.hpp"
#include "xgrad/autograd/gradcheck.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/gemm.hpp"
#include "xgrad/core/parallel.hpp"
#include "xgrad/core/random.hpp"
#include "xgrad/core/tensor.hpp"
#include "xgrad/nn/nn.hpp"
#include "xgrad/optim/optim.hpp"
#include "xgrad/data/data.hpp"

/// \namespace xgrad
/// Tensors, the primitive ops and gradient checks; the layers, optimizers and data helpers are
/// in xgrad::nn, xgrad::optim and xgrad::data. Overview: \ref layers.
