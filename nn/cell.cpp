#include "nn/cell.hpp"
