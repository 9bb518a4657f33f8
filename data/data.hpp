#pragma once
// Everything in xgrad::data.
#include "data/batch.hpp"
#include "data/sequence.hpp"
#include "data/vocab.hpp"
