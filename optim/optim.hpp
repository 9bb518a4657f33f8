#pragma once
// Everything in xgrad::optim.
#include "optim/clip.hpp"
#include "optim/fit.hpp"
#include "optim/optimizer.hpp"
#include "optim/progress.hpp"
#include "optim/schedule.hpp"
