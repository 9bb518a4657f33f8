#include "xgrad/core/small_object.hpp"

#include <array>
#include <utility>

namespace xgrad::detail {

namespace {

constexpr std::size_t kGrain = 16, kLargest = 512, kClasses = kLargest / kGrain;
// Blocks kept per class: enough for the graph of a long training step, bounded (8 MiB per class
// at most) so that a one-off burst does not stay held.
constexpr std::size_t kKeepPerClass = (std::size_t{8} << 20) / kLargest;

/// A freed block holds the link to the next one of its class.
struct FreeBlock {
  FreeBlock* next;
};

struct FreeLists;
// This thread's lists once made. A plain pointer is read without the guard that every use of a
// thread_local with a destructor pays. After the lists are gone (thread exit; for the main
// thread, before objects with static storage duration are destroyed) frees go straight to
// operator delete.
thread_local FreeLists* t_lists = nullptr;
thread_local bool t_lists_destroyed = false;

struct FreeLists {
  std::array<FreeBlock*, kClasses> head{};
  std::array<std::size_t, kClasses> count{};
  ~FreeLists() {
    t_lists_destroyed = true;
    t_lists = nullptr;
    for (FreeBlock* b : head)
      while (b) ::operator delete(std::exchange(b, b->next));
  }
};

[[maybe_unused]] FreeLists* lists() {  // unused where XGRAD_NO_POOLING (sanitizers)
  if (t_lists || t_lists_destroyed) return t_lists;
  thread_local FreeLists l;
  t_lists = &l;
  return t_lists;
}

}  // namespace

void* small_allocate(std::size_t bytes) {
#ifndef XGRAD_NO_POOLING
  if (bytes != 0 && bytes <= kLargest) {
    const std::size_t c = (bytes - 1) / kGrain;
    if (FreeLists* l = lists(); l && l->head[c]) {
      FreeBlock* b = l->head[c];
      l->head[c] = b->next;
      --l->count[c];
      // The blocks of a freed graph are cold by the time the next one is recorded: fetch the
      // next block of this class now, while the caller fills this one.
      if (b->next) __builtin_prefetch(b->next, 1);
      return b;
    }
    return ::operator new((c + 1) * kGrain);
  }
#endif
  return ::operator new(bytes);
}

void small_deallocate(void* p, [[maybe_unused]] std::size_t bytes) noexcept {
#ifndef XGRAD_NO_POOLING
  if (bytes != 0 && bytes <= kLargest) {
    const std::size_t c = (bytes - 1) / kGrain;
    if (FreeLists* l = lists(); l && l->count[c] < kKeepPerClass) {
      l->head[c] = ::new (p) FreeBlock{l->head[c]};
      ++l->count[c];
      return;
    }
  }
#endif
  ::operator delete(p);
}

}  // namespace xgrad::detail
