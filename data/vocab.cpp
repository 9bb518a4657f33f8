#include "data/vocab.hpp"
