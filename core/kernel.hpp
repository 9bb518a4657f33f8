#pragma once
// Internal to the library's .cpp files: dtype dispatch and xtensor views over a tensor's
// buffer. Heavy xtensor headers are included here, never from a public header.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <xsimd/xsimd.hpp>

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

/// Copies `rows` rows of `bytes` bytes each, `src_pitch` and `dst_pitch` bytes apart (0: the
/// same row each time). Rows of one to eight SIMD widths (a recurrent cell's [B, H] gate pieces,
/// a bias row) are moved inline, the last width of a row overlapping the one before: gru_imdb's
/// quick run at one thread took 1 269 M instructions with a memcpy call per row, 1 256 M with
/// this, 1 263 M with rows up to 32 widths inline (callgrind, 2026-12-07).
inline void copy_rows(const char* src, std::size_t src_pitch, char* dst, std::size_t dst_pitch, std::int64_t rows,
                      std::size_t bytes) {
  using Bytes = xsimd::batch<std::uint8_t>;
  constexpr std::size_t W = Bytes::size;
  if (bytes < W || bytes > 8 * W) {
    for (std::int64_t r = 0; r < rows; ++r, src += src_pitch, dst += dst_pitch) std::memcpy(dst, src, bytes);
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r, src += src_pitch, dst += dst_pitch) {
    std::size_t i = 0;
    for (; i + W <= bytes; i += W) Bytes::load_unaligned(reinterpret_cast<const std::uint8_t*>(src + i)).store_unaligned(reinterpret_cast<std::uint8_t*>(dst + i));
    if (i < bytes)
      Bytes::load_unaligned(reinterpret_cast<const std::uint8_t*>(src + bytes - W))
          .store_unaligned(reinterpret_cast<std::uint8_t*>(dst + bytes - W));
  }
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
