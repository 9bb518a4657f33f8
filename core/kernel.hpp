#pragma once
// Internal to the library's .cpp files: dtype dispatch and xtensor views over a tensor's
// buffer. Heavy xtensor headers are included here, never from a public header.
#include <cstdint>
#include <type_traits>

#include <xtensor/xadapt.hpp>
#include <xtensor/xarray.hpp>
#include <xtensor/xmath.hpp>
#include <xtensor/xnoalias.hpp>

#include "xgrad/core/tensor.hpp"

namespace xgrad::detail {

using SizeShape = xt::svector<std::size_t, 5>;

inline SizeShape size_shape(const Shape& s) { return SizeShape(s.begin(), s.end()); }

/// A row-major xtensor view of t's elements (reads and writes go to t's storage).
template <class T>
auto view(const Tensor& t) {
  return xt::adapt(t.data<T>(), static_cast<std::size_t>(t.numel()), xt::no_ownership(),
                   size_shape(t.shape()));
}

/// Calls f(T{}) with T the C++ type of dtype d.
template <class F>
decltype(auto) dispatch(Dtype d, F&& f) {
  switch (d) {
    case Dtype::f64: return f(double{});
    case Dtype::i64: return f(std::int64_t{});
    case Dtype::f32: break;
  }
  return f(float{});
}

/// Like dispatch, for ops defined on floating tensors only.
template <class F>
decltype(auto) dispatch_floating(Dtype d, const char* op, F&& f) {
  if (d == Dtype::i64) fail("{}: expects a floating tensor (f32 or f64), got i64", op);
  if (d == Dtype::f64) return f(double{});
  return f(float{});
}

/// A new tensor of `shape` whose elements are the xtensor expression e (broadcast to shape).
template <class T, class E>
Tensor evaluate(const Shape& shape, E&& e) {
  Tensor out = empty(shape, dtype_of<T>());
  auto v = view<T>(out);
  xt::noalias(v) = std::forward<E>(e);
  return out;
}

}  // namespace xgrad::detail
