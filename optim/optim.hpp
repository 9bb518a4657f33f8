#pragma once
// Everything in xgrad::optim.
#include "xgrad/optim/clip.hpp"
#include "xgrad/optim/fit.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/optim/process_group.hpp"
#include "xgrad/optim/progress.hpp"
#include "xgrad/optim/schedule.hpp"

/// \namespace xgrad::optim
/// Optimizers, learning-rate schedules, gradient clipping and the fit loop.
/// Overview: \ref layer_optim.
