// Attacks on tensor creation, shapes and dtypes.
#include <cstdint>
#include <limits>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

Register creation{"creation", {
  {"empty with a negative size", [] { expect_error([] { empty({2, -1}); }, "empty.*-1"); }},
  {"zeros whose size product overflows int64", [] { expect_error([] { zeros({1ll << 32, 1ll << 32}); }, "zeros|empty"); }},
  {"full with NaN", [] { expect_values(full({3}, kNaN), {kNaN, kNaN, kNaN}); }},
}};

}  // namespace
}  // namespace xgrad::attacks
