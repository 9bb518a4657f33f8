#include "nn/attention.hpp"
