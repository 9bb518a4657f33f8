// Attacks (attacks.hpp) on: files. Filled in by its owner.
#include "attacks.hpp"

namespace xgrad::attacks {
namespace {}  // namespace
}  // namespace xgrad::attacks
