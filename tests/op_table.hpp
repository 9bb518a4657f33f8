#pragma once
// The op table (in the spirit of PyTorch's OpInfo): every differentiable primitive and composite
// of autograd/ops.hpp listed once with its sample inputs, so that one generic test
// (test_op_table.cpp) runs on each: float64 gradcheck and gradgradcheck on every sample
// (broadcasting and odd shapes among them), a zero-size sample, inputs that arrive through
// views and permutations, and an edge-value sweep against PyTorch (tests/fixtures/edge_values.py).
// An op declared in ops.hpp without an entry fails the test.
#include <functional>
#include <string>
#include <vector>

#include "testing.hpp"

namespace xgrad::testing {

/// How the gradcheck samples of an entry are drawn (f64).
enum class Domain {
  any,             ///< uniform in [-1, 1)
  wide,            ///< uniform in [-3, 3)
  positive,        ///< uniform in [0.5, 1.5)
  away_from_zero,  ///< |x| in [0.5, 1.5), either sign: clear of the kinks at 0
};

struct OpEntry {
  std::string name;  ///< unique; the key of its edge-value results in the fixture
  std::string op;    ///< the ops.hpp function it exercises
  /// The op on its inputs; every output (values and indices of sort, pieces of split).
  std::function<std::vector<Tensor>(const Inputs&)> f;
  /// Input shapes of each sample; the first is the base sample.
  std::vector<std::vector<Shape>> samples;
  Domain domain = Domain::any;
  /// Inputs taken as constants: a 0/1 mask (where's cond, masked_fill's mask), not differentiated.
  std::vector<std::size_t> masks = {};
  bool differentiable = true;  ///< false: comparisons, argmax, one_hot (no gradient at all)
  /// Input shapes with an empty axis; none where the op refuses them as PyTorch does (say why).
  std::vector<Shape> zero_size = {};
  std::string no_zero_size = {};
  /// The fixture's input kind for the edge-value sweep ("unary", "binary", "rows", ...); every
  /// entry has one unless `no_edge` says why not.
  std::string edge = {};
  std::string no_edge = {};
};

/// Every entry (op_table.cpp).
const std::vector<OpEntry>& op_table();

/// The inputs of one sample: f64 values of `domain`, masks of 0 and 1 where asked.
Inputs sample_inputs(const OpEntry& entry, const std::vector<Shape>& shapes, std::uint64_t seed = 1);

}  // namespace xgrad::testing
