#include "nn/pool.hpp"
