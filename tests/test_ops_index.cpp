// Indexing primitives and their adjoints: index_select <-> index_add, gather <-> scatter_add,
// unfold <-> fold. Forward values on hand-computed cases, float64 gradcheck and gradgradcheck
// with respect to the data (the i64 indices are constants, with repeats so that the adjoints
// accumulate), and the error messages.
#include <cmath>
#include <limits>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Values = std::vector<double>;

/// A column [n, 1] of the given values.
Tensor column(const xt::xarray<double>& values, Dtype dtype) { return reshape(from_xarray(values).to(dtype), {-1, 1}); }

}  // namespace

TEST_CASE("index_select: values, gradcheck") {
  Tensor x = iota({3, 2});  // [[0, 1], [2, 3], [4, 5]]
  check_values(index_select(x, 0, tensor({2, 0, 2}, i64)), {3, 2}, {4, 5, 0, 1, 4, 5});
  check_values(index_select(x, 1, tensor({1, 1, 0}, i64)), {3, 3}, {1, 1, 0, 3, 3, 2, 5, 5, 4});
  check_values(index_select(x, -2, zeros({0}, i64)), {0, 2}, {});
  SUBCASE("repeated indices accumulate in the gradient") {
    Tensor v = input({3});
    sum(index_select(v, 0, tensor({2, 0, 2}, i64))).backward();
    check_values(v.grad(), {3}, {1, 0, 2});
  }
  Tensor repeated = tensor({2, 0, 2}, i64);
  check_gradients([=](const std::vector<Tensor>& in) { return index_select(in[0], 0, repeated); }, {input({3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return index_select(in[0], -1, tensor({3, 0, 3, 3}, i64)); },
                  {input({2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return index_select(in[0], 0, tensor({0, 0}, i64)); },
                  {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return index_select(in[0], 0, zeros({0}, i64)); }, {input({3, 2})});
  check_gradients([](const std::vector<Tensor>& in) { return index_select(in[0], 1, tensor({1, 2}, i64)); },
                  {input({0, 3})});
  CHECK(matches(error_of([&] { index_select(x, 0, tensor({0, 3}, i64)); }),
                R"(index_select: index 3 is out of range for axis 0 of size 3 \(shape \[3, 2\]\))"));
  CHECK(matches(error_of([&] { index_select(x, 1, tensor({-1}, i64)); }),
                R"(index_select: index -1 is out of range for axis 1 of size 2 \(shape \[3, 2\]\))"));
  CHECK(matches(error_of([&] { index_select(x, 0, tensor({0, 1})); }), R"(index_select: index must be i64, got f32 \[2\])"));
  CHECK(matches(error_of([&] { index_select(x, 0, tensor({{0, 1}}, i64)); }),
                R"(index_select: index must be 1-D, got shape \[1, 2\])"));
  CHECK(matches(error_of([&] { index_select(x, 2, tensor({0}, i64)); }),
                R"(index_select: axis 2 is out of range for shape \[3, 2\])"));
}

TEST_CASE("index checks: every index from the extremes of i64 to the axis' size, the first bad one named") {
  constexpr std::int64_t lo = std::numeric_limits<std::int64_t>::min(), hi = std::numeric_limits<std::int64_t>::max();
  Tensor x = iota({3, 2});
  auto ids = [](std::vector<std::int64_t> v) {
    xt::xarray<std::int64_t> a = xt::zeros<std::int64_t>({v.size()});
    std::copy(v.begin(), v.end(), a.begin());
    return from_xarray(a);
  };
  check_values(index_select(x, 0, ids({2, 0, 1, 2})), {4, 2}, {4, 5, 0, 1, 2, 3, 4, 5});
  for (std::int64_t bad : {lo, lo + 1, std::int64_t{-3}, std::int64_t{-1}, std::int64_t{3}, std::int64_t{4}, hi - 1, hi})
    CHECK(matches(error_of([&] { index_select(x, 0, ids({0, 2, bad, 1, -7, 9})); }),
                  fmt::format(R"(^index_select: index {} is out of range for axis 0 of size 3 )", bad)));
  // An empty axis takes no index, and an empty index is checked against any axis.
  CHECK(matches(error_of([&] { index_select(zeros({0, 2}), 0, ids({0})); }),
                R"(^index_select: index 0 is out of range for axis 0 of size 0 )"));
  check_values(index_select(zeros({0, 2}), 0, ids({})), {0, 2}, {});
  // Past a vector's width and tail: the bad index at each position of 37.
  for (std::int64_t at = 0; at < 37; ++at) {
    std::vector<std::int64_t> v(37, 1);
    v[at] = at % 2 ? -1 : 3;
    CHECK(matches(error_of([&] { gather(x, 0, reshape(ids(v), {37, 1})); }),
                  fmt::format(R"(^gather: index {} is out of range for axis 0 of size 3 )", v[at])));
  }
}

TEST_CASE("index_add: values, gradcheck") {
  check_values(index_add({3}, 0, tensor({2, 0, 2}, i64), tensor({1, 2, 3}, f64)), {3}, {2, 0, 4});
  check_values(index_add({3, 2}, 0, tensor({2, 0, 2}, i64), iota({3, 2})), {3, 2}, {2, 3, 0, 0, 4, 6});
  check_values(index_add({2, 3}, 1, tensor({1, 1}, i64), iota({2, 2})), {2, 3}, {0, 1, 0, 0, 5, 0});
  check_values(index_add({2, 2}, 0, zeros({0}, i64), iota({0, 2})), {2, 2}, {0, 0, 0, 0});
  SUBCASE("adjoint of index_select: <index_select(x), y> = <x, index_add(y)>") {
    Tensor index = tensor({1, 3, 1, 0}, i64);
    Tensor x = input({2, 4, 3}, -1, 1, 3), y = input({2, 4, 3}, -1, 1, 4);
    double lhs = sum(index_select(x, 1, index) * y).item();
    double rhs = sum(x * index_add({2, 4, 3}, 1, index, y)).item();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
  check_gradients([](const std::vector<Tensor>& in) { return index_add({4, 3}, 0, tensor({1, 1, 3}, i64), in[0]); },
                  {input({3, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return index_add({2, 3, 4}, 1, tensor({0, 0, 2, 1}, i64), in[0]); },
                  {input({2, 4, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return index_add({1, 2}, 0, tensor({0, 0, 0}, i64), in[0]); },
                  {input({3, 2})});
  check_gradients([](const std::vector<Tensor>& in) { return index_add({2, 3}, 0, zeros({0}, i64), in[0]); },
                  {input({0, 3})});
  CHECK(matches(error_of([] { index_add({4, 3}, 0, tensor({0, 1, 2}, i64), iota({2, 3})); }),
                R"(index_add: source shape \[2, 3\] does not match \[3, 3\] \(shape \[4, 3\] with 3 indices along axis 0\))"));
  CHECK(matches(error_of([] { index_add({4, 3}, 0, tensor({0, 4}, i64), iota({2, 3})); }),
                R"(index_add: index 4 is out of range for axis 0 of size 4 \(shape \[4, 3\]\))"));
  CHECK(matches(error_of([] { index_add({4, 3}, 0, tensor({0, 1}, f64), iota({2, 3})); }),
                R"(index_add: index must be i64, got f64 \[2\])"));
}

TEST_CASE("gather: values, gradcheck") {
  Tensor x = tensor({{1, 2, 3}, {4, 5, 6}}, f64);
  check_values(gather(x, 1, tensor({{2, 0}, {1, 1}}, i64)), {2, 2}, {3, 1, 5, 5});
  check_values(gather(x, 0, tensor({{1, 0, 1}}, i64)), {1, 3}, {4, 2, 6});
  check_values(gather(x, -1, tensor({{0, 0, 2, 2}}, i64)), {1, 4}, {1, 1, 3, 3});
  check_values(gather(x, 1, zeros({2, 0}, i64)), {2, 0}, {});
  SUBCASE("repeated indices accumulate in the gradient") {
    Tensor v = input({2, 3});
    sum(gather(v, 1, tensor({{2, 0, 2, 2}, {1, 1, 0, 1}}, i64))).backward();
    check_values(v.grad(), {2, 3}, {1, 0, 3, 1, 3, 0});
  }
  check_gradients([](const std::vector<Tensor>& in) { return gather(in[0], 1, tensor({{3, 0, 3}, {1, 1, 2}, {0, 0, 0}}, i64)); },
                  {input({3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return gather(in[0], 0, tensor({{2, 0, 2, 1}, {2, 2, 0, 0}}, i64)); },
                  {input({3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return gather(in[0], 0, column({0, 0, 2, 2}, i64)); },
                  {input({3, 1})});
  check_gradients([](const std::vector<Tensor>& in) { return gather(in[0], 1, tensor({{2, 2, 2, 2}}, i64)); },
                  {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return gather(in[0], 1, zeros({3, 0}, i64)); }, {input({3, 2})});
  CHECK(matches(error_of([&] { gather(x, 1, tensor({{0, 3}}, i64)); }),
                R"(gather: index 3 is out of range for axis 1 of size 3 \(shape \[2, 3\]\))"));
  CHECK(matches(error_of([&] { gather(x, 1, column({0, 1, 0}, i64)); }),
                R"(gather: index shape \[3, 1\] does not fit data shape \[2, 3\] \(axis 1\))"));
  CHECK(matches(error_of([&] { gather(x, 1, tensor({0, 1}, i64)); }),
                R"(gather: index shape \[2\] does not fit data shape \[2, 3\] \(axis 1\))"));
  CHECK(matches(error_of([&] { gather(x, 0, tensor({{0, 1}})); }), R"(gather: index must be i64, got f32 \[1, 2\])"));
}

TEST_CASE("scatter_add: values, gradcheck") {
  Tensor index = tensor({{2, 0, 2}, {1, 1, 1}}, i64);
  check_values(scatter_add({2, 3}, 1, index, tensor({{1, 2, 3}, {4, 5, 6}}, f64)), {2, 3}, {2, 0, 4, 0, 15, 0});
  check_values(scatter_add({3, 2}, 0, tensor({{2, 2}}, i64), tensor({{7, 8}}, f64)), {3, 2}, {0, 0, 0, 0, 7, 8});
  check_values(scatter_add({2, 2}, 0, zeros({0, 2}, i64), iota({0, 2})), {2, 2}, {0, 0, 0, 0});
  SUBCASE("one pick per line (a max's backward) is one pass with the sums of zeros then +=") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    const std::vector<double> picks = {0, 2, 1, 1, 2, 2, 0, 1};  // [2, 1, 4] along axis 1 of [2, 3, 4]
    const std::vector<double> values = {1.5, -0.0, nan, inf, -2, 3, -inf, 0.25};
    for (Dtype dtype : {f64, f32, i64}) {
      { Tensor dirty = full({2, 3, 4}, 7.0, dtype); }  // the pool hands this buffer back to scatter_add
      std::vector<double> source = values;
      if (dtype == i64) source = {1, -5, 2, 9, -2, 3, 4, 6};
      Tensor src = f64_tensor(source, {2, 1, 4}).to(dtype);
      Tensor y = scatter_add({2, 3, 4}, 1, f64_tensor(picks, {2, 1, 4}).to(i64), src);
      const std::vector<double> got = y.to_vector<double>();
      REQUIRE(got.size() == 24);
      for (int o = 0; o < 2; ++o)
        for (int j = 0; j < 3; ++j)
          for (int i = 0; i < 4; ++i) {
            const double want = picks[o * 4 + i] == j ? 0.0 + source[o * 4 + i] : 0.0, v = got[(o * 3 + j) * 4 + i];
            INFO(dtype_name(dtype), " o ", o, " j ", j, " i ", i);
            CHECK(((std::isnan(want) && std::isnan(v)) || v == want));
            CHECK(std::signbit(v) == std::signbit(want));  // 0 + (-0) is +0, as zeros then +=
          }
    }
    check_gradients([](const std::vector<Tensor>& in) { return scatter_add({3, 4}, 0, tensor({{2, 0, 1, 1}}, i64), in[0]); },
                    {input({1, 4})});
    check_gradients([](const std::vector<Tensor>& in) { return scatter_add({0, 3}, 1, zeros({0, 1}, i64), in[0]); },
                    {input({0, 1})});  // no lines at all
  }
  SUBCASE("adjoint of gather: <gather(x), y> = <x, scatter_add(y)>") {
    Tensor x = input({3, 4}, -1, 1, 3), y = input({2, 3}, -1, 1, 4);
    Tensor idx = tensor({{3, 0, 3}, {1, 1, 2}}, i64);
    double lhs = sum(gather(x, 1, idx) * y).item();
    double rhs = sum(x * scatter_add({3, 4}, 1, idx, y)).item();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
  check_gradients([=](const std::vector<Tensor>& in) { return scatter_add({2, 3}, 1, index, in[0]); }, {input({2, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return scatter_add({3, 4}, 0, tensor({{2, 0, 2, 1}, {2, 2, 0, 0}}, i64), in[0]); },
                  {input({2, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return scatter_add({1, 2}, 1, tensor({{1, 1, 0}}, i64), in[0]); },
                  {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return scatter_add({2, 3}, 0, zeros({0, 3}, i64), in[0]); },
                  {input({0, 3})});
  CHECK(matches(error_of([&] { scatter_add({2, 3}, 1, index, iota({2, 2})); }),
                R"(scatter_add: source shape \[2, 2\] differs from index shape \[2, 3\])"));
  CHECK(matches(error_of([&] { scatter_add({2, 2}, 1, index, iota({2, 3})); }),
                R"(scatter_add: index 2 is out of range for axis 1 of size 2 \(shape \[2, 2\]\))"));
  CHECK(matches(error_of([&] { scatter_add({1, 3}, 1, index, iota({2, 3})); }),
                R"(scatter_add: index shape \[2, 3\] does not fit data shape \[1, 3\] \(axis 1\))"));
}

TEST_CASE("unfold: values, gradcheck") {
  check_values(unfold(arange(6, f64), 0, 3, 2), {2, 3}, {0, 1, 2, 2, 3, 4});
  check_values(unfold(arange(5, f64), 0, 2), {4, 2}, {0, 1, 1, 2, 2, 3, 3, 4});
  check_values(unfold(arange(7, f64), 0, 3, 1, 2), {3, 3}, {0, 2, 4, 1, 3, 5, 2, 4, 6});
  check_values(unfold(arange(8, f64), 0, 3, 2, 2), {2, 3}, {0, 2, 4, 2, 4, 6});
  check_values(unfold(iota({2, 4}), 1, 2, 2), {2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7});
  // along axis 0 of [[0, 1], [2, 3], [4, 5]]: out[c, i, j] = x[c + j, i]
  check_values(unfold(iota({3, 2}), 0, 2), {2, 2, 2}, {0, 2, 1, 3, 2, 4, 3, 5});
  SUBCASE("windows longer than the axis give zero windows, not an error") {
    check_values(unfold(arange(3, f64), 0, 5), {0, 5}, {});
    check_values(unfold(arange(4, f64), 0, 3, 1, 2), {0, 3}, {});
    check_values(unfold(iota({2, 3}), 1, 4, 2), {2, 0, 4}, {});
  }
  check_gradients([](const std::vector<Tensor>& in) { return unfold(in[0], 0, 3, 2); }, {input({7})});
  check_gradients([](const std::vector<Tensor>& in) { return unfold(in[0], 1, 3, 2, 2); }, {input({2, 9})});
  check_gradients([](const std::vector<Tensor>& in) { return unfold(in[0], -2, 2); }, {input({5, 1})});
  check_gradients([](const std::vector<Tensor>& in) { return unfold(in[0], 0, 1, 3); }, {input({3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return unfold(in[0], 0, 3); }, {input({2})});
  check_gradients([](const std::vector<Tensor>& in) { return unfold(in[0], 1, 2); }, {input({0, 4})});
  CHECK(matches(error_of([] { unfold(arange(5, f64), 0, 0); }),
                R"(unfold: size, step and dilation must be positive, got 0, 1, 1)"));
  CHECK(matches(error_of([] { unfold(arange(5, f64), 0, 2, 1, 0); }),
                R"(unfold: size, step and dilation must be positive, got 2, 1, 0)"));
  CHECK(matches(error_of([] { unfold(arange(5, f64), 1, 2); }), R"(unfold: axis 1 is out of range for shape \[5\])"));
}

TEST_CASE("fold: values, gradcheck") {
  // each element of [6] counted once per window (size 3, step 2) that covers it
  check_values(fold(ones({2, 3}, f64), {6}, 0, 3, 2), {6}, {1, 1, 2, 1, 1, 0});
  check_values(fold(tensor({{1, 2, 3}, {4, 5, 6}}, f64), {6}, 0, 3, 2), {6}, {1, 2, 7, 5, 6, 0});
  check_values(fold(ones({2, 2}, f64), {4}, 0, 2, 1, 2), {4}, {1, 1, 1, 1});
  check_values(fold(ones({3, 2}, f64), {4}, 0, 2, 1), {4}, {1, 2, 2, 1});
  check_values(fold(iota({0, 5}), {3}, 0, 5), {3}, {0, 0, 0});
  SUBCASE("adjoint of unfold: <unfold(x), w> = <x, fold(w)>") {
    Tensor x = input({2, 9}, -1, 1, 3), w = input({2, 3, 3}, -1, 1, 4);
    double lhs = sum(unfold(x, 1, 3, 2, 2) * w).item();
    double rhs = sum(x * fold(w, {2, 9}, 1, 3, 2, 2)).item();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
  check_gradients([](const std::vector<Tensor>& in) { return fold(in[0], {6}, 0, 3, 2); }, {input({2, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return fold(in[0], {2, 9}, 1, 3, 2, 2); }, {input({2, 3, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return fold(in[0], {1}, 0, 1); }, {input({1, 1})});
  check_gradients([](const std::vector<Tensor>& in) { return fold(in[0], {4, 1}, 0, 2); }, {input({3, 1, 2})});
  check_gradients([](const std::vector<Tensor>& in) { return fold(in[0], {3}, 0, 5); }, {input({0, 5})});
  CHECK(matches(error_of([] { fold(zeros({3, 3}, f64), {6}, 0, 3, 2); }),
                R"(fold: windows of shape \[3, 3\] do not match \[2, 3\] \(the unfold of \[6\] along axis 0\))"));
  CHECK(matches(error_of([] { fold(zeros({2, 3}, f64), {2, 6}, 1, 3, 2); }),
                R"(fold: windows of shape \[2, 3\] do not match \[2, 2, 3\] \(the unfold of \[2, 6\] along axis 1\))"));
  CHECK(matches(error_of([] { fold(zeros({2, 3}, f64), {6}, 0, 3, 0); }),
                R"(fold: size, step and dilation must be positive, got 3, 0, 1)"));
}
