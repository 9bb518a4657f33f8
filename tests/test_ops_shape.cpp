// Shape primitives: forward values on small hand-computed cases, float64 gradcheck and
// gradgradcheck over typical, size-1, rank-0 and zero-size shapes, and the error messages.
#include "testing.hpp"
#include "xgrad/core/parallel.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Values = std::vector<double>;

/// The pieces of a split, flattened, scaled by 1, 2, 3, ... and joined: one output that
/// depends on every piece differently.
Tensor join_pieces(const std::vector<Tensor>& pieces) {
  std::vector<Tensor> flat;
  for (std::size_t i = 0; i < pieces.size(); ++i) flat.push_back(flatten(pieces[i]) * static_cast<double>(i + 1));
  return concat(flat, 0);
}

}  // namespace

TEST_CASE("reshape: values, shared storage, gradcheck") {
  SUBCASE("values and -1") {
    check_values(reshape(iota({2, 3}), {3, -1}), {3, 2}, {0, 1, 2, 3, 4, 5});
    check_values(reshape(iota({2, 3}), {-1}), {6}, {0, 1, 2, 3, 4, 5});
    check_values(reshape(iota({1}), {}), {}, {0});
    check_values(reshape(iota({0, 3}), {3, -1}), {3, 0}, {});
  }
  SUBCASE("a view of the same storage") {
    Tensor x = input({2, 3});
    Tensor y = reshape(x, {3, 2});
    CHECK(y.data<double>() == x.data<double>());
    CHECK(reshape(x, {-1}).data<double>() == x.data<double>());
    y.detach().copy_(iota({3, 2}));
    check_values(x.detach(), {2, 3}, {0, 1, 2, 3, 4, 5});
  }
  SUBCASE("backward through a view leaves the given gradient untouched") {
    Tensor x = input({2, 3});
    Tensor g = iota({6});
    reshape(x, {6}).backward(g);
    reshape(x, {6}).backward(g);
    check_values(x.grad(), {2, 3}, {0, 2, 4, 6, 8, 10});
    check_values(g, {6}, {0, 1, 2, 3, 4, 5});
  }
  SUBCASE("gradcheck: [2, 3, 4] -> [4, -1]") {
    check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {4, -1}); }, {input({2, 3, 4})});
  }
  SUBCASE("gradcheck: size-1 axes") {
    check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {4, 1}); }, {input({1, 4})});
  }
  SUBCASE("gradcheck: rank 0 <-> [1, 1]") {
    check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {1, 1}); }, {input({})});
    check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {}); }, {input({1, 1})});
  }
  SUBCASE("gradcheck: zero-size") {
    check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {1, -1, 3}); }, {input({0, 3})});
    check_gradients([](const std::vector<Tensor>& in) { return reshape(in[0], {3, 0}); }, {input({0, 3})});
  }
  SUBCASE("errors") {
    Tensor x = iota({2, 3});
    CHECK(matches(error_of([&] { reshape(x, {4, 2}); }), R"(reshape: cannot reshape \[2, 3\] \(6 elements\) into \[4, 2\])"));
    CHECK(matches(error_of([&] { reshape(x, {4, -1}); }), R"(reshape: cannot reshape \[2, 3\] \(6 elements\) into \[4, -1\])"));
    CHECK(matches(error_of([&] { reshape(x, {-1, -1}); }), R"(reshape: more than one -1 in \[-1, -1\] \(input shape \[2, 3\]\))"));
    // like PyTorch: -1 next to a 0 is ambiguous
    CHECK(matches(error_of([] { reshape(iota({0, 3}), {-1, 3, 0}); }), R"(reshape: cannot reshape \[0, 3\] \(0 elements\) into \[-1, 3, 0\])"));
    CHECK(matches(error_of([&] { reshape(x, {-2, -3}); }), R"(reshape: negative dimension in \[-2, -3\] \(input shape \[2, 3\]\))"));
  }
}

TEST_CASE("flatten: values, gradcheck") {
  check_values(flatten(iota({2, 3})), {6}, {0, 1, 2, 3, 4, 5});
  check_values(flatten(iota({})), {1}, {0});
  auto f = [](const std::vector<Tensor>& in) { return flatten(in[0]); };
  check_gradients(f, {input({2, 3, 4})});
  check_gradients(f, {input({1, 3, 1})});
  check_gradients(f, {input({})});
  check_gradients(f, {input({0, 3})});
}

TEST_CASE("unsqueeze: values, gradcheck") {
  check_values(unsqueeze(iota({2, 3}), 0), {1, 2, 3}, {0, 1, 2, 3, 4, 5});
  check_values(unsqueeze(iota({2, 3}), 1), {2, 1, 3}, {0, 1, 2, 3, 4, 5});
  check_values(unsqueeze(iota({2, 3}), -1), {2, 3, 1}, {0, 1, 2, 3, 4, 5});
  check_values(unsqueeze(iota({}), 0), {1}, {0});
  check_gradients([](const std::vector<Tensor>& in) { return unsqueeze(in[0], 1); }, {input({2, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return unsqueeze(in[0], -1); }, {input({1})});
  check_gradients([](const std::vector<Tensor>& in) { return unsqueeze(in[0], 0); }, {input({})});
  check_gradients([](const std::vector<Tensor>& in) { return unsqueeze(in[0], 2); }, {input({0, 3})});
  CHECK(matches(error_of([] { unsqueeze(iota({2}), 2); }), R"(unsqueeze: axis 2 is out of range for shape \[2\])"));
}

TEST_CASE("squeeze: values, gradcheck") {
  check_values(squeeze(iota({2, 1, 3}), 1), {2, 3}, {0, 1, 2, 3, 4, 5});
  check_values(squeeze(iota({3, 1}), -1), {3}, {0, 1, 2});
  check_values(squeeze(iota({1}), 0), {}, {0});
  check_gradients([](const std::vector<Tensor>& in) { return squeeze(in[0], 1); }, {input({2, 1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return squeeze(in[0], 0); }, {input({1})});
  check_gradients([](const std::vector<Tensor>& in) { return squeeze(in[0], -1); }, {input({0, 1})});
  check_values(squeeze(iota({2, 3}), 0), {2, 3}, {0, 1, 2, 3, 4, 5});  // PyTorch: an axis not of size 1 stays
  CHECK(matches(error_of([] { squeeze(iota({2, 1}), 2); }), R"(squeeze: axis 2 is out of range for shape \[2, 1\])"));
}

TEST_CASE("permute: shapes, values, gradcheck") {
  check_values(permute(iota({2, 3}), {1, 0}), {3, 2}, {0, 3, 1, 4, 2, 5});
  SUBCASE("rank 3: out[i, j, k] = x[j, k, i]") {
    Tensor x = iota({2, 3, 4});
    Tensor y = permute(x, {2, 0, 1});
    REQUIRE(y.shape() == Shape({4, 2, 3}));
    auto xv = x.to_vector<double>(), yv = y.to_vector<double>();
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 2; ++j)
        for (int k = 0; k < 3; ++k) CHECK(yv[(i * 2 + j) * 3 + k] == xv[(j * 3 + k) * 4 + i]);
  }
  SUBCASE("rank 4, the attention-head split: out[b, h, t, d] = x[b, t, h, d] (contiguous runs)") {
    Tensor x = iota({2, 3, 4, 5});
    auto xv = x.to_vector<double>(), yv = permute(x, {0, 2, 1, 3}).to_vector<double>();
    for (int b = 0; b < 2; ++b)
      for (int h = 0; h < 4; ++h)
        for (int t = 0; t < 3; ++t)
          for (int d = 0; d < 5; ++d) CHECK(yv[((b * 4 + h) * 3 + t) * 5 + d] == xv[((b * 3 + t) * 4 + h) * 5 + d]);
  }
  check_gradients([](const std::vector<Tensor>& in) { return permute(in[0], {2, 0, 1}); }, {input({2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return permute(in[0], {-1, 0, 1}); }, {input({2, 1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return permute(in[0], {1, 0}); }, {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return permute(in[0], {1, 2, 0}); }, {input({0, 2, 3})});
  Tensor x = iota({2, 3});
  CHECK(matches(error_of([&] { permute(x, {0, 0}); }), R"(permute: \[0, 0\] is not a permutation of the axes of \[2, 3\])"));
  CHECK(matches(error_of([&] { permute(x, {0, 1, 2}); }), R"(permute: 3 axes given for shape \[2, 3\])"));
  CHECK(matches(error_of([&] { permute(x, {0, 2}); }), R"(permute: axis 2 is out of range for shape \[2, 3\])"));
}

TEST_CASE("transpose: values, gradcheck") {
  check_values(transpose(iota({2, 3}), 0, 1), {3, 2}, {0, 3, 1, 4, 2, 5});
  check_values(transpose(iota({1, 2, 2}), -1, -2), {1, 2, 2}, {0, 2, 1, 3});
  check_gradients([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 2); }, {input({2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return transpose(in[0], -1, -2); }, {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return transpose(in[0], 0, 1); }, {input({0, 2})});
  CHECK(matches(error_of([] { transpose(iota({2, 3}), 0, 2); }), R"(transpose: axis 2 is out of range for shape \[2, 3\])"));
}

TEST_CASE("expand: values, gradcheck") {
  check_values(expand(tensor({1, 2, 3}, f64), {2, 3}), {2, 3}, {1, 2, 3, 1, 2, 3});
  check_values(expand(reshape(tensor({1, 2}, f64), {2, 1}), {2, 2}), {2, 2}, {1, 1, 2, 2});
  check_values(expand(scalar(7, f64), {2}), {2}, {7, 7});
  check_values(expand(iota({1}), {0}), {0}, {});
  check_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {2, 3, 4}); }, {input({3, 1})});
  check_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {4, 3}); }, {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {2, 3}); }, {input({})});
  check_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {3, 0}); }, {input({1, 0})});
  check_gradients([](const std::vector<Tensor>& in) { return expand(in[0], {2, 0}); }, {input({2, 1})});
  Tensor x = iota({2, 3});
  CHECK(matches(error_of([&] { expand(x, {4, 3}); }), R"(expand: .*\[2, 3\].*\[4, 3\])"));
  CHECK(matches(error_of([&] { expand(x, {3}); }), R"(expand: cannot expand \[2, 3\] to \[3\])"));
  CHECK(matches(error_of([&] { expand(iota({3}), {3, 1}); }), R"(expand: cannot expand \[3\] to \[3, 1\])"));
}

TEST_CASE("sum_to: values, gradcheck") {
  Tensor x = iota({2, 3});
  check_values(sum_to(x, {3}), {3}, {3, 5, 7});
  check_values(sum_to(x, {2, 1}), {2, 1}, {3, 12});
  check_values(sum_to(x, {}), {}, {15});
  check_values(sum_to(x, {2, 3}), {2, 3}, {0, 1, 2, 3, 4, 5});
  check_values(sum_to(iota({0, 3}), {1, 3}), {1, 3}, {0, 0, 0});
  check_gradients([](const std::vector<Tensor>& in) { return sum_to(in[0], {3, 1}); }, {input({2, 3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return sum_to(in[0], {1, 3}); }, {input({2, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return sum_to(in[0], {}); }, {input({2, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return sum_to(in[0], {3}); }, {input({0, 3})});
  CHECK(matches(error_of([&] { sum_to(x, {2}); }), R"(sum_to: .*\[2\].*\[2, 3\])"));
  CHECK(matches(error_of([&] { sum_to(x, {2, 3, 1}); }), R"(sum_to: cannot sum \[2, 3\] down to \[2, 3, 1\])"));
}

TEST_CASE("slice: values, gradcheck") {
  Tensor r = arange(10, f64);
  check_values(slice(r, 0, 1, 8, 3), {3}, {1, 4, 7});
  check_values(slice(r, 0, 1, 7, 3), {2}, {1, 4});
  check_values(slice(r, 0, -3, 100), {3}, {7, 8, 9});
  check_values(slice(r, 0, -100, 2), {2}, {0, 1});
  check_values(slice(r, 0, -4, -1, 2), {2}, {6, 8});
  check_values(slice(r, 0, 5, 2), {0}, {});
  check_values(slice(r, 0, 20, 30), {0}, {});
  check_values(slice(r, 0, 3, 100, 50), {1}, {3});
  check_values(slice(iota({3, 4}), 1, 0, 4, 2), {3, 2}, {0, 2, 4, 6, 8, 10});
  check_values(slice(iota({3, 4}), -2, 1, 2), {1, 4}, {4, 5, 6, 7});
  check_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 1, 0, 5, 2); }, {input({4, 5})});
  check_gradients([](const std::vector<Tensor>& in) { return slice(in[0], -1, -6, -1, 3); }, {input({3, 7})});
  check_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 0, 0, 1); }, {input({1, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 1, 3, 1); }, {input({3, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return slice(in[0], 0, -50, 50, 4); }, {input({6, 2})});
  Tensor x = iota({3, 4});
  CHECK(matches(error_of([&] { slice(x, 2, 0, 1); }), R"(slice: axis 2 is out of range for shape \[3, 4\])"));
  CHECK(matches(error_of([&] { slice(x, 0, 0, 1, 0); }), R"(slice: step must be positive, got 0 \(shape \[3, 4\]\))"));
}

TEST_CASE("embed_slice: values, gradcheck") {
  check_values(embed_slice(tensor({1, 2, 3}, f64), {7}, 0, 1, 7, 2), {7}, {0, 1, 0, 2, 0, 3, 0});
  check_values(embed_slice(tensor({{1, 2}}, f64), {3, 2}, 0, -1, 3), {3, 2}, {0, 0, 0, 0, 1, 2});
  check_values(embed_slice(iota({2, 0}), {2, 3}, 1, 2, 2), {2, 3}, {0, 0, 0, 0, 0, 0});
  SUBCASE("a step-1 slice in the middle of an axis: zeros before and after it, in a reused buffer") {
    // a buffer of the same size freed just before: the pool hands it back with its 7s
    { Tensor dirty = full({2, 6, 3}, 7.0, f64); }
    Tensor y = embed_slice(iota({2, 2, 3}), {2, 6, 3}, 1, 3, 5);
    std::vector<double> expected(36, 0.0);
    for (int o = 0; o < 2; ++o)
      for (int k = 0; k < 6; ++k) expected[o * 18 + 9 + k] = o * 6 + k;
    check_values(y, {2, 6, 3}, expected);
  }
  SUBCASE("adjoint of slice: <slice(x), y> = <x, embed_slice(y)>") {
    Tensor x = input({5, 7}, -1, 1, 3), y = input({5, 2}, -1, 1, 4);
    double lhs = sum(slice(x, 1, 1, 7, 4) * y).item();
    double rhs = sum(x * embed_slice(y, {5, 7}, 1, 1, 7, 4)).item();
    CHECK(lhs == doctest::Approx(rhs).epsilon(1e-12));
  }
  check_gradients([](const std::vector<Tensor>& in) { return embed_slice(in[0], {3, 6}, 1, 0, 6, 2); }, {input({3, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return embed_slice(in[0], {4, 2}, 0, -1, 10); }, {input({1, 2})});
  check_gradients([](const std::vector<Tensor>& in) { return embed_slice(in[0], {4, 3}, 0, 2, 2); }, {input({0, 3})});
  CHECK(matches(error_of([] { embed_slice(iota({2}), {7}, 0, 1, 7, 2); }),
                R"(embed_slice: a slice of \[7\] along axis 0 has shape \[3\], got \[2\])"));
  CHECK(matches(error_of([] { embed_slice(iota({2}), {2, 3}, 0, 0, 2); }), R"(embed_slice: cannot embed \[2\] into \[2, 3\])"));
}

TEST_CASE("concat: values, gradcheck") {
  check_values(concat({tensor({{1, 2}}, f64), tensor({{3, 4}, {5, 6}}, f64)}, 0), {3, 2}, {1, 2, 3, 4, 5, 6});
  check_values(concat({reshape(tensor({1, 2}, f64), {2, 1}), tensor({{3, 4}, {5, 6}}, f64)}, -1), {2, 3}, {1, 3, 4, 2, 5, 6});
  check_values(concat({iota({0, 2}), tensor({{7, 8}}, f64)}, 0), {1, 2}, {7, 8});
  auto f = [](const std::vector<Tensor>& in) { return concat(in, 0); };
  check_gradients(f, {input({2, 3}, -1, 1, 1), input({1, 3}, -1, 1, 2), input({4, 3}, -1, 1, 3)});
  check_gradients([](const std::vector<Tensor>& in) { return concat(in, -1); },
                  {input({2, 1}, -1, 1, 1), input({2, 3}, -1, 1, 2)});
  check_gradients(f, {input({0, 3}, -1, 1, 1), input({2, 3}, -1, 1, 2)});
  check_gradients(f, {input({1})});
  SUBCASE("a constant piece") {
    check_gradients(f, {input({2, 2}), ones({1, 2}, f64)});
  }
  Tensor a = iota({2, 3});
  CHECK(matches(error_of([&] { concat({a, iota({2, 4})}, 0); }),
                R"(concat: tensors must match except along axis 0: \[2, 3\] f64 and \[2, 4\] f64)"));
  CHECK(matches(error_of([&] { concat({a, iota({2, 3, 1})}, 1); }), R"(concat: .*\[2, 3\] f64 and \[2, 3, 1\] f64)"));
  CHECK(matches(error_of([&] { concat({a, ones({2, 3})}, 0); }),
                R"(concat: tensors must match except along axis 0: \[2, 3\] f64 and \[2, 3\] f32)"));
  CHECK(matches(error_of([&] { concat({a}, 2); }), R"(concat: axis 2 is out of range for shape \[2, 3\])"));
  CHECK(matches(error_of([] { concat({}, 0); }), R"(concat: expects at least one tensor)"));
}

TEST_CASE("split and concat along the last axis copy rows of every length, f32 and f64") {
  // Rows of a few bytes to several SIMD widths (moved inline, the last width overlapping) and
  // past them (memcpy): every value lands where it belongs, and the join gives back the source.
  for (Dtype dtype : {f32, f64}) {
    for (std::int64_t row = 1; row <= 80; ++row) {
      CAPTURE(row);
      Tensor x = reshape(arange(3 * (2 * row + 3), dtype), {3, 2 * row + 3});
      auto pieces = split(x, {row, 3, row}, -1);
      const std::vector<double> v = x.to_vector<double>(), a = pieces[0].to_vector<double>(),
                                b = pieces[1].to_vector<double>(), c = pieces[2].to_vector<double>();
      bool placed = true;
      for (std::int64_t r = 0; r < 3; ++r)
        for (std::int64_t j = 0; j < row + 3 + row; ++j) {
          const double want = v[r * (2 * row + 3) + j];
          const double got = j < row ? a[r * row + j] : j < row + 3 ? b[r * 3 + j - row] : c[r * row + j - row - 3];
          placed = placed && got == want;
        }
      CHECK(placed);
      CHECK(concat(pieces, -1).to_vector<double>() == v);
    }
  }
}

TEST_CASE("concat along the outermost axis: a large join split across two threads lands every value") {
  // Joins of megabytes along axis 0 (attention's q, k, v gradients) copy one contiguous range
  // per piece, in parts on both threads; an odd element count leaves a part of odd bytes.
  const int saved = num_threads();
  set_num_threads(2);
  detail::assume_cores_far_apart(false);
  for (Dtype dtype : {f32, f64}) {
    Tensor a = reshape(arange(3 * 100001, dtype), {1, 3, 100001});
    Tensor b = reshape(arange(2 * 100001, dtype) - 1e6, {1, 2, 100001});
    const std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
    std::vector<double> want = va;
    want.insert(want.end(), vb.begin(), vb.end());
    CHECK(concat({a, b}, 1).to_vector<double>() == want);  // outer extent 1: axis 1 is one range
    CHECK(concat({a, b}, 1).shape() == Shape{1, 5, 100001});
    Tensor joined = concat({reshape(a, {3, 100001}), reshape(b, {2, 100001})}, 0);
    CHECK(joined.to_vector<double>() == want);
    auto pieces = split(joined, {3, 2}, 0);  // and back: views of the join
    CHECK(pieces[0].to_vector<double>() == va);
    CHECK(pieces[1].to_vector<double>() == vb);
  }
  detail::assume_cores_far_apart(std::nullopt);
  set_num_threads(saved);
}

TEST_CASE("stack: values, gradcheck") {
  Tensor a = tensor({1, 2}, f64), b = tensor({3, 4}, f64);
  check_values(stack({a, b}, 0), {2, 2}, {1, 2, 3, 4});
  check_values(stack({a, b}, 1), {2, 2}, {1, 3, 2, 4});
  check_values(stack({a, b, a}, -1), {2, 3}, {1, 3, 1, 2, 4, 2});
  check_values(stack({scalar(5, f64), scalar(6, f64)}, 0), {2}, {5, 6});
  check_gradients([](const std::vector<Tensor>& in) { return stack(in, 1); },
                  {input({2, 3}, -1, 1, 1), input({2, 3}, -1, 1, 2)});
  check_gradients([](const std::vector<Tensor>& in) { return stack(in, 0); }, {input({}, -1, 1, 1), input({}, -1, 1, 2)});
  check_gradients([](const std::vector<Tensor>& in) { return stack(in, -1); },
                  {input({1, 3}, -1, 1, 1), input({1, 3}, -1, 1, 2), input({1, 3}, -1, 1, 3)});
  check_gradients([](const std::vector<Tensor>& in) { return stack(in, 2); }, {input({0, 2}, -1, 1, 1), input({0, 2}, -1, 1, 2)});
  CHECK(matches(error_of([] { stack({iota({2, 3}), iota({3, 2})}, 0); }),
                R"(stack: tensors must have equal shapes: \[2, 3\] and \[3, 2\])"));
  CHECK(matches(error_of([] { stack({iota({2}), iota({2})}, 2); }), R"(stack: axis 2 is out of range for shape \[2\])"));
  CHECK(matches(error_of([] { stack({}, 0); }), R"(stack: expects at least one tensor)"));
}

TEST_CASE("split: values, gradcheck") {
  auto parts = split(arange(6, f64), {1, 2, 3}, 0);
  REQUIRE(parts.size() == 3);
  check_values(parts[0], {1}, {0});
  check_values(parts[1], {2}, {1, 2});
  check_values(parts[2], {3}, {3, 4, 5});
  auto cols = split(iota({2, 3}), {2, 0, 1}, 1);
  REQUIRE(cols.size() == 3);
  check_values(cols[0], {2, 2}, {0, 1, 3, 4});
  check_values(cols[1], {2, 0}, {});
  check_values(cols[2], {2, 1}, {2, 5});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(split(in[0], {1, 2, 3}, 0)); }, {input({6, 2})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(split(in[0], {2, 0, 3}, -1)); }, {input({2, 5})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(split(in[0], {1}, 0)); }, {input({1, 4})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(split(in[0], {0, 0}, 0)); }, {input({0, 3})});
  Tensor x = iota({4, 2});
  CHECK(matches(error_of([&] { split(x, {1, 2}, 0); }), R"(split: sizes \[1, 2\] add up to 3, but axis 0 of \[4, 2\] has 4)"));
  CHECK(matches(error_of([&] { split(x, {5, -1}, 0); }), R"(split: negative size -1 \(shape \[4, 2\]\))"));
  CHECK(matches(error_of([&] { split(x, {4}, 2); }), R"(split: axis 2 is out of range for shape \[4, 2\])"));
}

TEST_CASE("unbind_permuted: unbind(permute(x, dims), 0) in one node, the same values and gradients") {
  const std::vector<std::vector<std::int64_t>> orders{{2, 0, 3, 1, 4}, {0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {-3, 0, 1, 3, 4}};
  for (const auto& dims : orders) {
    CAPTURE(dims.front());
    Tensor x = iota({2, 3, 3, 2, 4});
    auto pieces = unbind_permuted(x, dims), expected = unbind(permute(x, dims), 0);
    REQUIRE(pieces.size() == expected.size());
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      CHECK(pieces[i].shape() == expected[i].shape());
      CHECK(pieces[i].to_vector<double>() == expected[i].to_vector<double>());
    }
    auto f = [dims](const std::vector<Tensor>& in) { return join_pieces(unbind_permuted(in[0], dims)); };
    check_gradients(f, {input({2, 3, 3, 2, 4})});
  }
  // the backward's direct copy (no create_graph) against unbind then permute, f32, with a piece unused
  Tensor a = reshape(arange(2 * 5 * 3 * 4, f32), {2, 5, 3, 4}).requires_grad_(), b = a.detach().requires_grad_();
  auto pa = unbind_permuted(a, {2, 0, 1, 3});
  auto pb = unbind(permute(b, {2, 0, 1, 3}), 0);
  (sum(pa[0] * pa[0]) + sum(pa[2] * 3.0)).backward();
  (sum(pb[0] * pb[0]) + sum(pb[2] * 3.0)).backward();
  CHECK(a.grad().to_vector<double>() == b.grad().to_vector<double>());
  // rank 1: scalar pieces; size-one and zero-size axes
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(unbind_permuted(in[0], {0})); }, {input({3})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(unbind_permuted(in[0], {1, 0, 2})); },
                  {input({1, 2, 1})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(unbind_permuted(in[0], {1, 0})); }, {input({0, 2})});
  CHECK(unbind_permuted(iota({2, 0}), {1, 0}).empty());
  CHECK(matches(error_of([] { unbind_permuted(iota({2, 3}), {0}); }), R"(permute: 1 axes given for shape \[2, 3\])"));
  CHECK(matches(error_of([] { unbind_permuted(iota({2, 3}), {1, 1}); }),
                R"(permute: \[1, 1\] is not a permutation of the axes of \[2, 3\])"));
  CHECK(matches(error_of([] { unbind_permuted(scalar(1, f64), {}); }),
                R"(unbind_permuted: expects a tensor of rank >= 1, got shape \[\])"));
}

TEST_CASE("chunk: values, gradcheck") {
  auto sizes_of = [](const std::vector<Tensor>& pieces) {
    std::vector<std::int64_t> sizes;
    for (const auto& p : pieces) sizes.push_back(p.size(0));
    return sizes;
  };
  auto parts = chunk(arange(5, f64), 2, 0);
  REQUIRE(parts.size() == 2);
  check_values(parts[0], {3}, {0, 1, 2});
  check_values(parts[1], {2}, {3, 4});
  CHECK(sizes_of(chunk(arange(6, f64), 3, 0)) == std::vector<std::int64_t>{2, 2, 2});
  CHECK(sizes_of(chunk(arange(4, f64), 3, 0)) == std::vector<std::int64_t>{2, 2});
  CHECK(sizes_of(chunk(arange(2, f64), 5, 0)) == std::vector<std::int64_t>{1, 1});
  CHECK(sizes_of(chunk(iota({0}), 2, 0)) == std::vector<std::int64_t>{0});
  auto cols = chunk(iota({2, 4}), 2, -1);
  REQUIRE(cols.size() == 2);
  check_values(cols[1], {2, 2}, {2, 3, 6, 7});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(chunk(in[0], 3, 1)); }, {input({2, 7})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(chunk(in[0], 2, 0)); }, {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return join_pieces(chunk(in[0], 2, 0)); }, {input({0, 3})});
  CHECK(matches(error_of([] { chunk(iota({4}), 0, 0); }), R"(chunk: chunks must be positive, got 0)"));
  CHECK(matches(error_of([] { chunk(iota({4}), 2, 1); }), R"(chunk: axis 1 is out of range for shape \[4\])"));
}

TEST_CASE("pad: values, gradcheck") {
  check_values(pad(tensor({1, 2}, f64), 0, 2, 1, -1), {5}, {-1, -1, 1, 2, -1});
  check_values(pad(tensor({{1, 2}, {3, 4}}, f64), 1, 1, 0), {2, 3}, {0, 1, 2, 0, 3, 4});
  check_values(pad(tensor({{1, 2}, {3, 4}}, f64), 0, 0, 1, 9), {3, 2}, {1, 2, 3, 4, 9, 9});
  check_values(pad(iota({0, 2}), 0, 1, 1, -1), {2, 2}, {-1, -1, -1, -1});
  check_values(pad(tensor({1, 2}, f64), 0, 0, 0, 5), {2}, {1, 2});
  check_gradients([](const std::vector<Tensor>& in) { return pad(in[0], 1, 1, 2, -1); }, {input({2, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return pad(in[0], 0, 0, 2); }, {input({1, 3})});
  check_gradients([](const std::vector<Tensor>& in) { return pad(in[0], -1, 0, 0, 3); }, {input({3})});
  check_gradients([](const std::vector<Tensor>& in) { return pad(in[0], 0, 1, 1, 5); }, {input({0, 3})});
  // negative amounts crop (PyTorch's F.pad), cropping past the axis is an error
  check_values(pad(iota({5}), 0, -1, -2), {2}, {1, 2});
  check_values(pad(iota({4}), 0, -1, 2, 7), {5}, {1, 2, 3, 7, 7});
  check_gradients([](const std::vector<Tensor>& in) { return pad(in[0], 1, -1, 2); }, {input({2, 4})});
  CHECK(matches(error_of([] { pad(iota({3}), 0, -2, -2); }),
                R"(pad: padding \(-2, -2\) of axis 0 of shape \[3\] crops more than the axis holds)"));
  CHECK(matches(error_of([] { pad(iota({3}), 1, 1, 0); }), R"(pad: axis 1 is out of range for shape \[3\])"));
}

TEST_CASE("split and unbind: one node with several outputs; unused pieces get zero gradient") {
  Tensor x = input({3, 4, 2});
  auto pieces = split(x, {1, 3}, 1);
  CHECK(pieces[0].grad_fn() == pieces[1].grad_fn());
  CHECK(pieces[1].impl().output_nr == 1);
  // only the second piece is used: the first piece's gradient is zero
  sum(pieces[1] * pieces[1]).backward();
  Tensor expected = concat({zeros({3, 1, 2}, f64), 2.0 * slice(x, 1, 1, 4)}, 1);
  check_close(x.grad(), expected);
  // grad() with respect to one output of a multi-output node
  auto parts = unbind(x, 1);
  REQUIRE(parts.size() == 4);
  CHECK(parts[2].shape() == Shape{3, 2});
  Tensor y = sum(parts[2] * parts[3]);
  auto g = autograd::grad({y}, {parts[2]}, {}, false, true)[0];
  check_close(g, parts[3].detach());
  check_gradients([](const std::vector<Tensor>& in) { return stack(unbind(in[0], 1), 0); }, {input({2, 3, 2})});
  check_gradients([](const std::vector<Tensor>& in) {
    auto u = unbind(in[0], 0);
    return u[1] * u[2];  // piece 0 unused
  }, {input({3, 4})});
}
