#pragma once
// Every recorded op allocates a few small objects: its graph node, the output's tensor handle and
// storage record, the node's edge list. A per-thread free list per 16-byte size class hands them
// back for reuse instead of going through malloc each time (glibc's free lists and their
// consolidation were a tenth of an overhead-bound training step). std::allocate_shared and
// containers take SmallAllocator; objects over 512 bytes go to operator new as before.
#include <cstddef>
#include <new>

// Under AddressSanitizer nothing is pooled (here or in the tensor buffer pool), so that a use after
// free is reported. GCC defines the macro; clang has the feature test.
#if defined(__SANITIZE_ADDRESS__)
#define XGRAD_NO_POOLING 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XGRAD_NO_POOLING 1
#endif
#endif

namespace xgrad::detail {

void* small_allocate(std::size_t bytes);
void small_deallocate(void* p, std::size_t bytes) noexcept;

/// A standard allocator over small_allocate (alignment up to 16 bytes, as malloc's).
template <class T>
struct SmallAllocator {
  static_assert(alignof(T) <= 16, "SmallAllocator: over-aligned type");
  using value_type = T;
  SmallAllocator() = default;
  template <class U>
  SmallAllocator(const SmallAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(small_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t n) noexcept { small_deallocate(p, n * sizeof(T)); }
  template <class U>
  bool operator==(const SmallAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace xgrad::detail
