// matmul: the one linear-algebra primitive; every matrix product runs through core/gemm.
#include <algorithm>

#include "xgrad/autograd/engine_detail.hpp"
#include "xgrad/autograd/op_impl.hpp"
#include "xgrad/core/gemm.hpp"
#include "xgrad/core/loops.hpp"
#include "xgrad/core/transposed.hpp"

namespace xgrad {

namespace {

/// C = a b^T + beta C for matrices a [m, k] and b [n, k]: from a transposed copy of b where
/// that is faster (a small product; the copy is kept while a recurrent loop reads b at every step).
/// Whether it takes the copy depends only on the shape, so results do not depend on the loop.
template <class T>
void product_with_transposed(std::int64_t m, std::int64_t n, std::int64_t k, const Tensor& a, const Tensor& b, T beta,
                             T* c) {
  if (!gemm_prefers_transposed_copy(m, n, k))
    return gemm<T>(false, true, m, n, k, T(1), a.data<T>(), b.data<T>(), beta, c);
  const Tensor bt = detail::TransposedCopies::transposed(b);
  gemm<T>(false, false, m, n, k, T(1), a.data<T>(), bt.data<T>(), beta, c);
}

/// op(a) @ op(b) for operands of equal rank >= 2 and equal batch axes.
Tensor batched_matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const auto& sa = a.shape();
  const auto& sb = b.shape();
  const std::size_t r = sa.size();
  const std::int64_t m = ta ? sa[r - 1] : sa[r - 2], k = ta ? sa[r - 2] : sa[r - 1];
  const std::int64_t n = tb ? sb[r - 2] : sb[r - 1];
  Shape out(sa.begin(), sa.end() - 2);
  const std::int64_t batch = checked_numel(out, "matmul");
  out.push_back(m);
  out.push_back(n);
  Tensor y = empty(out, a.dtype());
  detail::dispatch_floating(a.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    if (r == 2 && !ta && tb) return product_with_transposed<T>(m, n, k, a, b, T(0), y.data<T>());
    gemm_batched<T>(ta, tb, m, n, k, T(1), a.data<T>(), checked_mul(m, k, "matmul"), b.data<T>(),
                    checked_mul(k, n, "matmul"), T(0), y.data<T>(), checked_mul(m, n, "matmul"), batch);
  });
  return record("matmul", y, {a, b}, [a, b, ta, tb](const Tensor& g) -> Grads {
    Tensor ga, gb;
    const bool need_a = a.requires_grad(), need_b = b.requires_grad();
    // A matrix weight's gradient goes through weight_gradient: the engine may sum it with the
    // same weight's gradients from other steps in one GEMM.
    const bool matrices = a.dim() == 2;
    if (!ta && !tb) {  // C = A B
      if (need_a) ga = matmul(g, b, false, true);
      if (need_b) gb = matrices ? autograd::detail::weight_gradient(1, a, g) : matmul(a, g, true, false);
    } else if (!ta && tb) {  // C = A B^T
      if (need_a) ga = matmul(g, b);
      if (need_b) gb = matrices ? autograd::detail::weight_gradient(1, g, a) : matmul(g, a, true, false);
    } else if (ta && !tb) {  // C = A^T B
      if (need_a) ga = matmul(b, g, false, true);
      if (need_b) gb = matmul(a, g);
    } else {  // C = A^T B^T
      if (need_a) ga = matmul(b, g, true, true);
      if (need_b) gb = matmul(g, a, true, true);
    }
    return {ga, gb};
  });
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  if (a.dtype() != b.dtype())
    fail("matmul: dtypes differ: {} {} x {} {}", dtype_name(a.dtype()), a.shape(), dtype_name(b.dtype()), b.shape());
  if (a.dim() == 0 || b.dim() == 0) fail("matmul: operands must have rank >= 1: {} x {}", a.shape(), b.shape());
  const auto& sa = a.shape();
  const auto& sb = b.shape();
  const bool vector_a = a.dim() == 1, vector_b = b.dim() == 1;
  const std::int64_t k_a = vector_a ? sa[0] : transpose_a ? sa[sa.size() - 2] : sa.back();
  const std::int64_t k_b = vector_b ? sb[0] : transpose_b ? sb.back() : sb[sb.size() - 2];
  if (k_a != k_b)
    fail("matmul: inner dimensions differ: {}{} x {}{}", sa, transpose_a ? "^T" : "", sb, transpose_b ? "^T" : "");
  Shape batch_a(sa.begin(), sa.end() - std::min<std::size_t>(2, sa.size()));
  Shape batch_b(sb.begin(), sb.end() - std::min<std::size_t>(2, sb.size()));
  if (!can_broadcast(batch_a, batch_b)) fail("matmul: batch dimensions cannot be broadcast: {} x {}", sa, sb);

  // A vector is a one-row (left) or one-column (right) matrix, removed again afterwards.
  if (vector_a || vector_b) {
    Tensor out = matmul(vector_a ? unsqueeze(a, 0) : a, vector_b ? unsqueeze(b, -1) : b, transpose_a && !vector_a,
                        transpose_b && !vector_b);
    if (vector_b) out = squeeze(out, -1);
    if (vector_a) out = squeeze(out, vector_b ? -1 : -2);
    return out;
  }

  // [..., M, K] @ [K, N]: fold the batch into M for one large GEMM (and a cheap weight gradient).
  if (sb.size() == 2 && sa.size() > 2 && !transpose_a) {
    Shape out(sa.begin(), sa.end() - 1);
    out.push_back(transpose_b ? sb[0] : sb[1]);
    // (the rows are counted from a's shape: dividing numel(out) by a zero-size last axis was a SIGFPE)
    const std::int64_t rows = checked_numel(Shape(sa.begin(), sa.end() - 1), "matmul");
    return reshape(matmul(reshape(a, {rows, k_a}), b, false, transpose_b), out);
  }

  // Broadcast the batch axes, then multiply matrix by matrix.
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  auto expanded = [&batch](const Tensor& t) {
    Shape s = batch;
    s.push_back(t.shape()[t.shape().size() - 2]);
    s.push_back(t.shape().back());
    return expand(t, s);
  };
  return batched_matmul(expanded(a), expanded(b), transpose_a, transpose_b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.dim() == 0 || weight.dim() != 2 || x.shape().back() != weight.shape().back())
    fail("linear: input {} does not match weight {} (in_features {})", x.shape(), weight.shape(),
         weight.dim() == 2 ? weight.shape().back() : -1);
  if (!bias.defined()) return matmul(x, weight, false, true);
  if (bias.dim() != 1 || bias.shape()[0] != weight.shape()[0])
    fail("linear: bias {} does not match weight {} (out_features {})", bias.shape(), weight.shape(),
         weight.shape()[0]);
  if (x.dtype() != weight.dtype() || bias.dtype() != weight.dtype())
    fail("linear: dtypes differ: input {}, weight {}, bias {}", dtype_name(x.dtype()), dtype_name(weight.dtype()),
         dtype_name(bias.dtype()));
  if (x.dim() != 2) {  // a vector is one row; leading axes fold into the rows
    Shape out = x.shape();
    out.back() = weight.shape()[0];
    return reshape(linear(reshape(x, {-1, x.shape().back()}), weight, bias), out);
  }
  // One GEMM into a buffer that starts as the bias in every row (beta = 1): no second pass
  const std::int64_t m = x.shape()[0], n = weight.shape()[0], k = x.shape()[1];
  Tensor y = empty({m, n}, x.dtype());
  detail::dispatch_floating(x.dtype(), "linear", [&](auto tag) {
    using T = decltype(tag);
    T* py = y.data<T>();
    const T* pb = bias.data<T>();
    const std::size_t row = static_cast<std::size_t>(n) * sizeof(T);
    detail::parallel_items(m, static_cast<std::int64_t>(row), [&](std::int64_t first, std::int64_t last) {
      detail::copy_rows(reinterpret_cast<const char*>(pb), 0, reinterpret_cast<char*>(py + first * n), row, last - first, row);
    }, detail::kParallelCopyBytes);
    product_with_transposed<T>(m, n, k, x, weight, T(1), py);
  });
  return record("linear", y, {x, weight, bias}, [x, weight](const Tensor& g) -> Grads {
    return {x.requires_grad() ? matmul(g, weight) : Tensor(),
            weight.requires_grad() ? autograd::detail::weight_gradient(1, g, x) : Tensor(), sum(g, 0)};
  });
}

}  // namespace xgrad
