#pragma once
// Everything public in xgrad: tensors, autograd, ops, gradient checks.
#include "autograd/engine.hpp"
#include "autograd/gradcheck.hpp"
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/gemm.hpp"
#include "core/parallel.hpp"
#include "core/random.hpp"
#include "core/tensor.hpp"
#include "nn/nn.hpp"
#include "optim/optim.hpp"
#include "data/data.hpp"
