#include "core/shape.hpp"

#include <fmt/ranges.h>

#include "core/error.hpp"

namespace xgrad {

std::int64_t numel(const Shape& shape) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const Shape& longer = a.size() >= b.size() ? a : b;
  const Shape& shorter = a.size() >= b.size() ? b : a;
  Shape out = longer;
  const std::size_t lead = longer.size() - shorter.size();
  for (std::size_t i = 0; i < shorter.size(); ++i) {
    auto x = longer[lead + i], y = shorter[i];
    if (x == y || y == 1) continue;
    if (x == 1) { out[lead + i] = y; continue; }
    fail("{}: shapes {} and {} cannot be broadcast", op, a, b);
  }
  return out;
}

int normalize_axis(std::int64_t axis, std::size_t rank, const char* op, const Shape& shape) {
  const auto r = static_cast<std::int64_t>(rank);
  if (axis < -r || axis >= r) fail("{}: axis {} is out of range for shape {}", op, axis, shape);
  return static_cast<int>(axis < 0 ? axis + r : axis);
}

}  // namespace xgrad
