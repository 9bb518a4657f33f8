#pragma once
// Everything in xgrad::data.
#include "xgrad/data/batch.hpp"
#include "xgrad/data/sequence.hpp"
#include "xgrad/data/vocab.hpp"
