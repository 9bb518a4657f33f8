#include "nn/check.hpp"
