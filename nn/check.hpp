#pragma once
// Proving a cell or a layer in one call: float64 gradient checks with respect to the inputs,
// the state and every parameter, second derivatives, state shapes, determinism and a
// state_dict round trip. This is how every shipped cell and layer is tested.
#include <cstdint>
#include <string>

#include "xgrad/nn/recurrent.hpp"

namespace xgrad::nn {

/// Options of check_cell and check_module.
struct CheckOptions {
  std::int64_t batch = 2;
  std::int64_t steps = 3;      ///< sequence length for cells
  bool second_order = true;    ///< also gradgradcheck
  std::uint64_t seed = 0;      ///< inputs and initial states are seeded
};

/// Converts the cell to float64 and checks it unrolled over a short sequence (with a random
/// state of the layer beneath when the cell reads one): gradcheck and gradgradcheck with
/// respect to the input, the state and every parameter, state shapes, determinism, a
/// state_dict round trip, and the common mistakes of a new cell:
///  - a tensor the step uses that requires grad but is not registered (a parameter or a
///    submodule the cell holds without register_parameter / register_module);
///  - a step that ignores the recurrent-dropout mask (an h into a recurrent weight without
///    recurrent(h));
///  - a step that is not deterministic in eval mode.
/// Throws xgrad::Error naming the cell and the failing check; returns a one-line summary.
std::string check_cell(Cell& cell, const CheckOptions& options = {});

/// All of the above on make_cell(0, 3), then the cell inside a 2-layer bidirectional Recurrent
/// built from the same factory, with lengths, recurrent and input dropout, in train and eval:
/// every tensor a cell registers (parameters, buffers, submodules at any depth) is reachable from
/// the layer's state_dict and converted by to(f64); eval is deterministic; train mode with
/// seeded masks differentiates correctly (gradcheck); the masks change the output; a state_dict
/// round trip restores the output.
std::string check_cell(const CellFactory& make_cell, const CheckOptions& options = {});

/// The same for a module with one input of the given shape (values uniform in [-1, 1];
/// modules in training mode use it as it is: call eval() first to check without dropout).
std::string check_module(UnaryModule& module, const Shape& input_shape, const CheckOptions& options = {});

}  // namespace xgrad::nn
