#include "nn/recurrent.hpp"
