#include "xgrad/core/shape.hpp"

#include <algorithm>
#include <limits>

#include <sys/resource.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include "xgrad/core/error.hpp"

namespace xgrad {

std::int64_t numel(const Shape& shape) { return checked_numel(shape, "numel"); }

std::int64_t checked_mul(std::int64_t a, std::int64_t b, const char* op) {
  std::int64_t out = 0;
  if (__builtin_mul_overflow(a, b, &out)) fail("{}: size overflow: {} * {} does not fit in int64", op, a, b);
  return out;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b, const char* op) {
  std::int64_t out = 0;
  if (__builtin_add_overflow(a, b, &out)) fail("{}: size overflow: {} + {} does not fit in int64", op, a, b);
  return out;
}

std::int64_t checked_numel(const Shape& shape, const char* op) {
  std::int64_t n = 1;
  bool overflow = false, zero = false;
  for (auto d : shape) {
    zero = zero || d == 0;
    overflow = overflow || __builtin_mul_overflow(n, d, &n);
  }
  if (zero) return 0;  // [2^62, 4, 0] holds no element: its count is 0 whatever the others are
  if (overflow) fail("{}: the element count of shape {} overflows int64", op, shape);
  return n;
}

void check_fits_in_memory(std::int64_t count, std::int64_t item_bytes, const char* op, const char* what) {
  static const std::int64_t physical = [] {
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? static_cast<std::int64_t>(pages) * page : std::numeric_limits<std::int64_t>::max();
  }();
  // The address-space and data limits (ulimit -v, -d) can be lower, and change at run time.
  std::int64_t memory = physical;
  for (int resource : {RLIMIT_AS, RLIMIT_DATA}) {
    rlimit limit{};
    if (::getrlimit(resource, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
        limit.rlim_cur < static_cast<rlim_t>(memory))
      memory = static_cast<std::int64_t>(limit.rlim_cur);
  }
  std::int64_t bytes = 0;
  if (count < 0 || __builtin_mul_overflow(count, item_bytes, &bytes) || bytes > memory)
    fail("{}: {} needs {} x {} bytes, more than this machine's memory or this process's limit ({} bytes)", op, what,
         count, item_bytes, memory);
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
