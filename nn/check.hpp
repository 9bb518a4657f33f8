#pragma once
// Proving a cell or a layer in one call: float64 gradient checks with respect to the inputs,
// the state and every parameter, second derivatives, state shapes, determinism and a
// state_dict round trip. This is how every shipped cell and layer is tested.
#include <cstdint>
#include <string>

#include "nn/cell.hpp"

namespace xgrad::nn {

struct CheckOptions {
  std::int64_t batch = 2;
  std::int64_t steps = 3;      ///< sequence length for cells
  bool second_order = true;    ///< also gradgradcheck
  std::uint64_t seed = 0;      ///< inputs and initial states are seeded
};

/// Converts the cell to float64 and checks it unrolled over a short sequence (with a random
/// state of the layer beneath when the cell reads one). Throws xgrad::Error naming the cell and
/// the failing check; returns a one-line summary of what passed.
std::string check_cell(Cell& cell, const CheckOptions& options = {});

/// The same for a module with one input of the given shape (values uniform in [-1, 1];
/// modules in training mode use it as it is: call eval() first to check without dropout).
std::string check_module(UnaryModule& module, const Shape& input_shape, const CheckOptions& options = {});

}  // namespace xgrad::nn
