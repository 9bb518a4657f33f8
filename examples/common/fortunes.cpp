#include "common/fortunes.hpp"
