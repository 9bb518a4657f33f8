#include "data/sequence.hpp"
