#include "xgrad/core/gemm.hpp"

#include <algorithm>
#include <climits>
#include <vector>

#include <cblas.h>
#include <strings.h>  // strcasecmp
#include <libxsmm.h>

extern "C" void openblas_set_num_threads(int);  // declared by OpenBLAS's cblas.h, not netlib's
extern "C" char* openblas_get_corename(void);

#include "xgrad/core/error.hpp"
#include "xgrad/core/parallel.hpp"
#include "xgrad/core/shape.hpp"

namespace xgrad {

namespace {

// A GEMM of at least this many multiply-adds is split across the pool (below it, waking a
// worker costs more than it saves).
constexpr std::int64_t kParallelWork = std::int64_t{1} << 20;
// Each thread's share keeps at least this many rows (or columns) of C.
constexpr std::int64_t kMinShare = 32;
// A matrix-vector product reads each element of the matrix once (memory-bound): it splits from a
// smaller size, so that both cores stream their half of the weights (batch-1 decoding).
constexpr std::int64_t kParallelVectorWork = std::int64_t{1} << 16;
// While the pool's cores are far apart (core/parallel.hpp), a product splits only from 64 times
// kParallelWork (2^26 multiply-adds), not 8 times as other kernels: its operands, just written on
// the calling core, must cross to the worker. `build/bench/product_split --seconds 150`
// (2026-12-06 21:08 UTC; split over one-thread time, medians of 84-133 pairs far apart): the
// products below 2^26 lost or tied, 7552 x 32 x 70 (a convolution's im2col product) 1.90, its
// weight gradient 70 x 32 x 7552 (A^T B) 3.12, 2368 x 96 x 32 1.09, 96 x 32 x 16000 (A^T B) 2.14,
// 1280 x 50 x 256 1.42, 1280 x 128 x 64 1.03, 256^3 1.15; above it 1600 x 512 x 128 won (0.68)
// and 512 x 128 x 1280 (A^T B) tied (1.07). Near, all of these but the weight gradient won
// (0.54-0.90). An earlier scratch version of these pairs found the same order, smaller losses
// (1.00-1.72; 0.83-0.86 for 7552 x 70 x 32 and 1280 x 128 x 64): the host's speed drifts.
constexpr std::int64_t kFarProductFactor = 64;

/// The multiply-adds from which a product's ranges go to the pool's workers (see kFarProductFactor).
std::int64_t product_threshold() {
  const std::int64_t threshold = detail::parallel_threshold(kParallelWork);  // probes the cores when due
  return detail::cores_far_apart() ? kParallelWork * kFarProductFactor : threshold;
}

/// BLAS runs single-threaded: the pool is the only one (see core/parallel.hpp).
void blas_single_threaded() {
  static const bool once = [] {
    openblas_set_num_threads(1);
    return true;
  }();
  (void)once;
}

/// BLAS (CBLAS's `int` sizes, OpenBLAS without INTERFACE64) takes sizes and leading dimensions
/// up to INT_MAX: a larger one would be truncated to a wrong (even negative) size, so it is an
/// error here. The leading dimensions are m, n or k, so checking those three covers them.
void check_blas_sizes(std::int64_t m, std::int64_t n, std::int64_t k) {
  if (m < 0 || n < 0 || k < 0 || m > INT_MAX || n > INT_MAX || k > INT_MAX)
    fail("gemm: matrix sizes m = {}, n = {}, k = {} are outside what BLAS takes (0 to {})", m, n, k, INT_MAX);
}

/// parallel_for(n, grain, f)'s ranges, run by the pool's workers too only when `use_workers`.
template <class F>
void split_ranges(std::int64_t n, std::int64_t grain, F&& f, bool use_workers) {
  if (n < 2 * grain) f(std::int64_t{0}, n);
  else detail::parallel_run(n, grain, f, use_workers);
}

/// The multiply-adds of `count` m x n x k products, saturating (only compared with kParallelWork).
double work(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t count = 1) {
  return static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) * static_cast<double>(count);
}

/// One BLAS call on row-major matrices with leading dimensions.
void blas(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, float alpha, const float* a,
          std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}
void blas(bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, const double* a,
          std::int64_t lda, const double* b, std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(k), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta,
              c, static_cast<int>(ldc));
}

void blas_gemv(bool trans, std::int64_t rows, std::int64_t cols, float alpha, const float* a, std::int64_t lda,
               const float* x, float beta, float* y) {
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, static_cast<int>(rows), static_cast<int>(cols), alpha,
              a, static_cast<int>(lda), x, 1, beta, y, 1);
}
void blas_gemv(bool trans, std::int64_t rows, std::int64_t cols, double alpha, const double* a, std::int64_t lda,
               const double* x, double beta, double* y) {
  cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, static_cast<int>(rows), static_cast<int>(cols), alpha,
              a, static_cast<int>(lda), x, 1, beta, y, 1);
}

/// y[len] = alpha * M x + beta * y, where M is the matrix operand of a product with one row or
/// one column, stored row-major [rows, cols] with leading dimension ld, and `trans` says whether
/// y runs along its columns (M^T x) rather than its rows (M x). OpenBLAS's GEMM packs the whole
/// matrix for a single row; GEMV streams it once. The pool splits y: each element is one dot
/// product whatever the split, so results do not depend on the thread count.
template <class T>
void gemv(bool trans, std::int64_t rows, std::int64_t cols, std::int64_t ld, T alpha, const T* m, const T* x, T beta,
          T* y) {
  const std::int64_t len = trans ? cols : rows;
  if (beta == T(0)) std::fill(y, y + len, T(0));  // C may hold anything (NaN) when beta is 0
  const std::int64_t grain =
      work(rows, cols, 1) >= detail::parallel_threshold(kParallelVectorWork) ? std::max(kMinShare, len / num_threads()) : len;
  parallel_for(len, grain, [&](std::int64_t begin, std::int64_t end) {
    if (trans)  // columns [begin, end) of M
      blas_gemv(true, rows, end - begin, alpha, m + begin, ld, x, beta, y + begin);
    else  // rows [begin, end) of M
      blas_gemv(false, end - begin, cols, alpha, m + begin * ld, ld, x, beta, y + begin);
  });
}

// LIBXSMM's JIT kernels beat OpenBLAS on small products, where OpenBLAS spends most of a call
// packing its operands (a recurrent step at B = 32, H = 32: 1.7x; at B = 8, H = 64: up to 3x),
// and lose on larger ones: they take products of up to 64^3 multiply-adds (LIBXSMM's own
// default bound), with alpha 1 and beta 0 or 1. LIBXSMM 1.17 compiles no kernel for a transposed
// left operand in its column-major terms, which is a row-major transpose_b (x W^T): gemm leaves
// those to OpenBLAS, and linear/matmul reach LIBXSMM with a transposed copy of W instead
// (gemm_prefers_transposed_copy).
constexpr std::int64_t kSmallWork = 64 * 64 * 64;
// A weight gradient of one recurrent step, dW = dG^T h, sums over only the batch (k <= 32): there
// LIBXSMM wins up to 2^22 multiply-adds (measured: 512 x 128 x 32 1.5x, 640 x 128 x 32 1.6x,
// 1024 x 128 x 32 1.1x; 1024 x 256 x 32 even).
constexpr std::int64_t kSmallWeightGradientWork = std::int64_t{1} << 22;
constexpr std::int64_t kWeightGradientRows = 32;
// A product too large for one kernel runs LIBXSMM in blocks of 64 rows or columns of C, or of
// its sum; a product that goes to LIBXSMM and is split across the pool runs in tiles of the same
// 64 along the split side, one kernel (or blocked call) each (see gemm).
constexpr std::int64_t kBlock = 64;
// A taller product whose op(B) is a small panel (n x k up to 8192 elements, 32 KiB of floats,
// which stays in cache) runs LIBXSMM a block of rows of C at a time: OpenBLAS packs for such
// tall-skinny shapes what a kernel keeps in cache anyway. Measured one core, ms per call:
// 7552 x 32 x 70 (a convolution's im2col) 0.71 -> 0.38, 2368 x 160 x 32 0.41 -> 0.27,
// 16000 x 96 x 32 (a GRU's input projection) 1.96 -> 1.06, 400 x 256 x 32 0.12 -> 0.08;
// 1280 x 512 x 128 (a 256 KiB panel) would lose, 2.0 -> 3.0.
constexpr std::int64_t kTallPanel = 8192;
// A wide product of at most a block of rows, as a recurrent step's h W_hh^T (from a transposed
// copy) and dh = dG W_hh, runs LIBXSMM a block of columns of C at a time, each over the whole
// sum: OpenBLAS packs all of B for a few rows of A. Measured one core (AMD EPYC, OpenBLAS's
// Haswell kernels, LIBXSMM's AVX-512 ones), us per call: 32 x 512 x 128 54 -> 22,
// 32 x 128 x 512 57 -> 24, 32 x 1024 x 256 221 -> 115, 8 x 512 x 128 21 -> 5,
// 64 x 4096 x 256 1524 -> 763, 32 x 512 x 1024 419 -> 259 (best of 7, a build running beside);
// it won at 119 of the 120 shapes tried with 8 <= m <= 64, n <= 4096, k <= 1024, by 1.4x or more
// at 116 (the one loss: 32 x 4096 x 128, 0.9x). A block of B (k x 64) stays in L2 up to
// k = 1024. In the benchmark (2 threads) dglstm ran 15 % faster and bilstm_tagger about 10 %.
constexpr std::int64_t kWideDepth = 1024;
// x W^T with at least this many rows takes a transposed copy of W to reach LIBXSMM (measured per
// call without a kept copy at 8 x 256 x 64: copy + kernel about even with OpenBLAS; 2 rows: 2x slower).
constexpr std::int64_t kTransposedCopyRows = 8;

void libxsmm_ready() {
  static const bool initialised = [] {
    libxsmm_init();
    return true;
  }();
  (void)initialised;
}

// Where LIBXSMM compiles AVX-512 kernels and OpenBLAS runs its AVX2 ones (Debian's OpenBLAS 0.3.21
// on an AMD EPYC takes the Haswell kernels), any larger product with k <= kWideDepth runs LIBXSMM
// in 64 x 64 tiles of C, each over the whole sum. Measured one core, us per call, OpenBLAS ->
// tiles (best of 7, 2026-12-05): 1280 x 512 x 128 1672 -> 880, 1600 x 640 x 128 2787 -> 1338,
// 1120 x 1024 x 256 5827 -> 3059, 1120 x 256 x 1024 5835 -> 3593, 4096 x 256 x 64 1530 -> 688,
// 256 x 256 x 256 355 -> 168 (2048 x 1024 x 1024: 43424 -> 35235). On an AVX2-only machine both
// run AVX2 and OpenBLAS won such shapes (1280 x 512 x 128 as a tall product: 2.0 -> 3.0 ms).
bool tiles_large_products() {
  static const bool tiles = [] {
    libxsmm_ready();
    const char* core = openblas_get_corename();
    const bool avx2_blas = core && (strcasecmp(core, "Haswell") == 0 || strcasecmp(core, "Zen") == 0);
    return avx2_blas && libxsmm_get_target_archid() >= LIBXSMM_X86_AVX512;
  }();
  return tiles;
}

libxsmm_smmfunction small_kernel(int m, int n, int k, int lda, int ldb, int ldc, const float* beta, int flags) {
  const float alpha = 1;
  return libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, beta, &flags, nullptr);
}
libxsmm_dmmfunction small_kernel(int m, int n, int k, int lda, int ldb, int ldc, const double* beta, int flags) {
  const double alpha = 1;
  return libxsmm_dmmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, beta, &flags, nullptr);
}

/// Whether a product goes to LIBXSMM (see kSmallWork), decided on the whole product before the
/// pool splits it.
template <class T>
bool small_product(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                   T beta) {
  const bool small = work(m, n, k) <= kSmallWork ||
                     (transpose_a && k <= kWeightGradientRows && work(m, n, k) <= kSmallWeightGradientWork);
  return small && !transpose_b && alpha == T(1) && (beta == T(0) || beta == T(1));
}

/// Whether a product too large for one LIBXSMM kernel goes to LIBXSMM in blocks of rows (see
/// kTallPanel). LIBXSMM has no kernel for a transposed B (see kSmallWork).
template <class T>
bool tall_product(bool transpose_b, std::int64_t n, std::int64_t k, T alpha, T beta) {
  const bool panel = work(1, n, k) <= kTallPanel;
  return panel && !transpose_b && alpha == T(1) && (beta == T(0) || beta == T(1));
}

/// Whether a product too large for one LIBXSMM kernel goes to LIBXSMM in blocks of columns (see
/// kWideDepth).
template <class T>
bool wide_product(bool transpose_b, std::int64_t m, std::int64_t k, T alpha, T beta) {
  return m <= kBlock && k <= kWideDepth && !transpose_b && alpha == T(1) && (beta == T(0) || beta == T(1));
}

/// Whether a product too large for the paths above goes to LIBXSMM in 64 x 64 tiles of C (see
/// tiles_large_products). Not for transpose_a: weight gradients were not measured that way.
template <class T>
bool tiled_product(bool transpose_a, bool transpose_b, std::int64_t k, T alpha, T beta) {
  return !transpose_a && !transpose_b && k <= kWideDepth && alpha == T(1) && (beta == T(0) || beta == T(1)) &&
         tiles_large_products();
}

/// Whether a transposed-A product too large for one kernel goes to LIBXSMM in blocks of its sum.
/// A weight gradient over many rows, dW = dY^T X with C (m x n) at most a tall panel, runs
/// LIBXSMM a block of rows of the sum at a time, each block accumulating onto C (beta 1): a
/// sequential sum over the rows, whatever the threads. Measured one core, ms per call:
/// 96 x 32 x 16000 (gru_imdb's dW_ih) 2.22 -> 1.37, 96 x 32 x 1024 0.107 -> 0.072,
/// 256 x 32 x 400 0.102 -> 0.080, 32 x 160 x 2368 0.39 -> 0.35; 32 x 70 x 7552 loses,
/// 0.60 -> 0.74 (70 columns fill LIBXSMM's 8-wide vectors unevenly), kept for one simple rule.
template <class T>
bool deep_product(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, T alpha, T beta) {
  return transpose_a && !transpose_b && work(m, n, 1) <= kTallPanel && alpha == T(1) && (beta == T(0) || beta == T(1));
}

/// C = op(A) op(B) + beta C (alpha 1, C with leading dimension ldc) through a LIBXSMM kernel;
/// false, with nothing done, when LIBXSMM has no kernel (no JIT for this CPU). Row-major
/// C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the operands swap, and a row-major
/// transpose_a is the column-major transpose of the second.
template <class T>
bool small_gemm(bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda,
                const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  libxsmm_ready();
  const auto kernel = small_kernel(static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), static_cast<int>(ldb),
                                   static_cast<int>(lda), static_cast<int>(ldc), &beta,
                                   transpose_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE);
  if (!kernel) return false;
  kernel(b, a, c);
  return true;
}

/// The same for a deep product A^T B (A [k, m], B [k, n]), kBlock rows of A and B per
/// kernel call, each adding onto C after the first; false, with nothing done, when LIBXSMM has no
/// kernel.
template <class T>
bool deep_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda, const T* b,
               std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  libxsmm_ready();
  const T one(1);
  const auto kernel_for = [&](std::int64_t depth, const T* kernel_beta) {
    return small_kernel(static_cast<int>(n), static_cast<int>(m), static_cast<int>(depth), static_cast<int>(ldb),
                        static_cast<int>(lda), static_cast<int>(ldc), kernel_beta, LIBXSMM_GEMM_FLAG_TRANS_B);
  };
  const std::int64_t first = std::min(k, kBlock), tail = (k - first) % kBlock;
  const auto start = kernel_for(first, &beta);
  const auto block = k - first >= kBlock ? kernel_for(kBlock, &one) : start;
  const auto last = tail > 0 ? kernel_for(tail, &one) : start;
  if (!start || !block || !last) return false;
  start(b, a, c);
  std::int64_t p = first;
  for (; p + kBlock <= k; p += kBlock) block(b + p * ldb, a + p * lda, c);
  if (p < k) last(b + p * ldb, a + p * lda, c);
  return true;
}

/// The same for a tall or a wide product, in blocks of kBlock rows of C (and of op(A)) or
/// kBlock columns of C (and of B), one kernel call each; false, with nothing done, when LIBXSMM
/// has no kernel.
template <class T>
bool blocked_gemm(bool by_columns, bool transpose_a, std::int64_t m, std::int64_t n, std::int64_t k, const T* a,
                  std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  libxsmm_ready();
  const int flags = transpose_a ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const std::int64_t side = by_columns ? n : m;
  const auto kernel_for = [&](std::int64_t size) {
    return small_kernel(static_cast<int>(by_columns ? size : n), static_cast<int>(by_columns ? m : size),
                        static_cast<int>(k), static_cast<int>(ldb), static_cast<int>(lda), static_cast<int>(ldc),
                        &beta, flags);
  };
  const std::int64_t tail = side % kBlock;
  const auto block = kernel_for(std::min(side, kBlock));
  const auto last = tail > 0 && side > kBlock ? kernel_for(tail) : block;
  if (!block || !last) return false;
  // the next rows of op(A) and C (down a row-major A, or across a transposed one), or the next
  // columns of B and C
  const std::int64_t a_step = by_columns ? 0 : transpose_a ? 1 : lda, b_step = by_columns ? 1 : 0;
  const std::int64_t c_step = by_columns ? 1 : ldc;
  std::int64_t i = 0;
  for (; i + kBlock <= side; i += kBlock) block(b + i * b_step, a + i * a_step, c + i * c_step);
  if (i < side) last(b + i * b_step, a + i * a_step, c + i * c_step);
  return true;
}

/// Whether a batched A B^T runs as A B from a transposed copy of each B: where LIBXSMM takes
/// the untransposed product (see gemm_prefers_transposed_copy) with alpha 1 and beta 0 or 1.
template <class T>
bool transposed_batch_copy(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                           T beta) {
  return transpose_b && !transpose_a && alpha == T(1) && (beta == T(0) || beta == T(1)) &&
         gemm_prefers_transposed_copy(m, n, k);
}

/// The same in tiles: blocks of kBlock rows of C, each a blocked_gemm over columns; a block that
/// LIBXSMM has no kernel for goes to BLAS.
template <class T>
void tiled_gemm(std::int64_t m, std::int64_t n, std::int64_t k, const T* a, std::int64_t lda, const T* b,
                std::int64_t ldb, T beta, T* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; i += kBlock) {
    const std::int64_t rows = std::min(kBlock, m - i);
    if (!blocked_gemm(true, false, rows, n, k, a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc))
      blas(false, false, rows, n, k, T(1), a + i * lda, lda, b, ldb, beta, c + i * ldc, ldc);
  }
}

}  // namespace

template <class T>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha, const T* a,
          const T* b, T beta, T* c) {
  check_blas_sizes(m, n, k);
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: BLAS rejects the zero leading dimension
    for (std::int64_t i = 0; i < m * n; ++i) c[i] = beta == T(0) ? T(0) : beta * c[i];
    return;
  }
  blas_single_threaded();
  const std::int64_t lda = transpose_a ? m : k, ldb = transpose_b ? k : n;
  // A single row of C is op(B)^T a, a single column op(A) b: the vector is contiguous either way.
  if (m == 1) return gemv(!transpose_b, transpose_b ? n : k, transpose_b ? k : n, ldb, alpha, b, a, beta, c);
  if (n == 1) return gemv(transpose_a, transpose_a ? k : m, transpose_a ? m : k, lda, alpha, a, b, beta, c);
  const bool small = small_product(transpose_a, transpose_b, m, n, k, alpha, beta);
  const bool split_rows = m >= n;  // split the longer side of C
  const bool tall = !small && split_rows && tall_product(transpose_b, n, k, alpha, beta);
  const bool deep = !small && !tall && deep_product(transpose_a, transpose_b, m, n, alpha, beta);
  const bool wide = !small && !split_rows && !deep && wide_product(transpose_b, m, k, alpha, beta);
  const bool tiled = !(small || tall || deep || wide) && tiled_product(transpose_a, transpose_b, k, alpha, beta);
  // one part of C, [rows, cols] at c_part, from the matching parts of A and B
  auto part = [&](std::int64_t rows, std::int64_t cols, const T* a_part, const T* b_part, T* c_part) {
    if (small && small_gemm(transpose_a, rows, cols, k, a_part, lda, b_part, ldb, beta, c_part, n)) return;
    if ((tall || wide) && blocked_gemm(wide, transpose_a, rows, cols, k, a_part, lda, b_part, ldb, beta, c_part, n))
      return;
    if (deep && deep_gemm(rows, cols, k, a_part, lda, b_part, ldb, beta, c_part, n)) return;
    if (tiled) return tiled_gemm(rows, cols, k, a_part, lda, b_part, ldb, beta, c_part, n);
    blas(transpose_a, transpose_b, rows, cols, k, alpha, a_part, lda, b_part, ldb, beta, c_part, n);
  };
  // rows [begin, end) of op(A) and of C, or columns of op(B) and of C
  auto span = [&](std::int64_t begin, std::int64_t end) {
    if (split_rows) part(end - begin, n, a + begin * (transpose_a ? 1 : lda), b, c + begin * n);
    else part(m, end - begin, a, b + begin * (transpose_b ? ldb : 1), c + begin);
  };
  const std::int64_t side = split_rows ? m : n;
  if (work(m, n, k) < kParallelWork) return span(0, side);
  // From here the product runs in ranges fixed by its shape; the workers take some only while
  // they are worth it (see product_threshold), so its bits do not depend on that.
  const bool use_workers = work(m, n, k) >= product_threshold();
  if (!(small || tall || deep || wide || tiled)) {
    split_ranges(side, std::max(kMinShare, side / num_threads()), span, use_workers);
    return;
  }
  // A LIBXSMM kernel's summation order can depend on its sizes (on AVX-512, a 2-row tail kernel
  // sums k = 1000 otherwise than a 4-row one), so a split product runs in tiles of kBlock
  // along the split side, one kernel (or blocked call) each, whatever the thread count: an
  // element of C gets the same bits on any number of threads.
  const std::int64_t tiles = ceil_div(side, kBlock);
  split_ranges(tiles, std::max<std::int64_t>(1, tiles / num_threads()), [&](std::int64_t first, std::int64_t last) {
    for (std::int64_t t = first; t < last; ++t) span(t * kBlock, std::min(side, (t + 1) * kBlock));
  }, use_workers);
}

template <class T>
void gemm_batched(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
                  const T* a, std::int64_t stride_a, const T* b, std::int64_t stride_b, T beta, T* c,
                  std::int64_t stride_c, std::int64_t count) {
  check_blas_sizes(m, n, k);  // here, before the pool: not once per thread
  if (count < 0) fail("gemm: negative batch count {}", count);
  // Whole matrices to each thread; a single large one splits inside gemm instead.
  const std::int64_t grain = count > 1 && work(m, n, k, count) >= kParallelWork ? 1 : count;
  const bool use_workers = work(m, n, k, count) >= product_threshold();
  // A B^T that LIBXSMM would take as A B (attention's Q K^T and dA = dY V^T per head) runs from
  // a transposed copy of each B: LIBXSMM has no kernel for a transposed B (see kSmallWork), and
  // the copy costs little next to the product (mha, three alternating quick runs of xgrad_bench,
  // items/s: 628, 598, 618 -> 638, 659, 677).
  const bool copy_b = transposed_batch_copy(transpose_a, transpose_b, m, n, k, alpha, beta);
  split_ranges(count, grain, [&](std::int64_t begin, std::int64_t end) {
    std::vector<T> bt(copy_b ? static_cast<std::size_t>(n * k) : 0);
    for (std::int64_t i = begin; i < end; ++i) {
      if (copy_b && (i == begin || stride_b != 0)) transpose_copy(n, k, b + i * stride_b, bt.data());  // one B: once
      gemm(transpose_a, transpose_b && !copy_b, m, n, k, alpha, a + i * stride_a, copy_b ? bt.data() : b + i * stride_b,
           beta, c + i * stride_c);
    }
  }, use_workers);
}

bool gemm_prefers_transposed_copy(std::int64_t m, std::int64_t n, std::int64_t k) {
  // Below 8 rows the copy costs about what it saves when it is not kept (a loop without a scope
  // of TransposedCopies); n of 1 is a GEMV, which reads B^T as it is stored.
  return m >= kTransposedCopyRows && n > 1 && k > 0 &&
         (small_product(false, false, m, n, k, 1.0, 0.0) || (m >= n && tall_product(false, n, k, 1.0, 0.0)) ||
          (m < n && wide_product(false, m, k, 1.0, 0.0)) || tiled_product(false, false, k, 1.0, 0.0));
}

template <class T>
void transpose_copy(std::int64_t rows, std::int64_t cols, const T* in, T* out) {
  if (rows == 0 || cols == 0) return;
  libxsmm_ready();
  // LIBXSMM speaks column-major: a row-major [rows, cols] is a column-major cols x rows matrix
  libxsmm_otrans(out, in, sizeof(T), static_cast<libxsmm_blasint>(cols), static_cast<libxsmm_blasint>(rows),
                 static_cast<libxsmm_blasint>(cols), static_cast<libxsmm_blasint>(rows));
}

template void transpose_copy<float>(std::int64_t, std::int64_t, const float*, float*);
template void transpose_copy<double>(std::int64_t, std::int64_t, const double*, double*);
template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*, const float*,
                          float, float*);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                           const double*, double, double*);
template void gemm_batched<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                                  std::int64_t, const float*, std::int64_t, float, float*, std::int64_t, std::int64_t);
template void gemm_batched<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double, const double*,
                                   std::int64_t, const double*, std::int64_t, double, double*, std::int64_t,
                                   std::int64_t);

}  // namespace xgrad
