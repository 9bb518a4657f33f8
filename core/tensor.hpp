#pragma once
// Tensor: a cheap, shared handle to an n-d array with a runtime dtype, plus the autograd
// fields (requires_grad, grad, grad_fn) that autograd/ fills in. Copies are shallow.
#include <atomic>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <fmt/format.h>
#include <xtensor/xarray.hpp>

#include "xgrad/core/dtype.hpp"
#include "xgrad/core/error.hpp"
#include "xgrad/core/shape.hpp"

namespace xgrad {

namespace autograd {
class Node;
}

/// A flat, typed buffer shared by the tensors that alias it (reshape, detach).
class Storage {
 public:
  explicit Storage(std::size_t bytes);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }
  /// Counts the in-place writes into this buffer (copy_, accumulation into a .grad, optimizer
  /// steps): a graph node that saved a tensor remembers the version it saw, and backward refuses
  /// to use the tensor once the version moved on (PyTorch's version counter, shared by views).
  std::uint32_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_;
  std::size_t bytes_;
  std::atomic<std::uint32_t> version_{0};
  std::uint32_t owner_;  // the buffer pool it came from (core/tensor.cpp)
};

/// The bytes of tensor storage held by live buffers (each rounded up to its size class), over
/// all threads: what the tensors of a program need at once, apart from the freed buffers the pool
/// keeps for reuse. PyTorch's torch.cuda.memory_allocated / max_memory_allocated.
struct MemoryStats {
  std::size_t in_use = 0;  ///< held by live buffers now
  std::size_t peak = 0;    ///< the most held at once since the start or reset_peak_memory_stats()
};
MemoryStats memory_stats();
/// Starts the peak over from the bytes in use now.
void reset_peak_memory_stats();

class Tensor;
struct TensorImpl;

/// A cheap, shared handle to an n-d array with a runtime dtype (f32, f64, i64), plus the
/// autograd fields (requires_grad, grad, grad_fn) that autograd/ fills in. Copies are shallow:
/// every copy refers to the same data, as a PyTorch tensor does.
class Tensor {
 public:
  Tensor() = default;  ///< an undefined tensor (like a None gradient)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  std::int64_t dim() const;                   ///< rank
  std::int64_t size(std::int64_t axis) const;  ///< extent of one axis (negative counts from the end)
  std::int64_t numel() const;
  Dtype dtype() const;

  /// Typed pointer to the first element; throws if T is not this tensor's dtype.
  template <class T> T* data() const;
  /// The value of a one-element tensor, converted to T.
  template <class T = double> T item() const;
  /// A copy of the values as an xtensor array of T (converting the dtype).
  template <class T> xt::xarray<T> to_xarray() const;
  /// All values converted to T, in row-major order.
  template <class T> std::vector<T> to_vector() const;

  /// Differentiable dtype conversion (the identity when the dtype already matches).
  Tensor to(Dtype dtype) const;
  /// A new tensor with its own copy of the data (differentiable).
  Tensor clone() const;
  /// Writes src's values into this tensor's storage, in place, recording nothing
  /// (parameter updates). Shapes must match; src's dtype is converted.
  Tensor& copy_(const Tensor& src);
  /// Makes this leaf use src's data, shape and dtype (every handle to it sees the change);
  /// drops its .grad. How a module changes the dtype of its parameters in place. A graph that
  /// saved this tensor before can no longer be back-propagated (backward throws).
  Tensor& set_data(const Tensor& src);
  /// The in-place version of this tensor's data (shared with its views); see Storage::version.
  std::uint32_t version() const;
  /// Marks the data as modified in place. copy_ and the optimizers do it; code that writes
  /// through data<T>() into a tensor a graph may have saved should do it too.
  void bump_version() const;

  // --- autograd ---------------------------------------------------------------------
  bool requires_grad() const;
  /// Marks a leaf as requiring grad (floating dtypes only).
  Tensor& requires_grad_(bool enabled = true);
  /// True for tensors created by the user rather than by a recorded op.
  bool is_leaf() const;
  /// The accumulated gradient of a leaf (undefined until a backward reaches it).
  Tensor grad() const;
  void set_grad(const Tensor& grad) const;
  /// Drops the accumulated gradient (PyTorch's set_to_none).
  void zero_grad() const;
  /// The node that produced this tensor (null for leaves and untracked tensors).
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  /// Same data, cut from the graph: requires_grad false, no grad_fn.
  Tensor detach() const;
  /// Reverse-mode differentiation from this tensor into the leaves' .grad. A scalar
  /// uses an implicit gradient of 1; otherwise pass `gradient` of this tensor's shape.
  void backward(const Tensor& gradient = {}, bool retain_graph = false, bool create_graph = false) const;

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

/// What a Tensor handle points to. Views (reshape, detach) share `storage`.
struct TensorImpl {
  std::shared_ptr<Storage> storage;
  std::int64_t offset = 0;  ///< in elements
  Shape shape;
  Dtype dtype = Dtype::f32;
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;            ///< null for leaves
  std::uint32_t output_nr = 0;                        ///< which output of grad_fn this is
  /// Leaves: the node adding into grad (an autograd::AccumulateGrad), made when the leaf first
  /// joins a graph and kept while the leaf lives; it refers back to the leaf weakly. Set once:
  /// `has_accumulator` publishes it to threads that record ops on the leaf at the same time.
  std::shared_ptr<autograd::Node> grad_accumulator;
  std::atomic<bool> has_accumulator{false};
  Tensor grad;

  // The shape by reference: xtensor's svector moves by swapping its inline elements, which costs
  // twice a copy.
  TensorImpl(std::shared_ptr<Storage> s, std::int64_t off, const Shape& sh, Dtype dt)
      : storage(std::move(s)), offset(off), shape(sh), dtype(dt) {}
  ~TensorImpl();  // hands grad_fn to the iterative graph teardown
};

// --- creation -----------------------------------------------------------------------------

/// Uninitialised values: for kernels that write every element.
Tensor empty(const Shape& shape, Dtype dtype = f32);
Tensor zeros(const Shape& shape, Dtype dtype = f32);
Tensor ones(const Shape& shape, Dtype dtype = f32);
Tensor full(const Shape& shape, double value, Dtype dtype = f32);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);
/// A rank-0 tensor.
Tensor scalar(double value, Dtype dtype = f32);
/// [start, stop) in steps of `step`.
Tensor arange(double start, double stop, double step = 1, Dtype dtype = f32);
Tensor arange(double stop, Dtype dtype = f32);
/// A number in a 1-D initializer list. Being a class, it makes tensor({{4.5}}) and
/// tensor({{1}, {2}}) pick the 2-D overload (a column) instead of being ambiguous.
struct ListValue {
  template <class T>
    requires std::is_arithmetic_v<T>
  ListValue(T v) : value(static_cast<double>(v)) {}  // NOLINT: implicit by design
  double value;
};

/// From (nested) initializer lists: tensor(3.5), tensor({1, 2, 3}, i64), tensor({{1, 2}, {3, 4}}).
/// (A 3-D literal whose innermost lists hold one number each is ambiguous: use reshape.)
Tensor tensor(double value, Dtype dtype = f32);
Tensor tensor(std::initializer_list<ListValue> values, Dtype dtype = f32);
Tensor tensor(std::initializer_list<std::initializer_list<double>> values, Dtype dtype = f32);
Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<double>>> values, Dtype dtype = f32);
/// From an xtensor array, keeping its element type.
Tensor from_xarray(const xt::xarray<float>& values);
Tensor from_xarray(const xt::xarray<double>& values);
Tensor from_xarray(const xt::xarray<std::int64_t>& values);

/// PyTorch-style text: values (summarised when large), shape, dtype, grad_fn.
std::string to_string(const Tensor& t);

// --- inline accessors -------------------------------------------------------------------

inline TensorImpl& Tensor::impl() const {
  if (!impl_) fail("tensor: use of an undefined tensor");
  return *impl_;
}
inline const Shape& Tensor::shape() const { return impl().shape; }
inline std::int64_t Tensor::dim() const { return static_cast<std::int64_t>(impl().shape.size()); }
inline std::int64_t Tensor::numel() const {
  // A tensor's shape was checked against overflow when it was made (empty, reshape): a plain
  // product here, not xgrad::numel's checked one (a call on every kernel's path).
  std::uint64_t n = 1;
  for (auto d : impl().shape) n *= static_cast<std::uint64_t>(d);
  return static_cast<std::int64_t>(n);
}
inline Dtype Tensor::dtype() const { return impl().dtype; }
inline std::uint32_t Tensor::version() const { return impl().storage->version(); }
inline void Tensor::bump_version() const { impl().storage->bump_version(); }
inline bool Tensor::requires_grad() const { return impl().requires_grad; }
inline bool Tensor::is_leaf() const { return impl().grad_fn == nullptr; }
inline const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return impl().grad_fn; }

template <class T>
T* Tensor::data() const {
  auto& i = impl();
  if (i.dtype != dtype_of<T>())
    fail("tensor: data<{}>() on a {} tensor", dtype_name(dtype_of<T>()), dtype_name(i.dtype));
  return static_cast<T*>(i.storage->data()) + i.offset;
}

}  // namespace xgrad

/// Prints a Tensor through fmt: fmt::print("{}", t) gives to_string(const Tensor&).
template <>
struct fmt::formatter<xgrad::Tensor> : fmt::formatter<std::string_view> {
  auto format(const xgrad::Tensor& t, format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(xgrad::to_string(t), ctx);
  }
};
