#include "nn/conv.hpp"
