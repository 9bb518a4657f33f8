#pragma once
// Shapes: dynamic rank, row-major, NumPy broadcasting.
#include <cstdint>
#include <string>

#include <fmt/format.h>
#include <xtensor/xstorage.hpp>

namespace xgrad {

/// A tensor shape; ranks up to 5 live inline (no allocation).
using Shape = xt::svector<std::int64_t, 5>;

/// Number of elements of a shape (1 for rank 0).
std::int64_t numel(const Shape& shape);

/// "[2, 3]": how every message prints a shape.
std::string to_string(const Shape& shape);

/// True when two shapes broadcast together (NumPy rules).
bool can_broadcast(const Shape& a, const Shape& b);

/// The NumPy broadcast of two shapes; throws "op: shapes [..] and [..] cannot be broadcast".
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

/// Maps a possibly negative axis into [0, rank); throws naming the op and the shape.
int normalize_axis(std::int64_t axis, std::size_t rank, const char* op, const Shape& shape);

}  // namespace xgrad

template <>
struct fmt::formatter<xgrad::Shape> : fmt::formatter<std::string_view> {
  auto format(const xgrad::Shape& s, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(xgrad::to_string(s), ctx);
  }
};
