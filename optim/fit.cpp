#include "optim/fit.hpp"
