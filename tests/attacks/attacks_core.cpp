// Attacks on tensor creation, shapes and dtypes.
#include <cmath>
#include <cstdint>
#include <limits>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

Tensor iota(const Shape& shape, Dtype dtype = f32) { return reshape(arange(0, static_cast<double>(numel(shape)), 1, dtype), shape); }

Register creation{"creation", {
  {"empty with a negative size", [] { expect_error([] { empty({2, -1}); }, "empty.*-1"); }},
  {"zeros whose size product overflows int64", [] { expect_error([] { zeros({1ll << 32, 1ll << 32}); }, "zeros|empty"); }},
  {"ones of 2^40 float32 elements (4 TiB) is refused, not std::bad_alloc",
   [] { expect_error([] { ones({1ll << 40}); }, "ones|empty.*1099511627776"); }},
  {"empty of 2^33 float64 elements (64 GiB, above the address limit)",
   [] { expect_error([] { empty({1ll << 33}, f64); }, "empty.*8589934592"); }},
  {"full with NaN keeps NaN", [] { expect_values(full({3}, kNaN), {kNaN, kNaN, kNaN}); }},
  {"full with -inf", [] { expect_values(full({2}, -kInf, f64), {-kInf, -kInf}); }},
  {"full of i64 with NaN", [] { expect_error([] { full({2}, kNaN, i64); }, "full.*nan"); }},
  {"full of i64 with 1e30", [] { expect_error([] { full({2}, 1e30, i64); }, "full.*1e\\+30"); }},
  {"zero-size creation is fine", [] { expect(zeros({0, 5}).numel() == 0 && zeros({0, 5}).shape() == Shape{0, 5}, "shape [0, 5]"); }},
  {"arange step 0", [] { expect_error([] { arange(0, 5, 0); }, "arange.*step"); }},
  {"arange NaN start", [] { expect_error([] { arange(kNaN, 5, 1); }, "arange.*nan"); }},
  {"arange infinite stop", [] { expect_error([] { arange(0, kInf, 1); }, "arange.*inf"); }},
  {"arange of 1e18 elements", [] { expect_error([] { arange(0, 1e18, 1); }, "arange|empty"); }},
  {"arange with the step pointing away from stop (PyTorch refuses)",
   [] { expect_error([] { arange(0, 5, -1); }, "arange.*step"); }},
  {"arange(0, 1, 0.1) has 10 elements like PyTorch", [] { expect(arange(0, 1, 0.1, f64).numel() == 10, "10 elements"); }},
  {"arange(3, 3) is empty", [] { expect(arange(3, 3).numel() == 0, "0 elements"); }},
  {"arange of i64 with a fractional step", [] { expect_values(arange(0, 3, 1.5, i64), {0, 1}); }},
  {"ragged nested list", [] { expect_error([] { tensor({{1.0, 2.0}, {3.0}}); }, "ragged"); }},
  {"randint with low == high", [] { expect_error([] { randint(3, 3, {2}); }, "randint.*3"); }},
  {"randint over the whole int64 range", [] {
     Tensor t = randint(kMin, kMax, {1000});
     expect(t.numel() == 1000, "1000 draws");
   }},
  {"uniform with low > high", [] { expect_error([] { uniform({2}, 1, 0); }, "uniform.*1.*0"); }},
  {"uniform with a NaN bound", [] { expect_error([] { uniform({2}, kNaN, 1); }, "uniform.*nan"); }},
  {"randn of an overflowing shape", [] { expect_error([] { randn({kMax, 2}); }, "randn|empty"); }},
  {"item of a 2-element tensor", [] { expect_error([] { (void)ones({2}).item(); }, "item.*\\[2\\]"); }},
  {"item of an empty tensor", [] { expect_error([] { (void)ones({0}).item(); }, "item.*\\[0\\]"); }},
  {"data<double>() of a float32 tensor", [] { expect_error([] { (void)ones({2}).data<double>(); }, "data<f64>.*f32"); }},
  {"shape of an undefined tensor", [] { expect_error([] { (void)Tensor().shape(); }, "undefined"); }},
  {"size of an axis out of range", [] { expect_error([] { (void)ones({2, 3}).size(2); }, "size.*2.*\\[2, 3\\]"); }},
  {"tensor of a double list to i64 with NaN", [] { expect_error([] { tensor({1.0, kNaN}, i64); }, "i64"); }},
}};

Register shapes{"shapes", {
  {"reshape to another element count", [] { expect_error([] { reshape(ones({2, 3}), {4, 2}); }, "reshape.*\\[2, 3\\].*\\[4, 2\\]"); }},
  {"reshape whose product overflows int64", [] { expect_error([] { reshape(ones({4}), {1ll << 62, 4}); }, "reshape"); }},
  {"reshape whose product wraps around to the element count",
   [] { expect_error([] { reshape(ones({4}), {(1ll << 62) + 1, 4}); }, "reshape"); }},
  {"reshape with a negative size other than -1", [] { expect_error([] { reshape(ones({4}), {-2, -2}); }, "reshape"); }},
  {"reshape with two -1", [] { expect_error([] { reshape(ones({4}), {-1, -1}); }, "reshape.*-1"); }},
  {"reshape of 0 elements with -1 and a 0 (ambiguous, PyTorch refuses)",
   [] { expect_error([] { reshape(ones({0}), {-1, 0}); }, "reshape"); }},
  {"reshape infers -1", [] { expect(reshape(ones({2, 6}), {3, -1}).shape() == Shape{3, 4}, "shape [3, 4]"); }},
  {"permute with a repeated axis", [] { expect_error([] { permute(ones({2, 3}), {0, 0}); }, "permute"); }},
  {"permute with too few axes", [] { expect_error([] { permute(ones({2, 3, 4}), {1, 0}); }, "permute"); }},
  {"permute with an axis out of range", [] { expect_error([] { permute(ones({2, 3}), {0, 5}); }, "permute.*5"); }},
  {"permute with INT64_MIN", [] { expect_error([] { permute(ones({2, 3}), {kMin, 0}); }, "permute"); }},
  {"transpose axis out of range", [] { expect_error([] { transpose(ones({2, 3}), 0, 2); }, "transpose.*2"); }},
  {"transpose with negative axes", [] { expect(transpose(iota({2, 3}), -1, -2).shape() == Shape{3, 2}, "shape [3, 2]"); }},
  {"squeeze an axis that is not 1 (PyTorch leaves it)", [] { expect(squeeze(ones({2, 3}), 0).shape() == Shape{2, 3}, "shape [2, 3]"); }},
  {"squeeze an axis of 1", [] { expect(squeeze(ones({2, 1}), 1).shape() == Shape{2}, "shape [2]"); }},
  {"squeeze an axis out of range", [] { expect_error([] { squeeze(ones({2, 3}), 4); }, "squeeze.*4"); }},
  {"unsqueeze at rank + 1", [] { expect_error([] { unsqueeze(ones({2, 3}), 3); }, "unsqueeze.*3"); }},
  {"unsqueeze at the end", [] { expect(unsqueeze(ones({2, 3}), 2).shape() == Shape{2, 3, 1}, "shape [2, 3, 1]"); }},
  {"unsqueeze at -1", [] { expect(unsqueeze(ones({2, 3}), -1).shape() == Shape{2, 3, 1}, "shape [2, 3, 1]"); }},
  {"expand to an incompatible shape", [] { expect_error([] { expand(ones({2, 3}), {2, 4}); }, "expand.*\\[2, 3\\].*\\[2, 4\\]"); }},
  {"expand to fewer axes", [] { expect_error([] { expand(ones({2, 3}), {3}); }, "expand"); }},
  {"expand to an overflowing shape", [] { expect_error([] { expand(ones({1, 1}), {kMax, kMax}); }, "expand"); }},
  {"slice with start > stop is empty", [] { expect(slice(iota({5}), 0, 3, 1).numel() == 0, "0 elements"); }},
  {"slice past the end is clamped", [] { expect_values(slice(iota({5}), 0, 3, 100), {3, 4}); }},
  {"slice from INT64_MIN to INT64_MAX is the whole axis", [] { expect_values(slice(iota({3}), 0, kMin, kMax), {0, 1, 2}); }},
  {"slice with a step of 0", [] { expect_error([] { slice(ones({5}), 0, 0, 5, 0); }, "slice.*step"); }},
  {"slice with a negative step (PyTorch refuses)", [] { expect_error([] { slice(ones({5}), 0, 4, 0, -1); }, "slice.*step"); }},
  {"slice with a huge step", [] { expect_values(slice(iota({5}), 0, 1, 5, kMax), {1}); }},
  {"concat of nothing", [] { expect_error([] { concat({}, 0); }, "concat"); }},
  {"concat with mismatched other axes", [] { expect_error([] { concat({ones({2, 3}), ones({2, 4})}, 0); }, "concat.*\\[2, 3\\].*\\[2, 4\\]"); }},
  {"concat with an axis out of range", [] { expect_error([] { concat({ones({2}), ones({2})}, 1); }, "concat.*1"); }},
  {"concat of different ranks", [] { expect_error([] { concat({ones({2}), ones({2, 1})}, 0); }, "concat"); }},
  {"concat with an empty piece", [] { expect_values(concat({iota({2}), ones({0})}, 0), {0, 1}); }},
  {"stack of mismatched shapes", [] { expect_error([] { stack({ones({2}), ones({3})}, 0); }, "stack|concat"); }},
  {"stack of nothing", [] { expect_error([] { stack({}, 0); }, "stack"); }},
  {"split sizes that do not sum to the axis", [] { expect_error([] { split(ones({5}), {2, 2}, 0); }, "split.*5"); }},
  {"split with a negative size", [] { expect_error([] { split(ones({5}), {7, -2}, 0); }, "split.*-2"); }},
  {"split sizes whose sum overflows", [] { expect_error([] { split(ones({5}), {kMax, kMax, 7}, 0); }, "split"); }},
  {"chunk into 0 pieces", [] { expect_error([] { chunk(ones({5}), 0, 0); }, "chunk.*0"); }},
  {"chunk into a negative count", [] { expect_error([] { chunk(ones({5}), -3, 0); }, "chunk.*-3"); }},
  {"chunk into INT64_MAX pieces gives one per element", [] { expect(chunk(ones({3, 2}), kMax, 0).size() == 3, "3 pieces"); }},
  {"chunk of 5 into 3 like PyTorch (2, 2, 1)", [] {
     auto pieces = chunk(iota({5}), 3, 0);
     expect(pieces.size() == 3 && pieces[2].numel() == 1, "pieces of 2, 2, 1");
   }},
  {"pad with an overflowing amount", [] { expect_error([] { pad(ones({2}), 0, kMax, 1); }, "pad"); }},
  {"pad with a negative amount larger than the axis", [] { expect_error([] { pad(ones({2}), 0, -3, 0); }, "pad.*-3"); }},
  {"unbind of an axis out of range", [] { expect_error([] { unbind(ones({2, 3}), 2); }, "unbind.*2"); }},
  {"sum_to an incompatible shape", [] { expect_error([] { sum_to(ones({2, 3}), {4}); }, "sum_to.*\\[4\\].*\\[2, 3\\]"); }},
  {"broadcasting add of incompatible shapes", [] { expect_error([] { ones({2, 3}) + ones({4}); }, "add.*\\[2, 3\\].*\\[4\\]"); }},
  {"broadcasting mul of [0] with [3] (PyTorch refuses)", [] { expect_error([] { ones({0}) * ones({3}); }, "mul"); }},
  {"broadcasting [0, 1] with [1, 3] is [0, 3]", [] { expect((ones({0, 1}) + ones({1, 3})).shape() == Shape{0, 3}, "shape [0, 3]"); }},
  {"matmul with mismatched inner sizes", [] { expect_error([] { matmul(ones({2, 3}), ones({4, 5})); }, "matmul.*\\[2, 3\\].*\\[4, 5\\]"); }},
  {"matmul with a zero-size output", [] { expect(matmul(ones({0, 3}), ones({3, 4})).shape() == Shape{0, 4}, "shape [0, 4]"); }},
  {"matmul with a zero inner size gives zeros", [] { expect_values(matmul(ones({2, 0}), ones({0, 2})), {0, 0, 0, 0}); }},
  {"matmul of rank-1 tensors is their dot product (PyTorch)", [] {
     Tensor y = matmul(iota({3}), iota({3}));
     expect(y.shape() == Shape{}, "a 0-d result");
     expect_values(y, {5});
   }},
  {"matmul of a vector and a matrix of another size", [] { expect_error([] { matmul(ones({3}), ones({4, 2})); }, "matmul"); }},
  {"matmul of batches that do not broadcast", [] { expect_error([] { matmul(ones({2, 2, 3}), ones({3, 3, 4})); }, "matmul"); }},
  {"linear with the wrong in-features", [] { expect_error([] { linear(ones({2, 3}), ones({4, 5})); }, "linear.*\\[2, 3\\].*\\[4, 5\\]"); }},
  {"linear with a bias of the wrong size", [] { expect_error([] { linear(ones({2, 3}), ones({4, 3}), ones({5})); }, "linear.*\\[5\\]"); }},
  {"index_select with an index past the end", [] { expect_error([] { index_select(ones({3}), 0, tensor({3}, i64)); }, "index_select.*3"); }},
  {"index_select with a negative index", [] { expect_error([] { index_select(ones({3}), 0, tensor({-1}, i64)); }, "index_select.*-1"); }},
  {"gather with an index of the wrong rank", [] { expect_error([] { gather(ones({3, 2}), 1, tensor({0}, i64)); }, "gather"); }},
  {"gather with an index out of range", [] { expect_error([] { gather(ones({2, 2}), 1, tensor({{0.0, 2.0}, {1.0, 0.0}}, i64)); }, "gather.*2"); }},
  {"scatter_add into an overflowing shape", [] { expect_error([] { scatter_add({kMax, 2}, 0, tensor({0}, i64), ones({1})); }, "scatter_add"); }},
  {"index_add with a source of the wrong shape", [] { expect_error([] { index_add({3, 2}, 0, tensor({0, 1}, i64), ones({2, 3})); }, "index_add"); }},
  {"unfold with a window longer than the axis gives zero windows", [] { expect(unfold(ones({4}), 0, 5).shape() == Shape{0, 5}, "shape [0, 5]"); }},
  {"unfold with a step of 0", [] { expect_error([] { unfold(ones({4}), 0, 2, 0); }, "unfold.*step"); }},
  {"unfold with a dilation whose span overflows gives zero windows", [] { expect(unfold(ones({4}), 0, 3, 1, kMax).shape() == Shape{0, 3}, "shape [0, 3]"); }},
  {"unfold with a window of 0", [] { expect_error([] { unfold(ones({4}), 0, 0); }, "unfold.*0"); }},
  {"fold into a shape that does not match the windows", [] { expect_error([] { fold(ones({2, 3}), {9}, 0, 3, 1); }, "fold"); }},
  {"roll of an empty tensor", [] { expect(roll(ones({0}), 3, 0).numel() == 0, "0 elements"); }},
  {"roll by INT64_MIN", [] { /* INT64_MIN = 1 (mod 3) */ expect_values(roll(iota({3}), kMin, 0), {2, 0, 1}); }},
  {"max of an empty tensor (PyTorch refuses)", [] { expect_error([] { xgrad::max(ones({0})); }, "max.*\\[0\\]"); }},
  {"max along an empty axis (PyTorch refuses)", [] { expect_error([] { xgrad::max(ones({2, 0}), 1); }, "max.*\\[2, 0\\]"); }},
  {"max along an axis of [3, 0] (another axis empty; found by fuzz_graph)", [] {
     auto m = xgrad::max(ones({3, 0}), 0);
     expect(m.values.shape() == Shape{0} && m.indices.shape() == Shape{0}, "values and indices of shape [0]");
   }},
  {"sum of an empty tensor is 0", [] { expect_values(sum(ones({0})), {0}); }},
  {"mean of an empty tensor is NaN", [] { expect_values(mean(ones({0})), {kNaN}); }},
  {"mean along an empty axis is NaN per row", [] { expect_values(mean(ones({2, 0}), 1), {kNaN, kNaN}); }},
  {"logsumexp along an empty axis is -inf", [] { expect_values(logsumexp(ones({2, 0}), 1), {-kInf, -kInf}); }},
  {"sum along a repeated axis (PyTorch refuses)", [] { expect_error([] { sum(ones({2, 3}), {1, 1}); }, "sum.*repeated axis"); }},
  {"sum along an axis out of range", [] { expect_error([] { sum(ones({2, 3}), 2); }, "sum.*2"); }},
  {"softmax along an axis out of range", [] { expect_error([] { softmax(ones({2, 3}), 2); }, "softmax.*2"); }},
  {"softmax of an empty axis is empty", [] { expect(softmax(ones({2, 0}), 1).shape() == Shape{2, 0}, "shape [2, 0]"); }},
  {"softmax of a row of -inf is NaN like PyTorch", [] { expect_values(softmax(full({1, 2}, -kInf), 1), {kNaN, kNaN}); }},
  {"log_softmax_gather with a class index out of range",
   [] { expect_error([] { log_softmax_gather(ones({2, 3}), 1, tensor({{0.0}, {3.0}}, i64)); }, "log_softmax_gather.*3"); }},
}};

Register dtypes{"dtypes", {
  {"add of float32 and float64", [] { expect_error([] { ones({2}) + ones({2}, f64); }, "add.*f32.*f64"); }},
  {"tanh of int64", [] { expect_error([] { xgrad::tanh(ones({2}, i64)); }, "tanh.*i64"); }},
  {"exp of int64", [] { expect_error([] { xgrad::exp(ones({2}, i64)); }, "exp.*i64"); }},
  {"matmul of int64", [] { expect_error([] { matmul(ones({2, 2}, i64), ones({2, 2}, i64)); }, "matmul.*i64"); }},
  {"softmax of int64", [] { expect_error([] { softmax(ones({2, 2}, i64), 1); }, "softmax.*i64"); }},
  {"requires_grad_ on int64 (only floating point tensors can require gradients)",
   [] { expect_error([] { ones({2}, i64).requires_grad_(); }, "requires_grad.*i64"); }},
  {"index_select with a float32 index", [] { expect_error([] { index_select(ones({3}), 0, tensor({0.0})); }, "index_select.*f32"); }},
  {"gather with a float64 index", [] { expect_error([] { gather(ones({3}), 0, tensor({0.0}, f64)); }, "gather.*f64"); }},
  {"sum of int64 is exact", [] { expect_values(sum(full({3}, 3e15, i64)), {9e15}); }},
  {"to(f32) of 1e300 is inf", [] { expect_values(full({1}, 1e300, f64).to(f32), {kInf}); }},
  {"to(i64) of NaN", [] { expect_error([] { full({1}, kNaN).to(i64); }, "to:.*nan.*i64"); }},
  {"to(i64) of 1e30", [] { expect_error([] { full({1}, 1e30, f64).to(i64); }, "to.*i64"); }},
  {"copy_ between dtypes converts like PyTorch", [] {
     Tensor dst = zeros({2}, f64);
     dst.copy_(full({2}, 0.5));
     expect_values(dst, {0.5, 0.5});
   }},
  {"copy_ from another shape", [] { expect_error([] { zeros({2}).copy_(ones({3})); }, "copy_.*\\[3\\].*\\[2\\]"); }},
  {"where with a condition of another shape", [] { expect_error([] { where(ones({3}), ones({2}), ones({2})); }, "where"); }},
  {"comparison of float32 and int64", [] { expect_error([] { eq(ones({2}), ones({2}, i64)); }, "eq.*f32.*i64"); }},
}};

}  // namespace
}  // namespace xgrad::attacks
