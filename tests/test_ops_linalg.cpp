// matmul: values of known products, agreement between its paths (transpose flags, batched,
// broadcast batch, the folded [..., M, K] @ [K, N] path, vectors), float64 gradcheck and
// gradgradcheck on each, zero-size dimensions, and the error messages.
#include <algorithm>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Values = std::vector<double>;

/// Matrix i of a batch along axis 0.
Tensor at(const Tensor& t, std::int64_t i) { return squeeze(slice(t, 0, i, i + 1), 0); }

Tensor mm(const std::vector<Tensor>& in) { return matmul(in[0], in[1]); }

Tensor mat_a() { return tensor({{1, 2}, {3, 4}}, f64); }
Tensor mat_b() { return tensor({{5, 6}, {7, 8}}, f64); }

}  // namespace

TEST_CASE("matmul: 2-D values, gradcheck") {
  const Tensor A = mat_a(), B = mat_b();
  check_values(matmul(A, B), {2, 2}, {19, 22, 43, 50});
  check_values(matmul(tensor({{1, 0, 2}}, f64), tensor({{1, 2}, {3, 4}, {5, 6}}, f64)), {1, 2}, {11, 14});
  check_gradients(mm, {input({3, 4}, -1, 1, 1), input({4, 5}, -1, 1, 2)});
  check_gradients(mm, {input({1, 4}, -1, 1, 1), input({4, 1}, -1, 1, 2)});
  check_gradients(mm, {input({3, 1}, -1, 1, 1), input({1, 2}, -1, 1, 2)});
  SUBCASE("one operand a constant") {
    check_gradients(mm, {input({2, 3}), tensor({{1, 2}, {3, 4}, {5, 6}}, f64)});
    check_gradients(mm, {tensor({{1, 2, 3}}, f64), input({3, 2})});
  }
}

TEST_CASE("matmul: transpose_a and transpose_b") {
  const Tensor A = mat_a(), B = mat_b();
  check_values(matmul(A, B, false, false), {2, 2}, {19, 22, 43, 50});
  check_values(matmul(A, B, true, false), {2, 2}, {26, 30, 38, 44});
  check_values(matmul(A, B, false, true), {2, 2}, {17, 23, 39, 53});
  check_values(matmul(A, B, true, true), {2, 2}, {23, 31, 34, 46});
  // non-square: op(a) is [3, 4], op(b) is [4, 5]
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      CAPTURE(ta);
      CAPTURE(tb);
      Tensor a = input(ta ? Shape{4, 3} : Shape{3, 4}, -1, 1, 1);
      Tensor b = input(tb ? Shape{5, 4} : Shape{4, 5}, -1, 1, 2);
      check_close(matmul(a, b, ta, tb), matmul(ta ? transpose(a, 0, 1) : a, tb ? transpose(b, 0, 1) : b));
      check_gradients([ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); }, {a, b});
      // batched, through the general path
      Tensor a3 = input(ta ? Shape{2, 4, 3} : Shape{2, 3, 4}, -1, 1, 3);
      Tensor b3 = input(tb ? Shape{2, 5, 4} : Shape{2, 4, 5}, -1, 1, 4);
      check_gradients([ta, tb](const std::vector<Tensor>& in) { return matmul(in[0], in[1], ta, tb); }, {a3, b3});
    }
}

TEST_CASE("matmul: batched [2, 3, 4] x [2, 4, 5]") {
  Tensor a = input({2, 3, 4}, -1, 1, 1), b = input({2, 4, 5}, -1, 1, 2);
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape({2, 3, 5}));
  for (std::int64_t i = 0; i < 2; ++i) check_close(at(c, i), matmul(at(a, i), at(b, i)));
  check_gradients(mm, {a, b});
  check_gradients(mm, {input({1, 2, 3}, -1, 1, 1), input({1, 3, 1}, -1, 1, 2)});
  check_gradients(mm, {input({2, 1, 2, 3}, -1, 1, 1), input({2, 1, 3, 2}, -1, 1, 2)});
}

TEST_CASE("matmul: broadcast batch [3, 1, 2, 4] x [5, 4, 6]") {
  Tensor a = input({3, 1, 2, 4}, -1, 1, 1), b = input({5, 4, 6}, -1, 1, 2);
  Tensor c = matmul(a, b);
  REQUIRE(c.shape() == Shape({3, 5, 2, 6}));
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 5; ++j) check_close(at(at(c, i), j), matmul(at(at(a, i), 0), at(b, j)));
  check_gradients(mm, {a, b});
  SUBCASE("broadcast on both sides, with transposes") {
    check_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1], true, true); },
                    {input({2, 1, 3, 2}, -1, 1, 1), input({1, 3, 4, 3}, -1, 1, 2)});
  }
  SUBCASE("a matrix times a batch") {
    Tensor m = input({2, 4}, -1, 1, 3);
    Tensor d = matmul(m, b);
    REQUIRE(d.shape() == Shape({5, 2, 6}));
    check_close(at(d, 4), matmul(m, at(b, 4)));
    check_gradients(mm, {m, b});
  }
}

TEST_CASE("matmul: [B, T, K] x [K, N], the folded path") {
  Tensor a = input({2, 3, 4}, -1, 1, 1), w = input({4, 5}, -1, 1, 2);
  Tensor c = matmul(a, w);
  REQUIRE(c.shape() == Shape({2, 3, 5}));
  check_close(c, matmul(a, expand(w, {2, 4, 5})));  // the general batched path
  check_gradients(mm, {a, w});
  SUBCASE("transpose_b: [B, T, K] x [N, K]^T") {
    Tensor wt = input({5, 4}, -1, 1, 3);
    Tensor ct = matmul(a, wt, false, true);
    REQUIRE(ct.shape() == Shape({2, 3, 5}));
    check_close(ct, matmul(a, expand(transpose(wt, 0, 1), {2, 4, 5})));
    check_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1], false, true); }, {a, wt});
  }
  SUBCASE("transpose_a: [B, K, T]^T x [K, N] (not folded)") {
    Tensor at_ = input({2, 4, 3}, -1, 1, 4);
    Tensor ct = matmul(at_, w, true, false);
    REQUIRE(ct.shape() == Shape({2, 3, 5}));
    check_close(ct, matmul(transpose(at_, 1, 2), w));
    check_gradients([](const std::vector<Tensor>& in) { return matmul(in[0], in[1], true, false); }, {at_, w});
  }
  SUBCASE("rank 4 and size-1 axes") {
    check_gradients(mm, {input({2, 1, 3, 4}, -1, 1, 1), input({4, 2}, -1, 1, 2)});
    check_gradients(mm, {input({1, 1, 4}, -1, 1, 1), input({4, 1}, -1, 1, 2)});
  }
  SUBCASE("zero-size batch: [0, 3, 4] x [4, 5]") {
    check_values(matmul(input({0, 3, 4}), w), {0, 3, 5}, {});
    check_gradients(mm, {input({0, 3, 4}, -1, 1, 1), w});
  }
  SUBCASE("K = 0: [2, 3, 0] x [0, 4] gives zeros") {
    check_values(matmul(input({2, 3, 0}, -1, 1, 1), input({0, 4}, -1, 1, 2)), {2, 3, 4}, Values(24, 0.0));
    check_gradients(mm, {input({2, 3, 0}, -1, 1, 1), input({0, 4}, -1, 1, 2)});
  }
}

TEST_CASE("matmul: 1-D operands") {
  const Tensor A = mat_a();
  Tensor v = tensor({1, 2}, f64);
  check_values(matmul(v, A), {2}, {7, 10});
  check_values(matmul(A, v), {2}, {5, 11});
  check_values(matmul(v, A, false, true), {2}, {5, 11});
  check_values(matmul(A, v, true, false), {2}, {7, 10});
  SUBCASE("vector @ vector is rank 0") {
    check_values(matmul(tensor({1, 2, 3}, f64), tensor({4, 5, 6}, f64)), {}, {32});
    check_gradients(mm, {input({3}, -1, 1, 1), input({3}, -1, 1, 2)});
  }
  SUBCASE("vector @ matrix, matrix @ vector") {
    check_gradients(mm, {input({3}, -1, 1, 1), input({3, 4}, -1, 1, 2)});
    check_gradients(mm, {input({3, 4}, -1, 1, 1), input({4}, -1, 1, 2)});
    check_gradients(mm, {input({1}, -1, 1, 1), input({1, 2}, -1, 1, 2)});
  }
  SUBCASE("vector with a batch") {
    Tensor x = input({4}, -1, 1, 1), b = input({2, 4, 3}, -1, 1, 2), a = input({2, 3, 4}, -1, 1, 3);
    Tensor xb = matmul(x, b);
    REQUIRE(xb.shape() == Shape({2, 3}));
    check_close(at(xb, 1), matmul(x, at(b, 1)));
    Tensor ax = matmul(a, x);
    REQUIRE(ax.shape() == Shape({2, 3}));
    check_close(at(ax, 1), matmul(at(a, 1), x));
    check_gradients(mm, {x, b});
    check_gradients(mm, {a, x});
  }
  SUBCASE("empty vectors") {
    check_values(matmul(input({0}), input({0, 3})), {3}, {0, 0, 0});
    check_gradients(mm, {input({0}, -1, 1, 1), input({0, 3}, -1, 1, 2)});
  }
}

TEST_CASE("matmul: zero-size dimensions") {
  check_values(matmul(input({0, 3}, -1, 1, 1), input({3, 2}, -1, 1, 2)), {0, 2}, {});
  check_values(matmul(input({2, 3}, -1, 1, 1), input({3, 0}, -1, 1, 2)), {2, 0}, {});
  check_values(matmul(input({2, 0}, -1, 1, 1), input({0, 3}, -1, 1, 2)), {2, 3}, Values(6, 0.0));
  check_values(matmul(input({0, 2}, -1, 1, 1), input({0, 3}, -1, 1, 2), true, false), {2, 3}, Values(6, 0.0));
  check_values(matmul(input({0, 2, 3}, -1, 1, 1), input({0, 3, 4}, -1, 1, 2)), {0, 2, 4}, {});
  check_gradients(mm, {input({0, 3}, -1, 1, 1), input({3, 2}, -1, 1, 2)});
  check_gradients(mm, {input({2, 3}, -1, 1, 1), input({3, 0}, -1, 1, 2)});
  check_gradients(mm, {input({2, 0}, -1, 1, 1), input({0, 3}, -1, 1, 2)});
  SUBCASE("K = 0 with a nonzero input: the other operand's gradient is zero") {
    Tensor a = input({2, 0}), b = input({0, 3});
    sum(matmul(a, b)).backward();
    CHECK(a.grad().shape() == Shape({2, 0}));
    CHECK(b.grad().shape() == Shape({0, 3}));
  }
}

TEST_CASE("linear: one GEMM onto the bias equals matmul + bias; gradcheck on 1-D, 2-D, 3-D inputs, odd shapes") {
  for (const Shape& xs : {Shape{5}, Shape{1, 5}, Shape{3, 5}, Shape{2, 3, 5}, Shape{0, 5}}) {
    INFO("x ", xs);
    Tensor x = input(xs, -1, 1, 1), w = input({4, 5}, -1, 1, 2), b = input({4}, -1, 1, 3);
    check_close(linear(x, w, b), matmul(x, w, false, true) + b, 1e-15);
    check_close(linear(x, w), matmul(x, w, false, true), 0);
    if (numel(xs) > 0) {
      check_gradients([](const Inputs& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
      check_gradients([](const Inputs& in) { return linear(in[0], in[1]); }, {x, w});
    }
  }
  check_values(linear(tensor({{1, 2}}, f64), tensor({{1, 0}, {0, 1}, {1, 1}}, f64), tensor({10, 20, 30}, f64)),
               {1, 3}, {11, 22, 33});
  // bias rows of every width (copied inline up to a few SIMD widths, by memcpy past them)
  for (Dtype dtype : {f32, f64})
    for (std::int64_t n = 1; n <= 80; ++n) {
      CAPTURE(n);
      Tensor bias = arange(static_cast<double>(n), dtype) + 1.0;
      check_close(linear(zeros({3, 2}, dtype), zeros({n, 2}, dtype), bias), expand(reshape(bias, {1, n}), {3, n}), 0);
    }
  // a constant input: no gradient asked of it, the parameters still get theirs
  Tensor w = input({3, 2}), b = input({3});
  sum(linear(tensor({{1, 2}, {3, 4}}, f64), w, b)).backward();
  check_values(b.grad(), {3}, {2, 2, 2});
  check_values(w.grad(), {3, 2}, {4, 6, 4, 6, 4, 6});
  // errors name the op and the shapes
  CHECK(matches(error_of([] { linear(ones({2, 3}, f64), ones({4, 5}, f64)); }), R"(linear: .*\[2, 3\].*\[4, 5\])"));
  CHECK(matches(error_of([] { linear(ones({2, 5}, f64), ones({4, 5}, f64), ones({3}, f64)); }),
                R"(linear: bias \[3\] .*\[4, 5\])"));
  CHECK(matches(error_of([] { linear(ones({2, 5}, f32), ones({4, 5}, f64), ones({4}, f64)); }),
                R"(linear: dtypes differ: input f32, weight f64)"));
}

TEST_CASE("matmul: GEMMs split across the thread pool (rows or columns of C) equal the plain product") {
  const int saved = num_threads();
  set_num_threads(2);
  struct Dims {
    std::int64_t m, n, k;
  };
  // a tall C splits by rows, a wide one by columns; both large enough to split
  for (const auto& d : {Dims{300, 70, 64}, Dims{70, 300, 64}, Dims{129, 129, 65}}) {
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        INFO("m ", d.m, " n ", d.n, " k ", d.k, " ta ", ta, " tb ", tb);
        Tensor a = input(ta ? Shape{d.k, d.m} : Shape{d.m, d.k}, -1, 1, 1).detach();
        Tensor b = input(tb ? Shape{d.n, d.k} : Shape{d.k, d.n}, -1, 1, 2).detach();
        Tensor got = matmul(a, b, ta, tb);
        // reference: the same product one row at a time (each far below the split threshold)
        std::vector<Tensor> rows;
        Tensor op_a = ta ? transpose(a, 0, 1) : a, op_b = tb ? transpose(b, 0, 1) : b;
        for (std::int64_t i = 0; i < d.m; ++i) rows.push_back(matmul(slice(op_a, 0, i, i + 1), op_b));
        check_close(got, concat(rows, 0), 1e-12);
      }
  }
  // batched: whole matrices to each thread
  Tensor a = input({6, 64, 80}, -1, 1, 3).detach(), b = input({6, 80, 72}, -1, 1, 4).detach();
  Tensor batched = matmul(a, b);
  for (std::int64_t i = 0; i < 6; ++i) check_close(at(batched, i), matmul(at(a, i), at(b, i)), 1e-12);
  set_num_threads(saved);
}

TEST_CASE("parallel_for: covers every index once, runs nested calls inline, passes exceptions on") {
  const int saved = num_threads();
  set_num_threads(2);
  std::vector<int> hits(100000, 0);
  parallel_for(100000, 1000, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) hits[i] += 1;
    parallel_for(10, 1, [&](std::int64_t, std::int64_t) {});  // nested: inline, no deadlock
  });
  CHECK(std::count(hits.begin(), hits.end(), 1) == 100000);
  std::vector<std::pair<std::int64_t, std::int64_t>> ranges;
  parallel_for(10, 100, [&](std::int64_t begin, std::int64_t end) { ranges.emplace_back(begin, end); });
  CHECK(ranges == std::vector<std::pair<std::int64_t, std::int64_t>>{{0, 10}});  // below 2 grains: one range
  CHECK_THROWS_AS(parallel_for(100000, 1000,
                               [](std::int64_t begin, std::int64_t) {
                                 if (begin > 0) fail("parallel_for test: thrown on a worker");
                               }),
                  Error);
  set_num_threads(1);
  CHECK(num_threads() == 1);
  set_num_threads(saved);
}

TEST_CASE("parallel_for: many short runs back to back: each part once, by whichever thread takes it") {
  // The caller takes the parts no worker has taken yet, so a run's parts race between threads and
  // the next run starts while a worker may still be reading the last one: every part must run
  // exactly once, in its own run, and an exception reach the run's caller only.
  const int saved = num_threads();
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(3);
    for (int run = 0; run < 20000; ++run) {
      const std::int64_t parts = 2 + run % (threads - 1);
      for (auto& h : hits) h = 0;
      auto each = [&](std::int64_t begin, std::int64_t end) {
        for (std::int64_t i = begin; i < end; ++i) ++hits[i];
        if (run % 997 == 1 && begin == parts - 1) fail("parallel_for test: the last part of run {}", run);
      };
      if (run % 997 == 1) {
        CHECK_THROWS_AS(parallel_for(parts, 1, each), Error);
      } else {
        parallel_for(parts, 1, each);
      }
      for (std::int64_t i = 0; i < 3; ++i) REQUIRE(hits[i].load() == (i < parts ? 1 : 0));
    }
  }
  set_num_threads(saved);
}

TEST_CASE("matmul: errors") {
  Tensor a = ones({2, 3}, f64), b = ones({4, 5}, f64);
  CHECK(matches(error_of([&] { matmul(a, b); }), R"(matmul: inner dimensions differ: \[2, 3\] x \[4, 5\])"));
  CHECK(matches(error_of([&] { matmul(a, b, true, false); }), R"(matmul: inner dimensions differ: \[2, 3\]\^T x \[4, 5\])"));
  CHECK(matches(error_of([&] { matmul(a, ones({3, 4}, f64), false, true); }),
                R"(matmul: inner dimensions differ: \[2, 3\] x \[3, 4\]\^T)"));
  CHECK(matches(error_of([&] { matmul(ones({2, 2, 3}, f64), ones({4, 5}, f64)); }),
                R"(matmul: inner dimensions differ: \[2, 2, 3\] x \[4, 5\])"));
  CHECK(matches(error_of([&] { matmul(a, ones({3, 4})); }), R"(matmul: dtypes differ: f64 \[2, 3\] x f32 \[3, 4\])"));
  CHECK(matches(error_of([&] { matmul(scalar(1, f64), a); }), R"(matmul: operands must have rank >= 1: \[\] x \[2, 3\])"));
  CHECK(matches(error_of([] { matmul(ones({2, 3}, i64), ones({3, 2}, i64)); }), R"(matmul: .*i64)"));
  // a vector operand: the message names the shapes as given, not their internal [1, K] / [K, 1] form
  CHECK(matches(error_of([] { matmul(ones({3}, f64), ones({4, 5}, f64)); }), R"(matmul: .*\[3\] x \[4, 5\])"));
  CHECK(matches(error_of([] { matmul(ones({3}, f64), ones({4}, f64)); }), R"(matmul: .*\[3\] x \[4\])"));
  // the batch axes [2] and [3] cannot be broadcast: the message names both full shapes
  CHECK(matches(error_of([] { matmul(ones({2, 3, 4}, f64), ones({3, 4, 5}, f64)); }),
                R"(matmul: .*\[2, 3, 4\].*\[3, 4, 5\])"));
}
