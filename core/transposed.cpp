#include "xgrad/core/transposed.hpp"

#include <algorithm>

#include "xgrad/core/gemm.hpp"
#include "xgrad/core/kernel.hpp"

namespace xgrad::detail {

namespace {
thread_local TransposedCopies* t_innermost = nullptr;

Tensor make_transposed(const Tensor& b) {
  const std::int64_t n = b.size(0), k = b.size(1);
  Tensor out = empty({k, n}, b.dtype());
  dispatch_floating(b.dtype(), "transposed copy", [&](auto tag) {
    using T = decltype(tag);
    transpose_copy<T>(n, k, b.data<T>(), out.data<T>());
  });
  return out;
}
}  // namespace

TransposedCopies::TransposedCopies() : previous_(t_innermost) { t_innermost = this; }
TransposedCopies::~TransposedCopies() { t_innermost = previous_; }

Tensor TransposedCopies::transposed(const Tensor& b) {
  if (b.dim() != 2) fail("transposed copy: expects a matrix, got {}", b.shape());
  TransposedCopies* scope = t_innermost;
  if (!scope) return make_transposed(b);
  auto& entries = scope->entries_;
  const TensorImpl& impl = b.impl();
  std::erase_if(entries, [](const Entry& e) { return e.storage.expired(); });
  auto same = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) {
    return e.storage.lock() == impl.storage && e.offset == impl.offset && e.shape == impl.shape && e.dtype == impl.dtype;
  });
  if (same == entries.end()) {
    if (entries.size() == kKept) entries.pop_back();
    entries.push_back({impl.storage, impl.offset, impl.shape, impl.dtype, b.version() + 1, Tensor()});
    same = entries.end() - 1;
  }
  if (same->version != b.version()) {  // new, or written in place since the copy
    same->copy = make_transposed(b);
    same->version = b.version();
  }
  std::rotate(entries.begin(), same, same + 1);  // to the front
  return entries.front().copy;
}

}  // namespace xgrad::detail
