// Elementwise primitives: forward kernel, derivative, shape rule and errors, side by side.
#include <array>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

#include <xsimd/xsimd.hpp>

#include "xgrad/autograd/fusion.hpp"
#include "xgrad/autograd/op_impl.hpp"
#include "xgrad/core/loops.hpp"

namespace xgrad {

namespace {

/// out = kernel(x) in dtype T, where kernel maps an xtensor expression elementwise. Split
/// across the pool in ranges that start at multiples of the SIMD width: xtensor then covers the
/// same elements with its vector body (and the same last few with its scalar tail) as in one
/// pass over the whole buffer, so no element's bits depend on the thread count.
template <class T, class Kernel>
Tensor map_expression(const Tensor& x, Kernel kernel, std::int64_t unit = detail::kParallelElements) {
  constexpr std::int64_t W = xsimd::batch<T>::size;
  Tensor out = empty(x.shape(), x.dtype());
  const T* px = x.data<T>();
  T* po = out.data<T>();
  const std::int64_t n = x.numel();
  detail::parallel_items(ceil_div(n, W), W, [&](std::int64_t b, std::int64_t e) {
    const std::size_t begin = static_cast<std::size_t>(b * W), end = static_cast<std::size_t>(std::min(n, e * W));
    const std::array<std::size_t, 1> len{end - begin};
    auto out_range = xt::adapt(po + begin, end - begin, xt::no_ownership(), len);
    xt::noalias(out_range) = kernel(xt::adapt(px + begin, end - begin, xt::no_ownership(), len));
  }, unit);
  return out;
}

/// map_expression for floating x.
template <class Kernel>
Tensor map_floating(const char* op, const Tensor& x, Kernel kernel, std::int64_t unit = detail::kParallelElements) {
  return dispatch_floating(x.dtype(), op, [&](auto tag) { return map_expression<decltype(tag)>(x, kernel, unit); });
}

/// Transcendental maps (exp, log, sigmoid, tanh) cost about ten times an add per element: they
/// split across the pool from a smaller tensor (a recurrent cell's gates at H = 128, B = 32).
constexpr std::int64_t kParallelTranscendental = std::int64_t{1} << 12;

/// out = f(x) one element at a time, in dtype T (split across the pool for large x).
template <class T, class F>
Tensor map_elements(const Tensor& x, F f) {
  Tensor out = empty(x.shape(), x.dtype());
  const T* px = x.data<T>();
  T* po = out.data<T>();
  detail::parallel_items(x.numel(), 1, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) po[i] = static_cast<T>(f(px[i]));
  });
  return out;
}

/// out = f(x) for floating x, one element at a time with a scalar function: for ops whose
/// vectorised version (xsimd 8's generic pow) disagrees with std:: at special values, so that no
/// element's result depends on whether it falls in a vector body or the scalar tail.
template <class F>
Tensor map_scalar(const char* op, const Tensor& x, F f) {
  return dispatch_floating(x.dtype(), op, [&](auto tag) { return map_elements<decltype(tag)>(x, f); });
}

/// out = f(x) through xsimd batches everywhere, the last partial batch padded, so that an
/// element's result never depends on its position (with xtensor's assignment, a vector body and
/// a std:: tail round the last bit differently). Lanes where regular(v) is false (NaN, infinities,
/// subnormals, results that underflow or overflow: where xsimd 8 flushes or mis-rounds) take the
/// scalar std:: formula, as PyTorch's results do. `pad` must be regular.
template <class BatchF, class ScalarF, class Regular>
Tensor map_vectorised(const char* op, const Tensor& x, double pad, BatchF batch_f, ScalarF scalar_f, Regular regular) {
  return dispatch_floating(x.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    using B = xsimd::batch<T>;
    constexpr std::int64_t W = B::size;
    Tensor out = empty(x.shape(), x.dtype());
    const T* px = x.data<T>();
    T* po = out.data<T>();
    auto batch = [&](const T* in, T* o) {
      const B v = B::load_unaligned(in);
      batch_f(v).store_unaligned(o);
      if (!xsimd::all(regular(v)))
        for (std::int64_t k = 0; k < W; ++k)
          if (!regular(in[k])) o[k] = static_cast<T>(scalar_f(in[k]));
    };
    const std::int64_t n = x.numel(), full = n / W;
    detail::parallel_items(full, W, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) batch(px + i * W, po + i * W);
    }, kParallelTranscendental);
    if (const std::int64_t rest = n - full * W; rest > 0) {
      T in[W], o[W];
      std::fill(in, in + W, static_cast<T>(pad));
      std::copy(px + full * W, px + n, in);
      batch(in, o);
      std::copy(o, o + rest, po + full * W);
    }
    return out;
  });
}

/// The element type of a scalar or an xsimd batch (the predicates below serve both).
template <class V>
struct Element {
  using type = V;
};
template <class T, class A>
struct Element<xsimd::batch<T, A>> {
  using type = T;
};

/// Where exp(v) is a finite normal number: xsimd's exp is accurate there.
template <class V>
auto exp_regular(V v) {
  using T = typename Element<V>::type;
  static const T lo = std::log(std::numeric_limits<T>::min()), hi = std::log(std::numeric_limits<T>::max());
  return (v > V(lo)) & (v < V(hi));
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    fail("{}: dtypes differ: {} {} and {} {}", op, dtype_name(a.dtype()), a.shape(), dtype_name(b.dtype()),
         b.shape());
}

/// out = f(a, b) elementwise over the broadcast shape of a and b; f works on scalars.
template <class F>
Tensor zip(const char* op, const Tensor& a, const Tensor& b, F f) {
  check_same_dtype(op, a, b);
  Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  return dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    Tensor out = empty(shape, a.dtype());
    detail::broadcast_binary(shape, a.data<T>(), a.shape(), b.data<T>(), b.shape(), out.data<T>(),
                             [&](T x, T y) { return static_cast<T>(f(x, y)); });
    return out;
  });
}

template <class F>
Tensor zip_floating(const char* op, const Tensor& a, const Tensor& b, F f) {
  if (a.dtype() == Dtype::i64) fail("{}: expects floating tensors (f32 or f64), got i64", op);
  return zip(op, a, b, f);
}

Tensor constant_like(const Tensor& t, double value) { return scalar(value, t.dtype()); }

// Scalar twins of the Tensor functions that derivative formulas use, so that one formula,
// written once as a generic lambda, runs on elements (fused) and on Tensors (composed); more
// in formulas.hpp.
using autograd::detail::where;
template <class T>
  requires std::is_arithmetic_v<T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}
/// x * c with c in x's type: the scalar's dtype (T) or the tensor's.
template <class T>
  requires std::is_arithmetic_v<T>
T scaled(T x, double c) {
  return x * static_cast<T>(c);
}
Tensor scaled(const Tensor& x, double c) { return x * c; }
Tensor operator>(const Tensor& a, double b) { return gt(a, constant_like(a, b)); }

/// The derivative formula(g, v), for the saved v (an input or the output): in one fused pass
/// over the elements (one buffer, no nodes) when no graph of the backward is being recorded;
/// under create_graph, the same formula on Tensors, so that it differentiates again.
template <class Formula>
Tensor derivative(const char* op, const Tensor& g, const Tensor& v, Formula formula) {
  if (autograd::grad_enabled()) return formula(g, v);
  return zip(op, g, v, [&](auto g, auto v) { return formula(g, v); });
}

using autograd::detail::ElementOp;
using autograd::detail::grad_a;
using autograd::detail::grad_b;

/// record() for the ops a FusedNode can hold: joins this thread's open FusedNode where it can
/// (docs/fusion.md), gets a node of its own otherwise. `backward` is the op's own, written with
/// the formulas of formulas.hpp that the fused backward also applies.
template <class F>
Tensor record_elementwise(ElementOp op, Tensor out, std::initializer_list<Tensor> inputs, F&& backward) {
  if (autograd::detail::record_fused(op, out, std::span<const Tensor>(inputs.begin(), inputs.size()))) return out;
  return record(autograd::detail::op_name(op), std::move(out), inputs, std::forward<F>(backward));
}

/// g times the derivative of a unary op at the saved v (an input or the output): in one pass over
/// the elements, exactly as in a FusedNode, when no graph of the backward is being recorded;
/// under create_graph, the same formula on Tensors, so that it differentiates again.
template <ElementOp op>
Tensor unary_derivative(const Tensor& g, const Tensor& v) {
  if (autograd::grad_enabled()) return grad_a<op>(g, v, v, v);
  return autograd::detail::unary_derivative(op, g, v);
}

}  // namespace

// --- unary ------------------------------------------------------------------------------------

Tensor neg(const Tensor& x) {
  Tensor y = dispatch(x.dtype(), [&](auto tag) { return map_expression<decltype(tag)>(x, [](auto&& v) { return -v; }); });
  return record_elementwise(ElementOp::neg, y, {x}, [](const Tensor& g) -> Grads {
    return {grad_a<ElementOp::neg>(g, {}, {}, {})};
  });
}

Tensor exp(const Tensor& x) {
  Tensor y = map_vectorised(
      "exp", x, 0, [](auto v) { return xsimd::exp(v); }, [](auto v) { return std::exp(v); },
      [](auto v) { return exp_regular(v); });
  return record_elementwise(ElementOp::exp, y, {x}, [](const Tensor& g, const Tensor& y) -> Grads {
    return {grad_a<ElementOp::exp>(g, {}, {}, y)};
  });
}

Tensor log(const Tensor& x) {
  Tensor y = map_vectorised(
      "log", x, 1, [](auto v) { return xsimd::log(v); }, [](auto v) { return std::log(v); },
      [](auto v) {  // positive, finite and normal
        using V = decltype(v);
        using T = typename Element<V>::type;
        return (v >= V(std::numeric_limits<T>::min())) & (v <= V(std::numeric_limits<T>::max()));
      });
  return record_elementwise(ElementOp::log, y, {x}, [x](const Tensor& g) -> Grads {
    return {grad_a<ElementOp::log>(g, x, {}, {})};
  });
}

Tensor tanh(const Tensor& x) {
  Tensor y = map_floating("tanh", x, [](auto&& v) { return xt::tanh(v); }, kParallelTranscendental);
  return record_elementwise(ElementOp::tanh, y, {x}, [](const Tensor& g, const Tensor& y) -> Grads {
    return {unary_derivative<ElementOp::tanh>(g, y)};
  });
}

Tensor sigmoid(const Tensor& x) {
  Tensor y = map_vectorised(
      "sigmoid", x, 0,
      [](auto v) {
        using V = decltype(v);
        return V(1) / (V(1) + xsimd::exp(-v));
      },
      [](auto v) { return decltype(v)(1) / (decltype(v)(1) + std::exp(-v)); }, [](auto v) { return exp_regular(-v); });
  return record_elementwise(ElementOp::sigmoid, y, {x}, [](const Tensor& g, const Tensor& y) -> Grads {
    return {unary_derivative<ElementOp::sigmoid>(g, y)};
  });
}

Tensor relu(const Tensor& x) {
  Tensor y = map_floating("relu", x, [](auto&& v) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    return xt::where(v <= T(0), T(0), v);  // NaN stays NaN (PyTorch), where max(NaN, 0) may give 0
  });
  return record_elementwise(ElementOp::relu, y, {x}, [x](const Tensor& g) -> Grads {
    return {unary_derivative<ElementOp::relu>(g, x)};
  });
}

Tensor sqrt(const Tensor& x) {
  Tensor y = map_floating("sqrt", x, [](auto&& v) { return xt::sqrt(v); });
  return record_elementwise(ElementOp::sqrt, y, {x}, [](const Tensor& g, const Tensor& y) -> Grads {
    return {grad_a<ElementOp::sqrt>(g, {}, {}, y)};
  });
}

Tensor abs(const Tensor& x) {
  Tensor y = dispatch(x.dtype(), [&](auto tag) { return map_expression<decltype(tag)>(x, [](auto&& v) { return xt::abs(v); }); });
  return record("abs", y, {x}, [x](const Tensor& g) -> Grads { return {g * sign(x)}; });
}

namespace {
/// x^p, with PyTorch's kernels for the common exponents (sqrt for 1/2, 1 / sqrt for -1/2, a
/// reciprocal for -1, products for 2, 3 and -2): the same last bits, and sqrt(-inf) = NaN where
/// std::pow(-inf, 0.5) gives inf.
template <class T>
T pow_scalar(T v, T p) {
  if (p == T(0.5)) return std::sqrt(v);
  if (p == T(-0.5)) return T(1) / std::sqrt(v);
  if (p == T(-1)) return T(1) / v;
  if (p == T(2)) return v * v;
  if (p == T(3)) return v * v * v;
  if (p == T(-2)) return T(1) / (v * v);
  return std::pow(v, p);
}
}  // namespace

Tensor pow(const Tensor& x, double p) {
  Tensor y = map_scalar("pow", x, [p](auto v) { return pow_scalar(v, static_cast<decltype(v)>(p)); });
  return record("pow", y, {x}, [x, p](const Tensor& g) -> Grads {
    if (p == 0) return {zeros_like(g)};  // d/dx x^0 = 0, also at x = 0 where p x^(p-1) is 0 * inf
    return {g * (p * pow(x, p - 1))};
  });
}

Tensor softplus(const Tensor& x, double beta, double threshold) {
  // PyTorch's kernel: beta and threshold in the tensor's dtype, the linear regime strictly above
  // the threshold, log1p(exp(.)) below it (4.2e-18 at x = -40, where log(1 + exp(.)) gives 0).
  Tensor y = map_vectorised(
      "softplus", x, 0,
      [beta, threshold](auto v) {
        using V = decltype(v);
        const V bx = v * V(beta);
        return xsimd::select(bx > V(threshold), v, xsimd::log1p(xsimd::exp(bx)) / V(beta));
      },
      [beta, threshold](auto v) {
        using T = decltype(v);
        const T bx = v * T(beta);
        return bx > T(threshold) ? v : std::log1p(std::exp(bx)) / T(beta);
      },
      [beta](auto v) { return exp_regular(v * decltype(v)(beta)); });
  return record("softplus", y, {x}, [x, beta, threshold](const Tensor& g) -> Grads {
    // d/dx = sigmoid(beta x) below the threshold, 1 above it (both regimes differentiate again).
    // PyTorch's e^bx / (e^bx + 1) is NaN where e^bx overflows under a threshold past ~709 (f64);
    // 1 / (1 + e^-bx) is 1 there.
    return {derivative("softplus", g, x, [beta, threshold](auto g, auto x) {
      const auto bx = scaled(x, beta);
      return where(bx > threshold, g, g * sigmoid(bx));
    })};
  });
}

Tensor sin(const Tensor& x) {
  Tensor y = map_scalar("sin", x, [](auto v) { return std::sin(v); });
  return record("sin", y, {x}, [x](const Tensor& g) -> Grads { return {g * cos(x)}; });
}

Tensor cos(const Tensor& x) {
  Tensor y = map_scalar("cos", x, [](auto v) { return std::cos(v); });
  return record("cos", y, {x}, [x](const Tensor& g) -> Grads { return {neg(g * sin(x))}; });
}

Tensor clamp(const Tensor& x, std::optional<double> min, std::optional<double> max) {
  if (!min && !max) fail("clamp: give at least one of min and max (shape {})", x.shape());
  // Bounds in the tensor's dtype; NaN stays NaN; min > max gives max everywhere (PyTorch).
  const double lo = min.value_or(-std::numeric_limits<double>::infinity());
  const double hi = max.value_or(std::numeric_limits<double>::infinity());
  Tensor y = map_scalar("clamp", x, [lo, hi](auto v) {
    using T = decltype(v);
    return std::isnan(v) ? v : std::min(std::max(v, static_cast<T>(lo)), static_cast<T>(hi));
  });
  return record("clamp", y, {x}, [x, lo, hi](const Tensor& g) -> Grads {
    // d/dx = 1 where min <= x <= max (bounds included), 0 outside and at NaN
    return {g * (ge(x, constant_like(x, lo)) * le(x, constant_like(x, hi)))};
  });
}

Tensor clip(const Tensor& x, std::optional<double> min, std::optional<double> max) { return clamp(x, min, max); }

namespace {
/// An op whose derivative is zero wherever it exists (sign, floor, round): recorded, so that
/// gradients reach its input as zeros, as in PyTorch.
template <class F>
Tensor piecewise_constant(const char* op, const Tensor& x, F f) {
  Tensor y = dispatch(x.dtype(), [&](auto tag) { return map_elements<decltype(tag)>(x, f); });
  if (!is_floating(x.dtype())) return y;
  return record(op, y, {x}, [](const Tensor& g) -> Grads { return {zeros_like(g)}; });
}
}  // namespace

Tensor sign(const Tensor& x) {
  return piecewise_constant("sign", x, [](auto v) {
    using T = decltype(v);
    return static_cast<T>((T(0) < v) - (v < T(0)));  // 0 for NaN, as in PyTorch
  });
}

Tensor floor(const Tensor& x) {
  return piecewise_constant("floor", x, [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) return std::floor(v);
    else return v;
  });
}

Tensor round(const Tensor& x) {
  return piecewise_constant("round", x, [](auto v) {
    if constexpr (std::is_floating_point_v<decltype(v)>) return std::nearbyint(v);  // halves to even
    else return v;
  });
}

Tensor isfinite(const Tensor& x) {
  return dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return evaluate<T>(x.shape(), xt::cast<T>(xt::isfinite(view<T>(x))));
  });
}

// --- binary ----------------------------------------------------------------------------------------
// Broadcasting is differentiated in one place: every input gradient goes through sum_to.

namespace {
/// Records add or sub, whose gradients pass g (or -g) down, summed to each operand's shape where
/// it broadcast. Without broadcasting the node keeps no shapes: a Shape in a closure costs a
/// copy, and a swap each time the closure moves (tiny_op: a tenth of an add's instructions).
template <ElementOp op>
Tensor record_additive(const Tensor& y, const Tensor& a, const Tensor& b) {
  if (a.shape() == y.shape() && b.shape() == y.shape())
    return record_elementwise(op, y, {a, b}, [](const Tensor& g) -> Grads {
      return {grad_a<op>(g, {}, {}, {}), grad_b<op>(g, {}, {}, {})};
    });
  return record_elementwise(op, y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
    return {sum_to(grad_a<op>(g, {}, {}, {}), sa), sum_to(grad_b<op>(g, {}, {}, {}), sb)};
  });
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  return record_additive<ElementOp::add>(zip("add", a, b, [](auto u, auto v) { return u + v; }), a, b);
}

Tensor sub(const Tensor& a, const Tensor& b) {
  return record_additive<ElementOp::sub>(zip("sub", a, b, [](auto u, auto v) { return u - v; }), a, b);
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = zip("mul", a, b, [](auto u, auto v) { return u * v; });
  return record_elementwise(ElementOp::mul, y, {a, b}, [a, b](const Tensor& g) -> Grads {
    return {a.requires_grad() ? sum_to(grad_a<ElementOp::mul>(g, a, b, {}), a.shape()) : Tensor(),
            b.requires_grad() ? sum_to(grad_b<ElementOp::mul>(g, a, b, {}), b.shape()) : Tensor()};
  });
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = zip_floating("div", a, b, [](auto u, auto v) { return u / v; });
  return record_elementwise(ElementOp::div, y, {a, b}, [a, b](const Tensor& g) -> Grads {
    return {a.requires_grad() ? sum_to(grad_a<ElementOp::div>(g, a, b, {}), a.shape()) : Tensor(),
            b.requires_grad() ? sum_to(grad_b<ElementOp::div>(g, a, b, {}), b.shape()) : Tensor()};
  });
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor y = zip_floating("pow", a, b, [](auto u, auto v) { return std::pow(u, v); });  // scalar: see map_scalar
  return record("pow", y, {a, b}, [a, b](const Tensor& g, const Tensor& y) -> Grads {
    // PyTorch's formulas, edge values included: d/da = b a^(b-1), taken as 0 where b = 0 (at
    // a = 0 it would be 0 * inf); d/db = a^b ln a, taken as 0 where a = 0 and b >= 0 (the limit),
    // NaN for a < 0 (no real logarithm).
    Tensor ga, gb;
    const Tensor zero = constant_like(g, 0);
    if (a.requires_grad()) ga = sum_to(where(eq(b, zero), zero, g * b * pow(a, b - 1.0)), a.shape());
    if (b.requires_grad()) {
      const Tensor limit = eq(a, zero) * ge(b, zero);
      const Tensor safe_a = where(limit, constant_like(a, 1), a);
      gb = sum_to(where(limit, zero, g * y * log(safe_a)), b.shape());
    }
    return {ga, gb};
  });
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor y = zip("maximum", a, b, [](auto u, auto v) { return std::isnan(static_cast<double>(u)) || u > v ? u : v; });
  return record("maximum", y, {a, b}, [a, b](const Tensor& g) -> Grads {
    // PyTorch's weights: 1/2 each at ties, 0 for the smaller, 1 otherwise (so both get all of g
    // where either is NaN); constant, as the op is piecewise linear
    const Tensor half_ties = 0.5 * eq(a, b);
    return {sum_to(g * (1.0 - lt(a, b) - half_ties), a.shape()), sum_to(g * (1.0 - gt(a, b) - half_ties), b.shape())};
  });
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_same_dtype("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor y = dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return dispatch(cond.dtype(), [&](auto ctag) {
      using C = decltype(ctag);
      return evaluate<T>(shape, xt::where(xt::not_equal(view<C>(cond), C(0)), view<T>(a), view<T>(b)));
    });
  });
  return record("where", y, {a, b}, [cond, sa = a.shape(), sb = b.shape()](const Tensor& g) -> Grads {
    Tensor zero = constant_like(g, 0);
    return {sum_to(where(cond, g, zero), sa), sum_to(where(cond, zero, g), sb)};
  });
}

#define XGRAD_COMPARISON(name, expr) \
  Tensor name(const Tensor& a, const Tensor& b) { return zip(#name, a, b, [](auto u, auto v) { return expr; }); }
XGRAD_COMPARISON(eq, u == v)
XGRAD_COMPARISON(ne, u != v)
XGRAD_COMPARISON(lt, u < v)
XGRAD_COMPARISON(le, u <= v)
XGRAD_COMPARISON(gt, u > v)
XGRAD_COMPARISON(ge, u >= v)
#undef XGRAD_COMPARISON

// --- operators ---------------------------------------------------------------------------------

Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, constant_like(a, b)); }
Tensor operator-(const Tensor& a, double b) { return sub(a, constant_like(a, b)); }
Tensor operator*(const Tensor& a, double b) { return mul(a, constant_like(a, b)); }
Tensor operator/(const Tensor& a, double b) { return div(a, constant_like(a, b)); }
Tensor operator+(double a, const Tensor& b) { return add(constant_like(b, a), b); }
Tensor operator-(double a, const Tensor& b) { return sub(constant_like(b, a), b); }
Tensor operator*(double a, const Tensor& b) { return mul(constant_like(b, a), b); }
Tensor operator/(double a, const Tensor& b) { return div(constant_like(b, a), b); }

// --- dtype conversion and copies ----------------------------------------------------------------

Tensor Tensor::to(Dtype target) const {
  const Tensor& x = *this;
  if (target == i64 && is_floating(x.dtype())) {
    // A float outside int64's range (or NaN) has no int64 value: the C++ cast is undefined.
    dispatch_floating(x.dtype(), "to", [&](auto tag) {
      using S = decltype(tag);
      const S* p = x.data<S>();
      for (std::int64_t i = 0, n = x.numel(); i < n; ++i)
        if (!(p[i] >= S(-0x1p63) && p[i] < S(0x1p63)))
          fail("to: element {} of the {} tensor {} is {}, which has no i64 value", i, dtype_name(x.dtype()), x.shape(),
               p[i]);
    });
  }
  Tensor y = dispatch(target, [&](auto tag) {
    using T = decltype(tag);
    return dispatch(x.dtype(), [&](auto stag) {
      using S = decltype(stag);
      return evaluate<T>(x.shape(), xt::cast<T>(view<S>(x)));
    });
  });
  if (!is_floating(target) || !is_floating(x.dtype())) return y;
  return record("to", y, {x}, [source = x.dtype()](const Tensor& g) -> Grads { return {g.to(source)}; });
}

Tensor Tensor::clone() const { return to(dtype()); }

}  // namespace xgrad
