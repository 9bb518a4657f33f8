#pragma once
// The one place that calls BLAS (CBLAS, single-threaded) and LIBXSMM (small products, larger
// ones in blocks where one operand is a small panel or C has a few rows, and, where LIBXSMM's
// kernels are AVX-512 and OpenBLAS's AVX2, any with k <= 1024 in 64 x 64 tiles). Everything that
// multiplies matrices goes through gemm / gemm_batched; large ones split across xgrad's pool.
#include <cstdint>

#include "xgrad/core/parallel.hpp"  // set_num_threads: GEMMs split across xgrad's pool

namespace xgrad {

/// C = alpha * op(A) op(B) + beta * C for row-major contiguous matrices, op(X) = X or X^T.
/// op(A) is [m, k], op(B) is [k, n], C is [m, n]. Defined for float and double.
template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c);

/// `count` independent gemms; consecutive matrices start stride_a, stride_b, stride_c elements
/// apart (a stride of 0 reuses one matrix for every batch entry).
template <class T>
void gemm_batched(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                  const T* a, std::int64_t stride_a, const T* b, std::int64_t stride_b, T beta, T* c,
                  std::int64_t stride_c, std::int64_t count);

/// Whether the product op(A) B^T (B stored [n, k]; alpha 1, beta 0 or 1) is faster as
/// op(A) (B^T) from a contiguous copy of B^T: where that product goes to LIBXSMM (small, tall
/// with at most 8192 elements of B, wide with at most 64 rows and k <= 1024, or tiled), which
/// has no kernel for a transposed B, from 8 rows of A (x W^T at a recurrent step: 2x per call with the
/// copy made once, measured). See detail::TransposedCopies, which keeps such copies.
bool gemm_prefers_transposed_copy(std::int64_t m, std::int64_t n, std::int64_t k);

/// out [cols, rows] = in^T for a row-major contiguous [rows, cols] matrix (float and double).
template <class T>
void transpose_copy(std::int64_t rows, std::int64_t cols, const T* in, T* out);

}  // namespace xgrad
