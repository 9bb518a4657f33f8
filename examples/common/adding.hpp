#pragma once
// The adding problem (Hochreiter & Schmidhuber 1997): a long sequence of (value, marker) pairs
// with two markers, one in each half; the target is the sum of the two marked values.
// Always predicting 1 scores an MSE of about 0.167.
#include "xgrad/core/random.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::examples {

struct Adding {
  Tensor x;  // [N, T, 2]: value, marker
  Tensor y;  // [N, 1]: the sum of the two marked values
};

/// n sequences of the adding problem, length T, drawn from `gen`.
Adding adding_problem(std::int64_t n, std::int64_t T, Generator& gen);

}  // namespace xgrad::examples
