#include "core/shape.hpp"

#include <algorithm>

#include <fmt/ranges.h>

#include "core/error.hpp"

namespace xgrad {

std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

bool can_broadcast(const Shape& a, const Shape& b) {
  for (std::size_t i = 1; i <= std::min(a.size(), b.size()); ++i) {
    auto x = a[a.size() - i], y = b[b.size() - i];
    if (x != y && x != 1 && y != 1) return false;
  }
  return true;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (!can_broadcast(a, b)) fail("{}: shapes {} and {} cannot be broadcast", op, a, b);
  Shape out = a.size() >= b.size() ? a : b;
  for (std::size_t i = 1; i <= std::min(a.size(), b.size()); ++i) {
    auto x = a[a.size() - i], y = b[b.size() - i];
    out[out.size() - i] = x == 1 ? y : x;
  }
  return out;
}

int normalize_axis(std::int64_t axis, std::size_t rank, const char* op, const Shape& shape) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) fail("{}: axis {} is out of range for shape {}", op, axis, shape);
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

}  // namespace xgrad
