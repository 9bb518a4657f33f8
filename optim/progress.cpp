#include "optim/progress.hpp"
