#pragma once
// Internal (ops_elementwise.cpp, fusion.cpp): the derivatives of the elementwise ops whose
// backward can run fused, each written once as a formula that works on scalars (the fused pass
// over elements) and on Tensors (the op's own backward, and create_graph).
#include <cstdint>
#include <type_traits>

#include "xgrad/autograd/ops.hpp"

namespace xgrad::autograd::detail {

/// The elementwise ops a FusedNode can hold (fusion.cpp).
enum class ElementOp : std::uint8_t { neg, exp, log, tanh, sigmoid, relu, sqrt, add, sub, mul, div };

constexpr bool is_binary(ElementOp op) { return op >= ElementOp::add; }

constexpr const char* op_name(ElementOp op) {
  constexpr const char* names[] = {"neg", "exp", "log", "tanh", "sigmoid", "relu", "sqrt", "add", "sub", "mul", "div"};
  return names[static_cast<int>(op)];
}

/// Calls f(std::integral_constant<ElementOp, op>{}): the op as a compile-time constant, so that
/// a loop over elements is compiled for each op.
template <class F>
void with_op(ElementOp op, F&& f) {
  using enum ElementOp;
  switch (op) {
    case neg: return f(std::integral_constant<ElementOp, neg>{});
    case exp: return f(std::integral_constant<ElementOp, exp>{});
    case log: return f(std::integral_constant<ElementOp, log>{});
    case tanh: return f(std::integral_constant<ElementOp, tanh>{});
    case sigmoid: return f(std::integral_constant<ElementOp, sigmoid>{});
    case relu: return f(std::integral_constant<ElementOp, relu>{});
    case sqrt: return f(std::integral_constant<ElementOp, sqrt>{});
    case add: return f(std::integral_constant<ElementOp, add>{});
    case sub: return f(std::integral_constant<ElementOp, sub>{});
    case mul: return f(std::integral_constant<ElementOp, mul>{});
    case div: return f(std::integral_constant<ElementOp, div>{});
  }
}

/// The values an op's derivative reads: its operands a and b, its output y.
struct Reads {
  bool a = false, b = false, y = false;
};
constexpr Reads reads(ElementOp op) {
  using enum ElementOp;
  switch (op) {
    case exp: case tanh: case sigmoid: case sqrt: return {false, false, true};
    case log: case relu: return {true, false, false};
    case mul: case div: return {true, true, false};
    case neg: case add: case sub: break;
  }
  return {};
}

// Scalar twins of the Tensor functions the formulas use, so that one formula serves both.
template <class T>
  requires std::is_arithmetic_v<T>
T where(bool cond, T a, T b) {
  return cond ? a : b;
}
template <class T>
  requires std::is_arithmetic_v<T>
T zero_of(T) {
  return T(0);
}
inline Tensor zero_of(const Tensor& g) { return scalar(0, g.dtype()); }
inline Tensor operator<=(const Tensor& a, double b) { return le(a, scalar(b, a.dtype())); }

/// d(op)/da times the incoming gradient g, given the operands a, b and the output y (only those
/// that reads(op) names are looked at). Integer literals keep a float formula in float.
template <ElementOp op, class V>
V grad_a(const V& g, const V& a, const V& b, const V& y) {
  using enum ElementOp;
  if constexpr (op == neg) return -g;
  else if constexpr (op == exp) return g * y;
  else if constexpr (op == log) return g / a;
  else if constexpr (op == tanh) return g * (1 - y * y);
  else if constexpr (op == sigmoid) return g * y * (1 - y);
  // 0 where a <= 0 whatever g holds, g elsewhere, NaN included (PyTorch's threshold_backward)
  else if constexpr (op == relu) return where(a <= 0, zero_of(g), g);
  else if constexpr (op == sqrt) return g / (2 * y);
  else if constexpr (op == add || op == sub) return g;
  else if constexpr (op == mul) return g * b;
  else return g / b;  // div
}

/// d(op)/db times g, for the binary ops.
template <ElementOp op, class V>
V grad_b(const V& g, const V& a, const V& b, const V&) {
  using enum ElementOp;
  static_assert(is_binary(op));
  if constexpr (op == add) return g;
  else if constexpr (op == sub) return -g;
  else if constexpr (op == mul) return g * a;
  // PyTorch's order: -g ((a / b) / b), which is -0 rather than 0 * inf = NaN where a = 0 and
  // b * b underflows
  else return -(g * (a / b / b));
}

}  // namespace xgrad::autograd::detail
