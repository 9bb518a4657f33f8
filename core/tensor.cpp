#include "xgrad/core/tensor.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "xgrad/core/kernel.hpp"
#include "xgrad/core/parallel.hpp"
#include "xgrad/core/small_object.hpp"

namespace xgrad {

// --- storage --------------------------------------------------------------------------

namespace {

// Fills from this many elements split across the pool (a fill of 2^18 f32 took 12 us on one core
// and 9 on two, 2^20 43 and 23; below 2^17 two cores gained nothing).
constexpr std::int64_t kParallelFill = std::int64_t{1} << 18;
constexpr std::size_t kAlign = 64;  // a cache line; lets SIMD loads start aligned

// A buffer pool. A training step allocates the same buffers step after step; handing them
// back to the system each time costs a malloc and free per op for small ones, and for large
// ones (glibc unmaps blocks over 128 KiB) makes the next step fault every page in again.
// Freed blocks are kept per size class (four classes per power of two, so at most 25% is
// wasted) and reused, up to kPoolLimit bytes per thread (and as much again for the blocks one
// thread frees that another took: SharedPool).
// Under AddressSanitizer nothing is pooled (core/small_object.hpp).
#ifdef XGRAD_NO_POOLING
constexpr std::size_t kPoolLimit = 0;
#else
constexpr std::size_t kPoolLimit = std::size_t{2} << 30;
#endif

struct SizeClass {
  std::size_t index, bytes;
};

SizeClass size_class(std::size_t bytes) {
  if (bytes <= kAlign) return {0, kAlign};
  const int top = 63 - __builtin_clzll(bytes - 1);  // 2^top < bytes <= 2^(top+1), top >= 6
  const std::size_t quarter = std::size_t{1} << (top - 2);
  const std::size_t quarters = (bytes + quarter - 1) / quarter;  // 5 to 8
  return {static_cast<std::size_t>(top - 5) * 4 + quarters - 4, quarters * quarter};
}

// Set when this thread's pool has been destroyed: with the thread's other thread-local objects,
// or, for the main thread, at exit, before the objects with static storage duration. A static
// Tensor destroyed after that hands its buffer straight back to the system instead of writing
// into the destroyed pool. A plain bool has no destructor, so it can still be read then.
// t_pool: the pool once made, read without the guard of a thread_local with a destructor.
thread_local bool t_pool_destroyed = false;
struct Pool;
thread_local Pool* t_pool = nullptr;

std::atomic<std::uint32_t> g_pools{0};

struct Pool {
  std::array<std::vector<void*>, 64 * 4> free;
  std::size_t held = 0;
  const std::uint32_t id = g_pools.fetch_add(1, std::memory_order_relaxed) + 1;  // 0: no pool
  ~Pool() {
    t_pool_destroyed = true;
    t_pool = nullptr;
    for (auto& blocks : free)
      for (void* p : blocks) ::operator delete(p, std::align_val_t(kAlign));
  }
};

/// This thread's pool, or null once it has been destroyed.
Pool* pool() {
  if (t_pool || t_pool_destroyed) return t_pool;
  thread_local Pool p;
  t_pool = &p;
  return t_pool;
}

// Blocks freed on another thread than the one that took them (what a pool worker made for a
// parallel branch, freed by the caller): kept here, under a lock, for any thread to take. In the
// freeing thread's pool the thread that allocates such buffers would never see them again, and
// that pool would grow to its limit. Never destroyed: a buffer may be freed at exit.
struct SharedPool {
  std::mutex mutex;
  std::array<std::vector<void*>, 64 * 4> free;
  std::size_t held = 0;
  std::atomic<std::size_t> blocks{0};  // read without the lock: threads that never share skip it
};
SharedPool& shared_pool() {
  static SharedPool* shared = new SharedPool;
  return *shared;
}

/// A block of class c, and the pool it now belongs to (0: none).
void* allocate(SizeClass c, std::uint32_t& owner) {
  Pool* cache_ptr = pool();
  owner = 0;
  if (!cache_ptr) return ::operator new(c.bytes, std::align_val_t(kAlign));
  Pool& cache = *cache_ptr;
  owner = cache.id;
  auto& list = cache.free[c.index];
  if (!list.empty()) {
    void* p = list.back();
    list.pop_back();
    cache.held -= c.bytes;
    return p;
  }
  SharedPool& shared = shared_pool();
  if (shared.blocks.load(std::memory_order_relaxed) > 0) {
    std::lock_guard lock(shared.mutex);
    auto& blocks = shared.free[c.index];
    if (!blocks.empty()) {
      void* p = blocks.back();
      blocks.pop_back();
      shared.held -= c.bytes;
      shared.blocks.fetch_sub(1, std::memory_order_relaxed);
      return p;
    }
  }
  return ::operator new(c.bytes, std::align_val_t(kAlign));
}

void deallocate(void* p, SizeClass c, std::uint32_t owner) {
  Pool* cache_ptr = pool();
  if (!cache_ptr) {
    ::operator delete(p, std::align_val_t(kAlign));
    return;
  }
  Pool& cache = *cache_ptr;
  if (owner == cache.id) {
    if (cache.held + c.bytes <= kPoolLimit) {
      cache.free[c.index].push_back(p);
      cache.held += c.bytes;
      return;
    }
  } else {
    SharedPool& shared = shared_pool();
    std::lock_guard lock(shared.mutex);
    if (shared.held + c.bytes <= kPoolLimit) {
      shared.free[c.index].push_back(p);
      shared.held += c.bytes;
      shared.blocks.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  ::operator delete(p, std::align_val_t(kAlign));
}

std::atomic<std::size_t> g_bytes_in_use{0}, g_peak_bytes{0};

void count_allocation(std::size_t bytes) {
  const std::size_t now = g_bytes_in_use.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  std::size_t peak = g_peak_bytes.load(std::memory_order_relaxed);
  while (now > peak && !g_peak_bytes.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}

}  // namespace

MemoryStats memory_stats() {
  return {g_bytes_in_use.load(std::memory_order_relaxed), g_peak_bytes.load(std::memory_order_relaxed)};
}

void reset_peak_memory_stats() { g_peak_bytes.store(g_bytes_in_use.load(std::memory_order_relaxed), std::memory_order_relaxed); }

// Zero-size tensors still get a (one-line) buffer: kernels may form `data + 0` but never read it.
Storage::Storage(std::size_t bytes) : bytes_(bytes) {
  const SizeClass c = size_class(bytes);
  data_ = allocate(c, owner_);
  count_allocation(c.bytes);
}

Storage::~Storage() {
  const SizeClass c = size_class(bytes_);
  g_bytes_in_use.fetch_sub(c.bytes, std::memory_order_relaxed);
  deallocate(data_, c, owner_);
}

// --- accessors --------------------------------------------------------------------------

std::int64_t Tensor::size(std::int64_t axis) const {
  return shape()[normalize_axis(axis, shape().size(), "size", shape())];
}

template <class T>
T Tensor::item() const {
  check(numel() == 1, "item: expects a tensor with one element, got shape {}", shape());
  return detail::dispatch(dtype(), [&](auto tag) { return static_cast<T>(*data<decltype(tag)>()); });
}
template float Tensor::item<float>() const;
template double Tensor::item<double>() const;
template std::int64_t Tensor::item<std::int64_t>() const;
template int Tensor::item<int>() const;

template <class T>
std::vector<T> Tensor::to_vector() const {
  return detail::dispatch(dtype(), [&](auto tag) {
    const auto* p = data<decltype(tag)>();
    std::vector<T> out(static_cast<std::size_t>(numel()));
    std::transform(p, p + out.size(), out.begin(), [](auto v) { return static_cast<T>(v); });
    return out;
  });
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<std::int64_t> Tensor::to_vector<std::int64_t>() const;

template <class T>
xt::xarray<T> Tensor::to_xarray() const {
  auto out = xt::xarray<T>::from_shape(detail::size_shape(shape()));
  auto values = to_vector<T>();
  std::copy(values.begin(), values.end(), out.begin());
  return out;
}
template xt::xarray<float> Tensor::to_xarray<float>() const;
template xt::xarray<double> Tensor::to_xarray<double>() const;
template xt::xarray<std::int64_t> Tensor::to_xarray<std::int64_t>() const;

Tensor& Tensor::copy_(const Tensor& src) {
  check(src.shape() == shape(), "copy_: shapes differ: {} into {}", src.shape(), shape());
  Tensor converted = src.dtype() == dtype() ? src : src.detach().to(dtype());
  std::memcpy(static_cast<char*>(impl().storage->data()) + impl().offset * dtype_size(dtype()),
              static_cast<char*>(converted.impl().storage->data()) +
                  converted.impl().offset * dtype_size(dtype()),
              static_cast<std::size_t>(numel()) * dtype_size(dtype()));
  impl().storage->bump_version();
  return *this;
}

Tensor& Tensor::set_data(const Tensor& src) {
  check(is_leaf(), "set_data: only a leaf tensor's data can be replaced");
  check(!impl().requires_grad || is_floating(src.dtype()), "set_data: a tensor that requires grad needs floating data, got {}",
        dtype_name(src.dtype()));
  auto& i = impl();
  const auto& s = src.impl();
  i.storage = s.storage;
  i.offset = s.offset;
  i.shape = s.shape;
  i.dtype = s.dtype;
  i.grad = Tensor();
  return *this;
}

Tensor& Tensor::requires_grad_(bool enabled) {
  check(!enabled || is_floating(dtype()), "requires_grad_: only floating tensors can require grad, got {}",
        dtype_name(dtype()));
  check(is_leaf(), "requires_grad_: can only change the flag of a leaf tensor (this one has grad_fn)");
  impl().requires_grad = enabled;
  return *this;
}

Tensor Tensor::grad() const { return impl().grad; }
void Tensor::set_grad(const Tensor& g) const {
  if (g.defined())
    check(g.shape() == shape() && g.dtype() == dtype(), "set_grad: gradient {} {} for a {} {} tensor",
          g.shape(), dtype_name(g.dtype()), shape(), dtype_name(dtype()));
  impl().grad = g;
}
void Tensor::zero_grad() const { impl().grad = Tensor(); }

Tensor Tensor::detach() const {
  auto& i = impl();
  return Tensor(std::allocate_shared<TensorImpl>(detail::SmallAllocator<TensorImpl>(), i.storage, i.offset, i.shape, i.dtype));
}

// --- creation -------------------------------------------------------------------------------

Tensor empty(const Shape& shape, Dtype dtype) {
  // The byte count, checked for overflow: a wrapped product would give a small buffer for a
  // huge shape, and every kernel would then write past its end.
  std::int64_t bytes = static_cast<std::int64_t>(dtype_size(dtype));
  bool too_large = false;
  for (auto d : shape) {
    check(d >= 0, "empty: negative dimension in shape {}", shape);
    too_large = too_large || __builtin_mul_overflow(bytes, d, &bytes);
  }
  if (too_large) fail("empty: shape {} of {} is too large to allocate", shape, dtype_name(dtype));
  // A request beyond the machine's memory (or the process's limit) fails without asking: a
  // sanitizer's allocator aborts on it instead of throwing. (Checked from 1 GiB on, which keeps
  // the system calls off the path of every small tensor.)
  if (bytes >= (std::int64_t{1} << 30))
    check_fits_in_memory(checked_numel(shape, "empty"), static_cast<std::int64_t>(dtype_size(dtype)), "empty",
                         fmt::format("shape {} of {}", shape, dtype_name(dtype)).c_str());
  std::shared_ptr<Storage> storage;
  try {
    storage = std::allocate_shared<Storage>(detail::SmallAllocator<Storage>(), static_cast<std::size_t>(bytes));
  } catch (const std::bad_alloc&) {
    fail("empty: cannot allocate {} bytes for shape {} of {}", bytes, shape, dtype_name(dtype));
  }
  return Tensor(std::allocate_shared<TensorImpl>(detail::SmallAllocator<TensorImpl>(), std::move(storage), 0, shape, dtype));
}

Tensor full(const Shape& shape, double value, Dtype dtype) {
  // i64 holds [-2^63, 2^63); converting NaN or a value outside it is undefined behaviour
  if (dtype == i64 && !(value >= -0x1p63 && value < 0x1p63))
    fail("full: value {} cannot be converted to i64 (shape {})", value, shape);
  Tensor t = empty(shape, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    const std::int64_t n = t.numel();
    auto fill = [p, v = static_cast<T>(value)](std::int64_t begin, std::int64_t end) { std::fill(p + begin, p + end, v); };
    // A large fill is bound by memory bandwidth, which two cores draw more of than one (an
    // embedding's zeroed gradient is made while the pool is idle).
    if (n < 2 * kParallelFill) fill(0, n);
    else parallel_for(n, detail::parallel_threshold(kParallelFill), fill);
  });
  return t;
}
Tensor zeros(const Shape& shape, Dtype dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, Dtype dtype) { return full(shape, 1.0, dtype); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype()); }
Tensor scalar(double value, Dtype dtype) { return full({}, value, dtype); }

Tensor arange(double start, double stop, double step, Dtype dtype) {
  check(step != 0, "arange: step must be non-zero");
  check(!(stop > start && step < 0) && !(stop < start && step > 0),
        "arange: step {} points away from stop {} (start {})", step, stop, start);
  const double count = std::max(0.0, std::ceil((stop - start) / step));
  check(std::isfinite(start) && std::isfinite(stop) && count < 0x1p62,
        "arange: start {}, stop {} and step {} must be finite and give a countable range", start, stop, step);
  auto n = static_cast<std::int64_t>(count);
  Tensor t = empty({n}, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}
Tensor arange(double stop, Dtype dtype) { return arange(0, stop, 1, dtype); }

namespace {
template <class T, class U>
Tensor copy_from(const xt::xarray<U>& values, Dtype dtype) {
  Shape shape(values.shape().begin(), values.shape().end());
  Tensor t = empty(shape, dtype);
  std::transform(values.begin(), values.end(), t.data<T>(), [](U v) { return static_cast<T>(v); });
  return t;
}

Tensor from_doubles(const xt::xarray<double>& values, Dtype dtype) {
  if (dtype == i64)
    for (double v : values)
      if (!(v >= -0x1p63 && v < 0x1p63)) fail("tensor: value {} cannot be converted to i64", v);
  return detail::dispatch(dtype, [&](auto tag) { return copy_from<decltype(tag)>(values, dtype); });
}

/// Nested lists must be rectangular: xtensor sizes the array from the first list of each level
/// and would read past a shorter list or write past the array from a longer one.
template <class List>
void check_rectangular(const List& values, const std::vector<std::size_t>& shape, std::size_t depth = 0,
                       const std::string& path = "") {
  if (values.size() != shape[depth])
    fail("tensor: ragged nested list: list {} has {} elements, the first list at its depth has {}",
         path.empty() ? "[]" : path, values.size(), shape[depth]);
  if constexpr (!std::is_arithmetic_v<typename List::value_type>) {
    std::size_t index = 0;
    for (const auto& row : values) check_rectangular(row, shape, depth + 1, fmt::format("{}[{}]", path, index++));
  }
}
template <class List>
void check_rectangular(const List& values) {
  std::vector<std::size_t> shape{values.size()};
  if constexpr (!std::is_arithmetic_v<typename List::value_type>) {
    if (values.size() > 0) shape.push_back(values.begin()->size());
    if constexpr (!std::is_arithmetic_v<typename List::value_type::value_type>)
      if (values.size() > 0 && values.begin()->size() > 0) shape.push_back(values.begin()->begin()->size());
  }
  check_rectangular(values, shape);
}
}  // namespace

Tensor tensor(double value, Dtype dtype) { return from_doubles(xt::xarray<double>(value), dtype); }
Tensor tensor(std::initializer_list<ListValue> values, Dtype dtype) {
  xt::xarray<double> a = xt::xarray<double>::from_shape({values.size()});
  std::transform(values.begin(), values.end(), a.begin(), [](ListValue v) { return v.value; });
  return from_doubles(a, dtype);
}
Tensor tensor(std::initializer_list<std::initializer_list<double>> values, Dtype dtype) {
  check_rectangular(values);
  return from_doubles(xt::xarray<double>(values), dtype);
}
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> values, Dtype dtype) {
  check_rectangular(values);
  return from_doubles(xt::xarray<double>(values), dtype);
}
Tensor from_xarray(const xt::xarray<float>& values) { return copy_from<float>(values, f32); }
Tensor from_xarray(const xt::xarray<double>& values) { return copy_from<double>(values, f64); }
Tensor from_xarray(const xt::xarray<std::int64_t>& values) { return copy_from<std::int64_t>(values, i64); }

}  // namespace xgrad
