#pragma once
// Everything in xgrad::nn.
#include "xgrad/nn/act.hpp"
#include "xgrad/nn/activation.hpp"
#include "xgrad/nn/attention.hpp"
#include "xgrad/nn/cell.hpp"
#include "xgrad/nn/cells.hpp"
#include "xgrad/nn/check.hpp"
#include "xgrad/nn/conv.hpp"
#include "xgrad/nn/decode.hpp"
#include "xgrad/nn/dilated.hpp"
#include "xgrad/nn/dropout.hpp"
#include "xgrad/nn/embedding.hpp"
#include "xgrad/nn/init.hpp"
#include "xgrad/nn/linear.hpp"
#include "xgrad/nn/loss.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/nn/ntm.hpp"
#include "xgrad/nn/pool.hpp"
#include "xgrad/nn/recurrent.hpp"
#include "xgrad/nn/tbptt.hpp"

/// \namespace xgrad::nn
/// Modules, layers, recurrent cells and the recurrent driver, attention and losses.
/// Overview: \ref layer_nn.
