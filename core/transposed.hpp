#pragma once
// Transposed copies of the right operand of products x W^T that LIBXSMM takes (see
// gemm_prefers_transposed_copy), kept while a loop reads the same W at every step (nn::unroll:
// h W_hh^T at each time step).
#include <cstdint>
#include <memory>
#include <vector>

#include "xgrad/core/tensor.hpp"

namespace xgrad::detail {

/// While one lives on a thread (a scope on the stack of a loop), transposed copies made by
/// transposed() are kept and handed out again as long as the tensor they copy keeps its values
/// (its storage lives and its version has not moved). The innermost one serves; it keeps the
/// copies of the few tensors used last.
class TransposedCopies {
 public:
  TransposedCopies();
  ~TransposedCopies();
  TransposedCopies(const TransposedCopies&) = delete;
  TransposedCopies& operator=(const TransposedCopies&) = delete;

  /// b^T [k, n], contiguous, for a 2-d b [n, k] (f32 or f64): kept from earlier in the innermost
  /// scope of this thread, or made now (and kept there, if there is one).
  static Tensor transposed(const Tensor& b);

 private:
  struct Entry {
    std::weak_ptr<Storage> storage;  // weak: a freed buffer's address may be reused by another
    std::int64_t offset;
    Shape shape;
    Dtype dtype;
    std::uint32_t version;
    Tensor copy;
  };
  static constexpr std::size_t kKept = 8;  // most recently used first
  std::vector<Entry> entries_;
  TransposedCopies* previous_;
};

}  // namespace xgrad::detail
