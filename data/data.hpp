#pragma once
// Everything in xgrad::data.
#include "xgrad/data/batch.hpp"
#include "xgrad/data/sequence.hpp"
#include "xgrad/data/vocab.hpp"

/// \namespace xgrad::data
/// Padding, windows, batching and vocabularies: sequences into tensors.
/// Overview: \ref layer_data.
