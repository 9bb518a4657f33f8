#include "nn/loss.hpp"
