// Attacks (attacks.hpp) on: system. Filled in by its owner.
#include "attacks.hpp"

namespace xgrad::attacks {
namespace {}  // namespace
}  // namespace xgrad::attacks
