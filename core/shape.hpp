#pragma once
// Shapes: dynamic rank, row-major, NumPy broadcasting.
#include <cstdint>
#include <string>

#include <fmt/format.h>
#include <xtensor/xstorage.hpp>

namespace xgrad {

/// A tensor shape; ranks up to 5 live inline (no allocation).
using Shape = xt::svector<std::int64_t, 5>;

/// Which end of a padded sequence holds the padding (Keras' padding="post" / "pre"). Here, below
/// both of its users: data's pad_sequences writes it and nn's recurrent layers read it, so a
/// padded batch passes straight through (DESIGN.md: data knows nothing of layers).
enum class PadSide { post, pre };

/// Number of elements of a shape (1 for rank 0); a product that overflows int64 throws
/// "numel: the element count of shape [..] overflows int64".
std::int64_t numel(const Shape& shape);

// --- checked size arithmetic ------------------------------------------------------------------
// Every product or sum of shape sizes, counts or indices goes through these: a wrapped-around
// size would allocate a small buffer and then index far past it, or make a loop run forever.
// On overflow they throw an xgrad::Error naming the op and the operands.

/// a * b; throws "op: size overflow: a * b does not fit in int64".
std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* op);
/// a + b; throws "op: size overflow: a + b does not fit in int64".
std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* op);
/// The element count of a shape; throws "op: the element count of shape [..] overflows int64".
std::int64_t checked_numel(const Shape& shape, const char* op);
/// ceil(a / b) for a >= 0, b > 0, without the overflow of (a + b - 1) / b.
constexpr std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return a == 0 ? 0 : (a - 1) / b + 1; }
/// Throws "op: <what> needs <count> x <item_bytes> bytes, more than this machine's memory" when
/// `count` items of `item_bytes` cannot possibly be held (an index list of 10^12 entries): the
/// clear error instead of std::bad_alloc, a length_error or the OOM killer.
void check_fits_in_memory(std::int64_t count, std::int64_t item_bytes, const char* op, const char* what);

/// "[2, 3]": how every message prints a shape.
std::string to_string(const Shape& shape);

/// True when two shapes broadcast together (NumPy rules).
bool can_broadcast(const Shape& a, const Shape& b);

/// The NumPy broadcast of two shapes; throws "op: shapes [..] and [..] cannot be broadcast".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

/// Maps a possibly negative axis into [0, rank); throws naming the op and the shape.
int normalize_axis(std::int64_t axis, std::size_t rank, const char* op, const Shape& shape);

}  // namespace xgrad

/// \namespace fmt
/// The {fmt} library, which xgrad prints every message with. xgrad specialises fmt::formatter
/// for Shape and Tensor, so both go straight into a format string.

/// Prints a Shape through fmt: fmt::print("{}", shape) gives "[2, 3]", as to_string(const Shape&).
template <>
struct fmt::formatter<xgrad::Shape> : fmt::formatter<std::string_view> {
  auto format(const xgrad::Shape& s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(xgrad::to_string(s), ctx);
  }
};
