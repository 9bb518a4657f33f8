#include "core/gemm.hpp"

#include <algorithm>
#include <array>

#include <xtensor-blas/xblas.hpp>
#include <xtensor/xadapt.hpp>

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
}

namespace xgrad {

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
  if (m == 0 || n == 0) return;
  auto c_view = xt::adapt(c, static_cast<std::size_t>(m * n), xt::no_ownership(),
                          std::array<std::size_t, 2>{std::size_t(m), std::size_t(n)});
  if (k == 0) {  // an empty sum: BLAS rejects the zero leading dimension
    if (beta == T(0)) std::fill(c, c + m * n, T(0));
    else c_view *= beta;
    return;
  }
  auto matrix = [](const T* p, std::int64_t rows, std::int64_t cols) {
    return xt::adapt(p, static_cast<std::size_t>(rows * cols), xt::no_ownership(),
                     std::array<std::size_t, 2>{std::size_t(rows), std::size_t(cols)});
  };
  auto a_view = transpose_a ? matrix(a, k, m) : matrix(a, m, k);
  auto b_view = transpose_b ? matrix(b, n, k) : matrix(b, k, n);
  xt::blas::gemm(a_view, b_view, c_view, transpose_a, transpose_b, alpha, beta);
}

template <class T>
void gemm_batched(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                  const T* a, std::int64_t stride_a, const T* b, std::int64_t stride_b, T beta, T* c,
                  std::int64_t stride_c, std::int64_t count) {
  for (std::int64_t i = 0; i < count; ++i)
    gemm(transpose_a, transpose_b, m, n, k, alpha, a + i * stride_a, b + i * stride_b, beta, c + i * stride_c);
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, const float*,
                          float, float*);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                           const double*, double, double*);
template void gemm_batched<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                                  std::int64_t, const float*, std::int64_t, float, float*, std::int64_t, std::int64_t);
template void gemm_batched<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                                   std::int64_t, const double*, std::int64_t, double, double*, std::int64_t,
                                   std::int64_t);

void set_num_threads(int threads) { openblas_set_num_threads(std::max(1, threads)); }
int num_threads() { return openblas_get_num_threads(); }

}  // namespace xgrad
