// Attacks (attacks.hpp) on: data. Filled in by its owner.
#include "attacks.hpp"

namespace xgrad::attacks {
namespace {}  // namespace
}  // namespace xgrad::attacks
