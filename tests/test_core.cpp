// core/: tensor creation, dtypes, printing, broadcasting, RNG, GEMM, errors.
#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <limits>
#include <string>
#include <thread>

#include "testing.hpp"
#include "xgrad/core/gemm.hpp"
#include "xgrad/core/transposed.hpp"

using namespace xgrad;
using namespace xgrad::testing;

TEST_CASE("creation: zeros, ones, full, scalar, arange") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.dtype() == f32);
  CHECK(z.numel() == 6);
  CHECK(z.to_vector<double>() == std::vector<double>(6, 0.0));
  CHECK(ones({4}, f64).to_vector<double>() == std::vector<double>(4, 1.0));
  CHECK(full({2}, 2.5, f64).to_vector<double>() == std::vector<double>{2.5, 2.5});
  Tensor s = scalar(3.0, i64);
  CHECK(s.dim() == 0);
  CHECK(s.item<std::int64_t>() == 3);
  CHECK(arange(5, i64).to_vector<std::int64_t>() == std::vector<std::int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(1, 2, 0.25, f64).to_vector<double>() == std::vector<double>{1, 1.25, 1.5, 1.75});
  CHECK(arange(3, 3).numel() == 0);
  CHECK(arange(3, 1, -1).to_vector<float>() == std::vector<float>{3, 2});
  CHECK_THROWS_AS(arange(3, 1), Error);  // PyTorch: the step points away from stop
  CHECK(zeros({0, 3}).numel() == 0);
  CHECK(zeros_like(ones({2, 2}, f64)).dtype() == f64);
  CHECK(full_like(ones({2}), 7).to_vector<float>() == std::vector<float>{7, 7});
}

TEST_CASE("creation: nested initializer lists and xtensor arrays") {
  Tensor t = tensor({{1, 2, 3}, {4, 5, 6}});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.dtype() == f32);
  CHECK(t.to_vector<float>() == std::vector<float>{1, 2, 3, 4, 5, 6});
  CHECK(tensor({7, 8}, i64).to_vector<std::int64_t>() == std::vector<std::int64_t>{7, 8});
  CHECK(tensor(2.5, f64).dim() == 0);

  xt::xarray<double> a = {{1.5, -2.0}, {0.0, 4.0}};
  Tensor d = from_xarray(a);
  CHECK(d.dtype() == f64);
  CHECK(d.to_xarray<double>() == a);
  CHECK(from_xarray(xt::xarray<std::int64_t>{3, 4}).dtype() == i64);
  CHECK(from_xarray(xt::xarray<float>{1.f}).dtype() == f32);
}

TEST_CASE("dtype conversion, item, clone, copy_") {
  Tensor x = tensor({1.75, -2.5, 3.0}, f64);
  CHECK(x.to(f32).dtype() == f32);
  CHECK(x.to(i64).to_vector<std::int64_t>() == std::vector<std::int64_t>{1, -2, 3});  // truncation, like C++
  CHECK(x.to(f32).to(f64).to_vector<double>() == x.to_vector<double>());
  CHECK(tensor({{4.5}}).item() == 4.5);
  CHECK(matches(error_of([&] { x.item(); }), R"(item: .*one element.*\[3\])"));

  Tensor c = x.clone();
  c.copy_(zeros({3}, f64));
  CHECK(x.to_vector<double>() == std::vector<double>{1.75, -2.5, 3.0});  // the clone owns its data
  CHECK(c.to_vector<double>() == std::vector<double>{0, 0, 0});
  c.copy_(tensor({1, 2, 3}, i64));  // converts the source dtype
  CHECK(c.to_vector<double>() == std::vector<double>{1, 2, 3});
  CHECK(matches(error_of([&] { c.copy_(zeros({2}, f64)); }), R"(copy_: shapes differ: \[2\] into \[3\])"));
}

TEST_CASE("detach shares storage; data<T> checks the dtype") {
  Tensor x = ones({2, 2}, f64).requires_grad_();
  Tensor d = x.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.data<double>() == x.data<double>());
  CHECK(matches(error_of([&] { x.data<float>(); }), R"(data<f32>\(\) on a f64 tensor)"));
  CHECK(matches(error_of([] { zeros({2}, i64).requires_grad_(); }), R"(requires_grad_: only floating tensors)"));
  CHECK(matches(error_of([] { empty({2, -1}); }), R"(negative dimension in shape \[2, -1\])"));
  CHECK(matches(error_of([] { Tensor().shape(); }), R"(undefined tensor)"));
}

TEST_CASE("fmt printing shows values, shape, dtype and grad_fn") {
  std::string s = fmt::format("{}", tensor({{1, 2}, {3, 4}}));
  CHECK(s == "tensor([[1.0000, 2.0000],\n        [3.0000, 4.0000]], shape=[2, 2], dtype=f32)");
  CHECK(fmt::format("{}", tensor({5, -6}, i64)) == "tensor([ 5, -6], shape=[2], dtype=i64)");
  CHECK(fmt::format("{}", scalar(0.5, f64)) == "tensor(0.5000, shape=[], dtype=f64)");
  CHECK(fmt::format("{}", zeros({0, 3})) == "tensor([], shape=[0, 3], dtype=f32)");
  Tensor x = ones({2}).requires_grad_();
  CHECK(matches(fmt::format("{}", x), "requires_grad=true"));
  CHECK(matches(fmt::format("{}", tanh(x)), R"(grad_fn=<tanh>)"));
  std::string big = fmt::format("{}", arange(2000));
  CHECK(matches(big, R"(\[   0\.0000,    1\.0000,    2\.0000, \.\.\., 1997\.0000, 1998\.0000, 1999\.0000\])"));
  CHECK(matches(fmt::format("{}", tensor({1e-6, 1.0}, f64)), R"(1\.0000e-06)"));
}

TEST_CASE("memory_stats counts the bytes of live tensor buffers, over threads, and their peak") {
  const MemoryStats before = memory_stats();
  {
    Tensor a = zeros({1024, 256});  // 1 MiB of float32: exactly a size class
    CHECK(memory_stats().in_use == before.in_use + (std::size_t{1} << 20));
    reset_peak_memory_stats();
    CHECK(memory_stats().peak == memory_stats().in_use);
    { Tensor b = ones({1000}); }  // 4000 bytes, rounded up to the 4096 class
    CHECK(memory_stats().peak == before.in_use + (std::size_t{1} << 20) + 4096);
    Tensor shared = a.detach();  // a view: no new buffer
    CHECK(memory_stats().in_use == before.in_use + (std::size_t{1} << 20));
    std::thread([&] { a = Tensor(); shared = Tensor(); }).join();  // freed on another thread
  }
  CHECK(memory_stats().in_use == before.in_use);
}

TEST_CASE("broadcast_shapes follows NumPy and names both shapes on failure") {
  CHECK(broadcast_shapes({3, 1, 4}, {5, 4}, "add") == Shape{3, 5, 4});
  CHECK(broadcast_shapes({}, {2, 3}, "add") == Shape{2, 3});
  CHECK(broadcast_shapes({1}, {0}, "add") == Shape{0});
  CHECK(matches(error_of([] { broadcast_shapes({2, 3}, {4, 3}, "mul"); }),
                R"(^mul: shapes \[2, 3\] and \[4, 3\] cannot be broadcast$)"));
  CHECK(matches(error_of([] { normalize_axis(2, 2, "sum", {2, 3}); }), R"(sum: axis 2 is out of range for shape \[2, 3\])"));
  CHECK(normalize_axis(-1, 3, "sum", {1, 2, 3}) == 2);
}

TEST_CASE("RNG: one seed, the same numbers") {
  manual_seed(42);
  auto a = randn({100}).to_vector<float>();
  manual_seed(42);
  auto b = randn({100}).to_vector<float>();
  CHECK(a == b);
  manual_seed(43);
  CHECK(randn({100}).to_vector<float>() != a);

  Generator g(5);
  Tensor u = uniform({10000}, -2, 3, f64, &g);
  auto v = u.to_vector<double>();
  CHECK(*std::min_element(v.begin(), v.end()) >= -2);
  CHECK(*std::max_element(v.begin(), v.end()) < 3);
  CHECK(mean(u).item() == doctest::Approx(0.5).epsilon(0.05));
  Tensor n = randn({20000}, f64, &g);
  CHECK(mean(n).item() == doctest::Approx(0).epsilon(0.03).scale(1));
  CHECK(mean(n * n).item() == doctest::Approx(1).epsilon(0.05));
  auto r = randint(3, 7, {1000}, &g).to_vector<std::int64_t>();
  CHECK(*std::min_element(r.begin(), r.end()) == 3);
  CHECK(*std::max_element(r.begin(), r.end()) == 6);
}

namespace {
// Naive reference: C = op(A) op(B), row-major.
template <class T>
std::vector<T> naive_gemm(bool ta, bool tb, int m, int n, int k, const std::vector<T>& a, const std::vector<T>& b) {
  std::vector<T> c(m * n, 0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p) c[i * n + j] += (ta ? a[p * m + i] : a[i * k + p]) * (tb ? b[j * k + p] : b[p * n + j]);
  return c;
}
}  // namespace

TEST_CASE_TEMPLATE("gemm: every transpose combination, alpha and beta", T, float, double) {
  const int m = 3, n = 4, k = 5;
  Generator g(3);
  auto a = uniform({m * k}, -1, 1, f64, &g).to_vector<T>();
  auto b = uniform({k * n}, -1, 1, f64, &g).to_vector<T>();
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      auto want = naive_gemm<T>(ta, tb, m, n, k, a, b);
      std::vector<T> c(m * n, T(1));
      gemm<T>(ta, tb, m, n, k, T(2), a.data(), b.data(), T(0.5), c.data());
      for (int i = 0; i < m * n; ++i) CHECK(c[i] == doctest::Approx(2 * want[i] + 0.5).epsilon(1e-5));
    }
  // k = 0 is an empty sum; beta scales C
  std::vector<T> c(m * n, T(3));
  gemm<T>(false, false, m, n, 0, T(1), a.data(), b.data(), T(0), c.data());
  CHECK(c == std::vector<T>(m * n, T(0)));
}

// core/gemm.cpp picks one of four paths by shape: a matrix-vector product for one row or one
// column of C (split across the pool from 2^16 multiply-adds), a LIBXSMM kernel for small
// products (up to 64^3 multiply-adds, or 2^22 for a weight gradient A^T B over at most 32 rows;
// alpha 1, beta 0 or 1, no transposed right operand), LIBXSMM in blocks of 64 rows for taller
// ones whose op(B) has at most 8192 elements, LIBXSMM in blocks of 64 rows of the sum for A^T B
// with at most 8192 elements of C, LIBXSMM in blocks of 64 columns for wider ones with at most 64
// rows and k <= 1024 (the same conditions), OpenBLAS otherwise. Every transpose
// combination at shapes on both sides of each bound, with beta = 0 over a C full of NaN (beta = 0
// means C is not read), 0.5 and 1.
TEST_CASE_TEMPLATE("gemm: every path (vector, small kernel, BLAS), every transpose, beta 0 over NaN", T, float, double) {
  Generator g(5);
  for (const std::array<int, 3>& size : {std::array{1, 7, 5}, std::array{6, 1, 9}, std::array{1, 1, 11},
                                         std::array{1, 300, 301}, std::array{257, 1, 300}, std::array{1, 1, 70000},
                                         std::array{7, 9, 5}, std::array{32, 96, 32}, std::array{64, 64, 64},
                                         std::array{65, 64, 64}, std::array{3, 2, 1}, std::array{512, 128, 32},
                                         std::array{512, 128, 33}, std::array{200, 64, 64}, std::array{130, 32, 256},
                                         std::array{130, 33, 256}, std::array{192, 16, 100}, std::array{700, 32, 64},
                                         std::array{64, 128, 100}, std::array{40, 100, 300},
                                         std::array{64, 300, 100}, std::array{65, 300, 100},
                                         std::array{32, 200, 1024}, std::array{32, 200, 1025},
                                         std::array{8, 513, 70}})
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (T alpha : {T(1), T(2)})
          for (T beta : {T(0), T(0.5), T(1)}) {
            const int m = size[0], n = size[1], k = size[2];
            INFO(fmt::format("m {} n {} k {} transpose_a {} transpose_b {} alpha {} beta {}", m, n, k, ta, tb, alpha,
                             beta));
            auto a = uniform({m * k}, -1, 1, f64, &g).to_vector<T>();
            auto b = uniform({k * n}, -1, 1, f64, &g).to_vector<T>();
            auto want = naive_gemm<T>(ta, tb, m, n, k, a, b);
            std::vector<T> c(m * n, beta == T(0) ? std::numeric_limits<T>::quiet_NaN() : T(1));
            gemm<T>(ta, tb, m, n, k, alpha, a.data(), b.data(), beta, c.data());
            const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * std::sqrt(double(k));
            for (int i = 0; i < m * n; ++i)
              REQUIRE(c[i] == doctest::Approx(alpha * want[i] + (beta == T(0) ? 0 : beta)).epsilon(tolerance));
          }
}

extern "C" char* openblas_get_corename(void);  // OpenBLAS's, which xgrad links

// The machines where gemm runs the larger products with k <= 1024 through LIBXSMM in 64 x 64 tiles
// (core/gemm.cpp): LIBXSMM compiles AVX-512 kernels, OpenBLAS runs its AVX2 (Haswell, Zen) ones.
bool tiles_large_products() {
  std::string core = openblas_get_corename();
  std::transform(core.begin(), core.end(), core.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return __builtin_cpu_supports("avx512f") && (core == "haswell" || core == "zen");
}

TEST_CASE_TEMPLATE("gemm: tall, deep and wide products, the panel's extremes included, are right and have the same bits on 1 and 2 threads",
                   T, float, double) {
  // A split LIBXSMM product runs in tiles of 64 rows (or columns) of C on any thread count, so
  // that every element is summed by the same kernel: 4100 x 8 x 1000 (a 4-row tail tile), a
  // deep product (transpose_a, 40 x 100 x 3000) split by columns, a step's weight gradient
  // (512 x 128 x 32, 100 x 512 x 32: one small kernel per tile), wide products split by columns
  // with a tail tile (32 x 1000 x 128, 8 x 2000 x 100), larger ones in 64 x 64 tiles with tails on
  // both sides where the machine tiles them (1300 x 520 x 130, 130 x 700 x 1024, 100 x 200 x 64;
  // elsewhere OpenBLAS's). (OpenBLAS's larger products make
  // no such promise: at 700 x 300 x 64 in float the two splits differ in the last bits.)
  Generator g(8);
  // {m, n, k, which transposes of A: 1 plain, 2 transposed, 3 both; + 4: only where tiled}
  for (const std::array<int, 4>& size :
       {std::array{700, 32, 64, 3}, std::array{1000, 96, 32, 3}, std::array{4100, 8, 1000, 3},
        std::array{1100, 1024, 8, 3}, std::array{300, 256, 32, 3}, std::array{40, 100, 3000, 2},
        std::array{96, 32, 16000, 2}, std::array{512, 128, 32, 2}, std::array{100, 512, 32, 2},
        std::array{32, 1000, 128, 3}, std::array{8, 2000, 100, 3}, std::array{1300, 520, 130, 5},
        std::array{130, 700, 1024, 5}, std::array{100, 200, 64, 5}})
    for (bool ta : {false, true}) {
      if (!(size[3] & (ta ? 2 : 1)) || ((size[3] & 4) && !tiles_large_products())) continue;
      const int m = size[0], n = size[1], k = size[2];
      INFO(m, " x ", n, " x ", k, " transpose_a ", ta);
      const auto a = uniform({m * k}, -1, 1, f64, &g).to_vector<T>();
      const auto b = uniform({k * n}, -1, 1, f64, &g).to_vector<T>();
      std::vector<std::vector<T>> results;
      const int before = num_threads();
      for (int threads : {1, 2}) {
        set_num_threads(threads);
        std::vector<T> c(static_cast<std::size_t>(m) * n, T(0.5));
        gemm<T>(ta, false, m, n, k, T(1), a.data(), b.data(), T(1), c.data());
        results.push_back(c);
      }
      set_num_threads(before);
      CHECK(results[0] == results[1]);
      const auto want = naive_gemm<T>(ta, false, m, n, k, a, b);
      const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * std::sqrt(double(k));
      for (std::size_t i = 0; i < want.size(); ++i)
        REQUIRE(results[0][i] == doctest::Approx(want[i] + 0.5).epsilon(tolerance));
    }
}

TEST_CASE_TEMPLATE("transpose_copy: every shape, exactly", T, float, double) {
  for (const std::array<std::int64_t, 2>& size : {std::array<std::int64_t, 2>{1, 1}, {1, 9}, {9, 1}, {7, 5}, {0, 4},
                                                 {4, 0}, {96, 32}, {300, 257}}) {
    const std::int64_t rows = size[0], cols = size[1];
    INFO(rows, " x ", cols);
    std::vector<T> in(static_cast<std::size_t>(rows * cols)), out(in.size(), T(-1));
    for (std::size_t i = 0; i < in.size(); ++i) in[i] = static_cast<T>(i) + T(0.25);
    transpose_copy<T>(rows, cols, in.data(), out.data());
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t c = 0; c < cols; ++c) REQUIRE(out[c * rows + r] == in[r * cols + c]);
  }
}

TEST_CASE("TransposedCopies: kept while the values stand, made again after an in-place write, never stale") {
  using detail::TransposedCopies;
  const Tensor w = iota({6, 4});
  const Tensor want = transpose(w, 0, 1);
  // Outside a scope every call makes its own copy.
  CHECK(max_abs_diff(TransposedCopies::transposed(w), want) == 0);
  CHECK(TransposedCopies::transposed(w).data<double>() != TransposedCopies::transposed(w).data<double>());
  {
    TransposedCopies scope;
    const Tensor first = TransposedCopies::transposed(w);
    CHECK(max_abs_diff(first, want) == 0);
    CHECK(TransposedCopies::transposed(w).data<double>() == first.data<double>());  // kept
    CHECK(TransposedCopies::transposed(w.detach()).data<double>() == first.data<double>());  // same storage and values
    // A view of other rows of the same storage is another matrix.
    const Tensor rows = slice(w, 0, 2, 5);
    CHECK(max_abs_diff(TransposedCopies::transposed(rows), transpose(rows, 0, 1)) == 0);
    {
      TransposedCopies inner;  // the innermost scope serves, with its own copies
      CHECK(TransposedCopies::transposed(w).data<double>() != first.data<double>());
    }
    CHECK(TransposedCopies::transposed(w).data<double>() == first.data<double>());
    // An in-place write (which bumps the version) makes a new copy with the new values.
    Tensor changed = w.clone();
    const Tensor before = TransposedCopies::transposed(changed);
    changed.copy_(w * 2.0);
    CHECK(max_abs_diff(TransposedCopies::transposed(changed), want * 2.0) == 0);
    CHECK(max_abs_diff(before, want) == 0);  // a copy handed out earlier is not overwritten
    // Tensors freed and made again (their buffers may come back at the same address) never get
    // another tensor's copy; more tensors than are kept are all right too.
    for (int i = 0; i < 20; ++i) {
      const Tensor t = full({5, 3}, i, f64);
      CHECK(max_abs_diff(TransposedCopies::transposed(t), full({3, 5}, i, f64)) == 0);
    }
    CHECK(max_abs_diff(TransposedCopies::transposed(w), want) == 0);
  }
  CHECK(matches(error_of([&] { TransposedCopies::transposed(zeros({3})); }), R"(transposed copy: expects a matrix, got \[3\])"));
}

TEST_CASE("gemm_prefers_transposed_copy: the products LIBXSMM takes (small, tall with a small panel, wide, tiled) from 8 rows") {
  const bool tiles = tiles_large_products();
  INFO("larger products in tiles: ", tiles);
  CHECK(gemm_prefers_transposed_copy(32, 96, 32));  // a GRU step at B = 32, H = 32
  CHECK(gemm_prefers_transposed_copy(8, 256, 64));   // an LSTM step at B = 8, H = 64
  CHECK(gemm_prefers_transposed_copy(64, 64, 64));
  CHECK(gemm_prefers_transposed_copy(65, 64, 64));     // tall: a 64 x 64 panel, in blocks of rows
  CHECK(gemm_prefers_transposed_copy(7552, 32, 70));   // a convolution's im2col product
  CHECK(gemm_prefers_transposed_copy(16000, 96, 32));  // a GRU's input projection over a sequence
  CHECK(gemm_prefers_transposed_copy(1280, 512, 128) == tiles);  // a 64 Ki-element panel: tiles or OpenBLAS
  CHECK(gemm_prefers_transposed_copy(32, 512, 128));    // wide: an LSTM step at B = 32, H = 128
  CHECK(gemm_prefers_transposed_copy(64, 4096, 1024));  // wide: at most 64 rows, k up to 1024
  CHECK(gemm_prefers_transposed_copy(65, 4096, 1024) == tiles);  // more rows: tiles or OpenBLAS
  CHECK_FALSE(gemm_prefers_transposed_copy(64, 4096, 1025));  // a deeper sum: OpenBLAS
  CHECK_FALSE(gemm_prefers_transposed_copy(2000, 3000, 1025));
  CHECK(gemm_prefers_transposed_copy(100, 200, 64) == tiles);  // wider than tall, over 64 rows
  CHECK_FALSE(gemm_prefers_transposed_copy(7, 96, 32));  // a copy made per call would cost what it saves
  CHECK_FALSE(gemm_prefers_transposed_copy(1, 96, 32));  // GEMV reads x W^T as stored
  CHECK_FALSE(gemm_prefers_transposed_copy(32, 1, 32));
  CHECK_FALSE(gemm_prefers_transposed_copy(32, 96, 0));
}

TEST_CASE("linear and x W^T: the same bits inside and outside a loop's scope of transposed weights") {
  // Whether a product takes the transposed copy depends on its shape alone, so a layer's output
  // does not depend on whether a recurrent loop kept the copy.
  for (Dtype dtype : {f32, f64})
    for (const std::array<std::int64_t, 3>& size :
         {std::array<std::int64_t, 3>{32, 96, 32}, {8, 7, 3}, {5, 7, 3}, {70, 70, 70}, {32, 512, 128}}) {
      const std::int64_t m = size[0], n = size[1], k = size[2];
      INFO(dtype_name(dtype), " ", m, " x ", n, " x ", k);
      const Tensor x = input({m, k}, -1, 1, 1).to(dtype), w = input({n, k}, -1, 1, 2).to(dtype),
                   b = input({n}, -1, 1, 3).to(dtype);
      const Tensor want = matmul(x.to(f64), transpose(w.to(f64), 0, 1)) + b.to(f64);
      const Tensor plain = linear(x, w, b), product = matmul(x, w, false, true);
      CHECK(max_abs_diff(plain.to(f64), want) < (dtype == f32 ? 1e-5 : 1e-12));
      detail::TransposedCopies scope;
      for (int step = 0; step < 3; ++step) {
        CHECK(max_abs_diff(linear(x, w, b), plain) == 0);
        CHECK(max_abs_diff(matmul(x, w, false, true), product) == 0);
      }
    }
}

TEST_CASE("gemm_batched: strides, including a shared matrix (stride 0)") {
  const int m = 2, n = 3, k = 4, batch = 3;
  Generator g(9);
  auto a = uniform({batch * m * k}, -1, 1, f64, &g).to_vector<double>();
  auto b = uniform({k * n}, -1, 1, f64, &g).to_vector<double>();
  std::vector<double> c(batch * m * n);
  gemm_batched<double>(false, false, m, n, k, 1.0, a.data(), m * k, b.data(), 0, 0.0, c.data(), m * n, batch);
  for (int i = 0; i < batch; ++i) {
    std::vector<double> ai(a.begin() + i * m * k, a.begin() + (i + 1) * m * k);
    auto want = naive_gemm<double>(false, false, m, n, k, ai, b);
    for (int j = 0; j < m * n; ++j) CHECK(c[i * m * n + j] == doctest::Approx(want[j]).epsilon(1e-12));
  }
}

TEST_CASE_TEMPLATE("gemm_batched: A B^T that LIBXSMM takes as A B (attention's Q K^T) is right, with alpha and beta, on 1 and 2 threads",
                   T, float, double) {
  // 128 x 128 x 64 per head runs from a transposed copy of each B; 7 x 5 x 3 (too few rows),
  // alpha 2 and a 300 x 300 x 300 (OpenBLAS's) do not. Each is the naive product, and the copy
  // path has the bits of the untransposed product A (B^T) on any thread count.
  Generator g(10);
  for (const std::array<int, 4>& size : {std::array{128, 128, 64, 1}, std::array{64, 200, 32, 1},
                                          std::array{7, 5, 3, 1}, std::array{128, 128, 64, 2},
                                          std::array{300, 300, 300, 1}}) {
    const int m = size[0], n = size[1], k = size[2], batch = 3;
    const T alpha = T(size[3]);
    INFO(m, " x ", n, " x ", k, " alpha ", alpha);
    const auto a = uniform({batch * m * k}, -1, 1, f64, &g).to_vector<T>();
    const auto b = uniform({batch * n * k}, -1, 1, f64, &g).to_vector<T>();
    std::vector<T> bt(b.size());  // each B transposed, for the untransposed product
    for (int i = 0; i < batch; ++i) transpose_copy<T>(n, k, b.data() + i * n * k, bt.data() + i * n * k);
    std::vector<std::vector<T>> results;
    const int before = num_threads();
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      std::vector<T> c(static_cast<std::size_t>(batch * m * n), T(0.5));
      gemm_batched<T>(false, true, m, n, k, alpha, a.data(), m * k, b.data(), n * k, T(1), c.data(), m * n, batch);
      results.push_back(c);
    }
    set_num_threads(before);
    CHECK(results[0] == results[1]);
    if (alpha == T(1) && m >= 8 && m < 300) {
      std::vector<T> plain(results[0].size(), T(0.5));
      gemm_batched<T>(false, false, m, n, k, T(1), a.data(), m * k, bt.data(), n * k, T(1), plain.data(), m * n, batch);
      CHECK(results[0] == plain);
    }
    const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * std::sqrt(double(k));
    for (int i = 0; i < batch; ++i) {
      const std::vector<T> ai(a.begin() + i * m * k, a.begin() + (i + 1) * m * k);
      const std::vector<T> bi(b.begin() + i * n * k, b.begin() + (i + 1) * n * k);
      const auto want = naive_gemm<T>(false, true, m, n, k, ai, bi);
      for (int j = 0; j < m * n; ++j)
        REQUIRE(results[0][i * m * n + j] == doctest::Approx(alpha * want[j] + T(0.5)).epsilon(tolerance));
    }
  }
  // One B for the whole batch (stride 0, a broadcast K): transposed once, the same bits as A (B^T).
  const int m = 128, n = 128, k = 64, batch = 3;
  const auto a = uniform({batch * m * k}, -1, 1, f64, &g).to_vector<T>();
  const auto b = uniform({n * k}, -1, 1, f64, &g).to_vector<T>();
  std::vector<T> bt(b.size()), shared(static_cast<std::size_t>(batch * m * n)), plain(shared.size());
  transpose_copy<T>(n, k, b.data(), bt.data());
  gemm_batched<T>(false, true, m, n, k, T(1), a.data(), m * k, b.data(), 0, T(0), shared.data(), m * n, batch);
  gemm_batched<T>(false, false, m, n, k, T(1), a.data(), m * k, bt.data(), 0, T(0), plain.data(), m * n, batch);
  CHECK(shared == plain);
  for (int i = 0; i < batch; ++i) {
    const std::vector<T> ai(a.begin() + i * m * k, a.begin() + (i + 1) * m * k);
    const auto want = naive_gemm<T>(false, true, m, n, k, ai, b);
    const double tolerance = (std::is_same_v<T, float> ? 1e-5 : 1e-12) * std::sqrt(double(k));
    for (int j = 0; j < m * n; ++j) REQUIRE(shared[i * m * n + j] == doctest::Approx(want[j]).epsilon(tolerance));
  }
}
