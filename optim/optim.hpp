#pragma once
// Everything in xgrad::optim.
#include "optim/clip.hpp"
#include "optim/optimizer.hpp"
#include "optim/schedule.hpp"
