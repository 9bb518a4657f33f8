#pragma once
// Runtime element types: f32 (the default), f64 (gradient checks, numerics) and i64
// (token ids, labels, lengths; never requires grad).
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace xgrad {

enum class Dtype : std::uint8_t { f32, f64, i64 };
inline constexpr Dtype f32 = Dtype::f32;
inline constexpr Dtype f64 = Dtype::f64;
inline constexpr Dtype i64 = Dtype::i64;

constexpr std::string_view dtype_name(Dtype d) {
  switch (d) {
    case Dtype::f32: return "f32";
    case Dtype::f64: return "f64";
    case Dtype::i64: return "i64";
  }
  return "?";
}

constexpr std::size_t dtype_size(Dtype d) { return d == Dtype::f32 ? 4 : 8; }
constexpr bool is_floating(Dtype d) { return d != Dtype::i64; }

/// The C++ type of each dtype, and back.
template <class T> constexpr Dtype dtype_of() {
  if constexpr (std::is_same_v<T, float>) return Dtype::f32;
  else if constexpr (std::is_same_v<T, double>) return Dtype::f64;
  else {
    static_assert(std::is_same_v<T, std::int64_t>, "xgrad tensors hold float, double or int64_t");
    return Dtype::i64;
  }
}

}  // namespace xgrad
