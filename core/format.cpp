// PyTorch-style printing: nested brackets, aligned columns, summarised when large.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "xgrad/autograd/node.hpp"
#include "xgrad/core/kernel.hpp"

namespace xgrad {

namespace {

constexpr std::int64_t kSummariseAbove = 1000;  // elements
constexpr std::int64_t kEdgeItems = 3;          // shown at each end of a summarised axis

struct Printer {
  const Shape& shape;
  std::vector<std::string> cells;  // formatted values, row-major
  std::size_t width = 0;
  bool summarise = false;
  std::string out;

  /// Indices shown along an axis of length n (-1 marks the "..." gap).
  std::vector<std::int64_t> shown(std::int64_t n) const {
    std::vector<std::int64_t> idx;
    if (!summarise || n <= 2 * kEdgeItems) {
      for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
    } else {
      for (std::int64_t i = 0; i < kEdgeItems; ++i) idx.push_back(i);
      idx.push_back(-1);
      for (std::int64_t i = n - kEdgeItems; i < n; ++i) idx.push_back(i);
    }
    return idx;
  }

  void print(std::size_t axis, std::int64_t offset, std::size_t indent) {
    out += '[';
    std::int64_t stride = 1;
    for (std::size_t i = axis + 1; i < shape.size(); ++i) stride *= shape[i];
    auto idx = shown(shape[axis]);
    for (std::size_t j = 0; j < idx.size(); ++j) {
      if (j > 0) {
        out += ',';
        if (axis + 1 == shape.size()) out += ' ';
        else out += std::string(shape.size() - axis - 1, '\n') + std::string(indent + 1, ' ');
      }
      if (idx[j] < 0) out += "...";
      else if (axis + 1 == shape.size()) out += fmt::format("{:>{}}", cells[offset + idx[j]], width);
      else print(axis + 1, offset + idx[j] * stride, indent + 1);
    }
    out += ']';
  }
};

template <class T>
std::vector<std::string> format_values(const Tensor& t) {
  const T* p = t.data<T>();
  const std::int64_t n = t.numel();
  std::vector<std::string> cells(n);
  if constexpr (std::is_integral_v<T>) {
    for (std::int64_t i = 0; i < n; ++i) cells[i] = fmt::format("{}", p[i]);
  } else {
    double big = 0, small = INFINITY;
    for (std::int64_t i = 0; i < n; ++i) {
      double a = std::abs(static_cast<double>(p[i]));
      if (!std::isfinite(a)) continue;
      big = std::max(big, a);
      if (a > 0) small = std::min(small, a);
    }
    const bool scientific = big >= 1e8 || small < 1e-4;
    for (std::int64_t i = 0; i < n; ++i)
      cells[i] = scientific ? fmt::format("{:.4e}", p[i]) : fmt::format("{:.4f}", p[i]);
  }
  return cells;
}

}  // namespace

std::string to_string(const Tensor& t) {
  if (!t.defined()) return "tensor(undefined)";
  auto cells = detail::dispatch(t.dtype(), [&](auto tag) { return format_values<decltype(tag)>(t); });
  Printer p{t.shape(), std::move(cells), 0, false, {}};
  for (const auto& c : p.cells) p.width = std::max(p.width, c.size());
  p.summarise = t.numel() > kSummariseAbove;
  if (t.dim() == 0) p.out = p.cells[0];
  else if (t.numel() == 0) p.out = "[]";
  else p.print(0, 0, 7);  // aligned under "tensor("
  std::string suffix = fmt::format(", shape={}, dtype={}", t.shape(), dtype_name(t.dtype()));
  if (t.grad_fn()) suffix += fmt::format(", grad_fn=<{}>", t.grad_fn()->output_name(t.impl().output_nr));
  else if (t.requires_grad()) suffix += ", requires_grad=true";
  return "tensor(" + p.out + suffix + ")";
}

}  // namespace xgrad
