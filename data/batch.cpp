#include "data/batch.hpp"
