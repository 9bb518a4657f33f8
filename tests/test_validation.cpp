// Input validation everywhere users touch: every public op and layer given a wrong rank, shape or
// dtype, a negative or oversized index, an empty batch or a zero-length sequence. Each row of the
// error tables must throw xgrad::Error (no other exception, no crash, no garbage) with a message
// that names the op and the offending shapes or values. The valid-edge tables hold the cases that
// PyTorch accepts (an empty batch through Linear, ...): those must give the empty or neutral result.
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

namespace nn = xgrad::nn;
namespace optim = xgrad::optim;
namespace data = xgrad::data;

/// One call that must fail: the xgrad::Error's message must match `pattern` (std::regex_search).
struct ErrorCase {
  const char* name;
  std::function<void()> run;
  const char* pattern;
};

/// One edge that must work: the result must have `shape` (and pass `check`, when given).
struct ValidCase {
  const char* name;
  std::function<Tensor()> run;
  Shape shape;
  std::function<void(const Tensor&)> check = {};
};

void check_errors(const std::vector<ErrorCase>& rows) {
  for (const auto& row : rows) {
    INFO("row: ", std::string(row.name));  // (a char* would print as a pointer)
    std::string message, other;
    bool threw = false;
    try {
      row.run();
    } catch (const Error& e) {
      threw = true;
      message = e.what();
    } catch (const std::exception& e) {
      other = std::string("a non-xgrad exception: ") + e.what();
    } catch (...) {
      other = "an exception of unknown type";
    }
    if (!threw) {
      FAIL_CHECK("no xgrad::Error; got ", other.empty() ? std::string("no exception") : other);
      continue;
    }
    INFO("message: ", message);
    INFO("pattern: ", std::string(row.pattern));
    CHECK(matches(message, row.pattern));
  }
}

void check_valid(const std::vector<ValidCase>& rows) {
  for (const auto& row : rows) {
    INFO("row: ", std::string(row.name));
    Tensor y;
    try {
      y = row.run();
    } catch (const std::exception& e) {
      FAIL_CHECK("threw: ", e.what());
      continue;
    }
    CHECK(y.shape() == row.shape);
    if (row.check) row.check(y);
  }
}

const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();

/// A loss-free decoder step over a [B] token batch: logits [B, 5], state unchanged.
nn::DecoderStep constant_step() {
  return [](const Tensor& tokens, const nn::State& s) { return std::make_pair(zeros({tokens.size(0), 5}), s); };
}

Tensor leaf(const Shape& shape) { return zeros(shape).requires_grad_(); }

// --- the tables --------------------------------------------------------------------------------

std::vector<ErrorCase> core_errors() {
  return {
      {"zeros: negative dimension", [] { zeros({2, -1}); }, R"(^empty: negative dimension in shape \[2, -1\])"},
      {"zeros: byte count overflows", [] { zeros({std::int64_t{1} << 32, std::int64_t{1} << 32}); },
       R"(^empty: shape \[4294967296, 4294967296\] of f32 is too large)"},
      {"zeros: more memory than exists", [] { zeros({std::int64_t{1} << 40, std::int64_t{1} << 20}); },
       R"(^empty: shape \[1099511627776, 1048576\] of f32 needs \d+ x 4 bytes, more than this machine.s memory)"},
      {"randn: negative dimension", [] { randn({-2}); }, R"(^empty: negative dimension in shape \[-2\])"},
      {"arange: infinite stop", [] { arange(0, kInf); }, R"(^arange: start 0, stop inf and step 1 must be finite)"},
      {"arange: NaN stop", [] { arange(0, kNaN); }, R"(^arange: start 0, stop nan)"},
      {"arange: zero step", [] { arange(0, 5, 0); }, R"(^arange: step must be non-zero)"},
      {"arange: 1e18 elements", [] { arange(0, 1e18); }, R"(^empty: shape \[1000000000000000000\] of f32 needs \d+ x 4 bytes, more than this machine.s memory)"},
      {"randint: empty range", [] { randint(5, 5, {3}); }, R"(^randint: empty range \[5, 5\))"},
      {"uniform: low above high", [] { uniform({3}, 1, 0); }, R"(^uniform: low 1 is above high 0)"},
      {"tensor: ragged rows (short first)", [] { tensor({{1.0}, {2.0, 3.0}}); },
       R"(^tensor: ragged nested list: list \[1\] has 2 elements, the first list at its depth has 1)"},
      {"tensor: ragged rows (long first)", [] { tensor({{1.0, 2.0}, {3.0}}); },
       R"(^tensor: ragged nested list: list \[1\] has 1 elements, the first list at its depth has 2)"},
      {"tensor: ragged 3-D", [] { tensor({{{1.0, 2.0}}, {{3.0}}}); }, R"(^tensor: ragged nested list: list \[1\]\[0\] has 1)"},
      {"tensor: NaN as i64", [] { tensor({1.0, kNaN}, i64); }, R"(^tensor: value nan cannot be converted to i64)"},
      {"full: 1e20 as i64", [] { full({2}, 1e20, i64); }, R"(^full: value 1e\+20 cannot be converted to i64 \(shape \[2\]\))"},
      {"i64 tensor + 1e30", [] { zeros({2}, i64) + 1e30; }, R"(^full: value 1e\+30 cannot be converted to i64)"},
      {"item: two elements", [] { zeros({2}).item(); }, R"(^item: expects a tensor with one element, got shape \[2\])"},
      {"item: empty", [] { zeros({0}).item(); }, R"(^item: .*shape \[0\])"},
      {"size: axis out of range", [] { zeros({2, 3}).size(2); }, R"(^size: axis 2 is out of range for shape \[2, 3\])"},
      {"data<T>: wrong type", [] { zeros({2}).data<double>(); }, R"(^tensor: data<f64>\(\) on a f32 tensor)"},
      {"copy_: shapes differ", [] { zeros({2}).copy_(zeros({3})); }, R"(^copy_: shapes differ: \[3\] into \[2\])"},
      {"requires_grad_: i64", [] { zeros({2}, i64).requires_grad_(); }, R"(^requires_grad_: .*got i64)"},
      {"set_data: i64 into a parameter", [] { leaf({2}).set_data(zeros({2}, i64)); }, R"(^set_data: .*got i64)"},
      {"set_grad: wrong shape", [] { leaf({2}).set_grad(zeros({3})); }, R"(^set_grad: gradient \[3\] f32 for a \[2\] f32 tensor)"},
      {"undefined tensor", [] { add(Tensor(), zeros({2})); }, R"(^tensor: use of an undefined tensor)"},
      {"backward: non-scalar without gradient", [] { (leaf({2}) * 2.0).backward(); },
       R"(^backward: a gradient can be implied only for one-element outputs; pass one for shape \[2\])"},
      {"backward: gradient of the wrong shape", [] { (leaf({2}) * 2.0).backward(zeros({3})); },
       R"(^backward: gradient \[3\] f32 does not match output \[2\] f32)"},
      {"backward: nothing requires grad", [] { zeros({1}).backward(); }, R"(^backward: .*no grad_fn \(shape \[1\]\))"},
      {"grad: unused input", [] {
         auto x = leaf({2}), y = leaf({3});
         autograd::grad({sum(x)}, {y});
       }, R"(^grad: input 0 \(shape \[3\]\) was not used)"},
      {"gradcheck: f32 input", [] { gradcheck([](const std::vector<Tensor>& x) { return sum(x[0]); }, {leaf({2})}); },
       R"(^gradcheck: input 0 is f32)"},
  };
}

std::vector<ErrorCase> op_errors() {
  return {
      // elementwise
      {"add: shapes do not broadcast", [] { zeros({2, 3}) + zeros({4}); }, R"(^add: shapes \[2, 3\] and \[4\] cannot be broadcast)"},
      {"add: f32 and f64", [] { zeros({2}) + zeros({2}, f64); }, R"(^add: dtypes differ: f32 \[2\] and f64 \[2\])"},
      {"mul: i64 and f32", [] { zeros({2}, i64) * zeros({2}); }, R"(^mul: dtypes differ: i64 \[2\] and f32 \[2\])"},
      {"div: i64", [] { zeros({2}, i64) / zeros({2}, i64); }, R"(^div: expects floating tensors .*got i64)"},
      {"exp: i64", [] { exp(zeros({2}, i64)); }, R"(^exp: expects a floating tensor .*got i64)"},
      {"tanh: i64", [] { tanh(zeros({2}, i64)); }, R"(^tanh: expects a floating tensor .*got i64)"},
      {"pow: i64", [] { pow(zeros({2}, i64), 2.0); }, R"(^pow: expects a floating tensor .*got i64)"},
      {"where: shapes do not broadcast", [] { where(zeros({3}), zeros({2}), zeros({2})); },
       R"(^where: shapes \[3\] and \[2\] cannot be broadcast)"},
      {"where: branch dtypes differ", [] { where(zeros({2}), zeros({2}), zeros({2}, f64)); },
       R"(^where: dtypes differ: f32 \[2\] and f64 \[2\])"},
      // reductions and softmax
      {"sum: axis out of range", [] { sum(zeros({2, 3}), 2); }, R"(^sum: axis 2 is out of range for shape \[2, 3\])"},
      {"sum: repeated axis", [] { sum(zeros({2, 3}), {0, -2}); }, R"(^sum: repeated axis .*shape \[2, 3\])"},
      {"mean: i64", [] { mean(zeros({2}, i64)); }, R"(^mean: expects a floating tensor .*got i64 \[2\])"},
      {"max: axis of size 0", [] { max(zeros({2, 0}), 1); }, R"(^max: cannot reduce over axis 1 of size 0 \(shape \[2, 0\]\))"},
      {"max: empty tensor", [] { max(zeros({0})); }, R"(^max: cannot reduce an empty tensor \(shape \[0\]\))"},
      {"logsumexp: axis out of range", [] { logsumexp(zeros({2}), 1); }, R"(^logsumexp: axis 1 is out of range for shape \[2\])"},
      {"softmax: axis out of range", [] { softmax(zeros({2, 3}), 2); }, R"(^softmax: axis 2 is out of range for shape \[2, 3\])"},
      {"softmax: scalar", [] { softmax(scalar(1), 0); }, R"(^softmax: .*got a scalar)"},
      {"log_softmax: i64", [] { log_softmax(zeros({2, 3}, i64), 1); }, R"(^log_softmax: expects a floating tensor .*got i64)"},
      // shape ops
      {"reshape: element count", [] { reshape(zeros({2, 3}), {4, 2}); }, R"(^reshape: cannot reshape \[2, 3\] \(6 elements\) into \[4, 2\])"},
      {"reshape: two -1", [] { reshape(zeros({2, 3}), {-1, -1}); }, R"(^reshape: more than one -1 in \[-1, -1\] \(input shape \[2, 3\]\))"},
      {"reshape: negative size", [] { reshape(zeros({2, 3}), {-2, -3}); }, R"(^reshape: negative dimension in \[-2, -3\])"},
      {"unsqueeze: axis out of range", [] { unsqueeze(zeros({2}), 3); }, R"(^unsqueeze: axis 3 is out of range for shape \[2\])"},
      {"permute: too few axes", [] { permute(zeros({2, 3}), {0}); }, R"(^permute: 1 axes given for shape \[2, 3\])"},
      {"permute: repeated axis", [] { permute(zeros({2, 3}), {0, 0}); }, R"(^permute: \[0, 0\] is not a permutation of the axes of \[2, 3\])"},
      {"transpose: axis out of range", [] { transpose(zeros({2, 3}), 0, 2); }, R"(^transpose: axis 2 is out of range for shape \[2, 3\])"},
      {"expand: incompatible", [] { expand(zeros({2, 3}), {4, 3}); }, R"(^expand: .*\[2, 3\] .*\[4, 3\])"},
      {"expand: lower rank", [] { expand(zeros({2, 3}), {3}); }, R"(^expand: cannot expand \[2, 3\] to \[3\])"},
      {"sum_to: incompatible", [] { sum_to(zeros({2, 3}), {4}); }, R"(^sum_to: .*\[4\] .*\[2, 3\])"},
      {"slice: axis out of range", [] { slice(zeros({2, 3}), 2, 0, 1); }, R"(^slice: axis 2 is out of range for shape \[2, 3\])"},
      {"slice: zero step", [] { slice(zeros({2, 3}), 1, 0, 1, 0); }, R"(^slice: step must be positive, got 0 \(shape \[2, 3\]\))"},
      {"slice: negative step", [] { slice(zeros({2, 3}), 1, 0, 1, -1); }, R"(^slice: step must be positive, got -1)"},
      {"slice: scalar", [] { slice(scalar(1), 0, 0, 1); }, R"(^slice: axis 0 is out of range for shape \[\])"},
      {"embed_slice: wrong piece", [] { embed_slice(zeros({2, 2}), {2, 3}, 1, 0, 3); },
       R"(^embed_slice: a slice of \[2, 3\] along axis 1 has shape \[2, 3\], got \[2, 2\])"},
      {"concat: nothing", [] { concat({}, 0); }, R"(^concat: expects at least one tensor)"},
      {"concat: shapes differ off the axis", [] { concat({zeros({2, 3}), zeros({3, 3})}, 1); },
       R"(^concat: tensors must match except along axis 1: \[2, 3\] f32 and \[3, 3\] f32)"},
      {"concat: ranks differ", [] { concat({zeros({2, 3}), zeros({2})}, 0); }, R"(^concat: .*\[2, 3\] f32 and \[2\] f32)"},
      {"concat: dtypes differ", [] { concat({zeros({2}), zeros({2}, i64)}, 0); }, R"(^concat: .*\[2\] f32 and \[2\] i64)"},
      {"stack: shapes differ", [] { stack({zeros({2}), zeros({3})}, 0); }, R"(^stack: tensors must have equal shapes: \[2\] and \[3\])"},
      {"stack: axis out of range", [] { stack({zeros({2}), zeros({2})}, 3); }, R"(^stack: axis 3 is out of range for shape \[2\])"},
      {"split: sizes do not add up", [] { split(zeros({5}), {2, 2}, 0); }, R"(^split: sizes \[2, 2\] add up to 4, but axis 0 of \[5\] has 5)"},
      {"split: negative size", [] { split(zeros({5}), {-1, 6}, 0); }, R"(^split: negative size -1 \(shape \[5\]\))"},
      {"chunk: zero chunks", [] { chunk(zeros({5}), 0, 0); }, R"(^chunk: chunks must be positive, got 0)"},
      {"unbind: axis out of range", [] { unbind(zeros({5}), 1); }, R"(^unbind: axis 1 is out of range for shape \[5\])"},
      {"pad: cropping past the size", [] { pad(zeros({5}), 0, -3, -3); }, R"(^pad: padding \(-3, -3\) of axis 0 of shape \[5\] crops more than the axis holds)"},
      {"pad: size overflows", [] { pad(zeros({5}), 0, kMax, 1); }, R"(^pad: padding \(9223372036854775807, 1\) of axis 0 of shape \[5\] is too large)"},
      // indexing
      {"index_select: index = size", [] { index_select(zeros({4, 3}), 0, tensor({0, 4}, i64)); },
       R"(^index_select: index 4 is out of range for axis 0 of size 4 \(shape \[4, 3\]\))"},
      {"index_select: negative index", [] { index_select(zeros({4, 3}), 0, tensor({-1}, i64)); },
       R"(^index_select: index -1 is out of range for axis 0 of size 4)"},
      {"index_select: f32 index", [] { index_select(zeros({4, 3}), 0, tensor({0.0, 1.0})); }, R"(^index_select: index must be i64, got f32 \[2\])"},
      {"index_select: 2-D index", [] { index_select(zeros({4, 3}), 0, zeros({1, 1}, i64)); }, R"(^index_select: index must be 1-D, got shape \[1, 1\])"},
      {"index_select: axis out of range", [] { index_select(zeros({4, 3}), 2, tensor({0}, i64)); },
       R"(^index_select: axis 2 is out of range for shape \[4, 3\])"},
      {"index_add: index out of range", [] { index_add({4}, 0, tensor({5}, i64), zeros({1})); },
       R"(^index_add: index 5 is out of range for axis 0 of size 4)"},
      {"index_add: source shape", [] { index_add({4}, 0, tensor({1}, i64), zeros({2})); }, R"(^index_add: source shape \[2\] does not match \[1\])"},
      {"gather: index = size", [] { gather(zeros({2, 3}), 1, tensor({{0.0}, {3.0}}, i64)); },
       R"(^gather: index 3 is out of range for axis 1 of size 3 \(shape \[2, 3\]\))"},
      {"gather: negative index", [] { gather(zeros({2, 3}), 1, tensor({{0.0}, {-1.0}}, i64)); }, R"(^gather: index -1 is out of range)"},
      {"gather: index rank", [] { gather(zeros({2, 3}), 1, tensor({0}, i64)); },
       R"(^gather: index shape \[1\] does not fit data shape \[2, 3\] \(axis 1\))"},
      {"gather: index larger than data", [] { gather(zeros({2, 3}), 1, zeros({3, 1}, i64)); },
       R"(^gather: index shape \[3, 1\] does not fit data shape \[2, 3\])"},
      {"gather: f32 index", [] { gather(zeros({2, 3}), 1, zeros({2, 1})); }, R"(^gather: index must be i64, got f32 \[2, 1\])"},
      {"scatter_add: index out of range", [] { scatter_add({2, 3}, 1, tensor({{0.0}, {3.0}}, i64), zeros({2, 1})); },
       R"(^scatter_add: index 3 is out of range for axis 1 of size 3)"},
      {"scatter_add: source shape", [] { scatter_add({2, 3}, 1, zeros({2, 1}, i64), zeros({2, 2})); },
       R"(^scatter_add: source shape \[2, 2\] differs from index shape \[2, 1\])"},
      {"unfold: zero size", [] { unfold(zeros({5}), 0, 0); }, R"(^unfold: size, step and dilation must be positive, got 0, 1, 1)"},
      {"unfold: zero step", [] { unfold(zeros({5}), 0, 2, 0); }, R"(^unfold: .*got 2, 0, 1)"},
      {"fold: windows shape", [] { fold(zeros({3, 2}), {5}, 0, 3); }, R"(^fold: windows of shape \[3, 2\] do not match \[3, 3\])"},
      // linear algebra
      {"matmul: inner dimensions", [] { matmul(zeros({2, 3}), zeros({4, 5})); }, R"(^matmul: inner dimensions differ: \[2, 3\] x \[4, 5\])"},
      {"matmul: transposed inner dimensions", [] { matmul(zeros({2, 3}), zeros({2, 5}), false, true); },
       R"(^matmul: inner dimensions differ: \[2, 3\] x \[2, 5\]\^T)"},
      {"matmul: f32 x f64", [] { matmul(zeros({2, 3}), zeros({3, 5}, f64)); }, R"(^matmul: dtypes differ: f32 \[2, 3\] x f64 \[3, 5\])"},
      {"matmul: i64 x f32", [] { matmul(zeros({2, 3}, i64), zeros({3, 5})); }, R"(^matmul: dtypes differ: i64 \[2, 3\] x f32 \[3, 5\])"},
      {"matmul: i64", [] { matmul(zeros({2, 3}, i64), zeros({3, 5}, i64)); }, R"(^matmul: expects a floating tensor .*got i64)"},
      {"matmul: scalar", [] { matmul(scalar(1), zeros({3})); }, R"(^matmul: operands must have rank >= 1: \[\] x \[3\])"},
      {"matmul: batch axes", [] { matmul(zeros({2, 2, 3}), zeros({3, 3, 5})); },
       R"(^matmul: batch dimensions cannot be broadcast: \[2, 2, 3\] x \[3, 3, 5\])"},
      {"linear: in_features", [] { linear(zeros({2, 3}), zeros({4, 5})); }, R"(^linear: input \[2, 3\] does not match weight \[4, 5\])"},
      {"linear: 1-D weight", [] { linear(zeros({2, 3}), zeros({3})); }, R"(^linear: input \[2, 3\] does not match weight \[3\])"},
      {"linear: bias size", [] { linear(zeros({2, 3}), zeros({4, 3}), zeros({5})); }, R"(^linear: bias \[5\] does not match weight \[4, 3\])"},
      {"linear: f64 input, f32 weight", [] { linear(zeros({2, 3}, f64), zeros({4, 3}), zeros({4})); },
       R"(^linear: dtypes differ: input f64, weight f32)"},
  };
}

std::vector<ErrorCase> layer_errors() {
  return {
      {"Linear: wrong in_features", [] { nn::Linear(3, 4)(zeros({2, 5})); }, R"(^linear: input \[2, 5\] does not match weight \[4, 3\])"},
      {"Linear: scalar input", [] { nn::Linear(3, 4)(scalar(1)); }, R"(^linear: input \[\] does not match weight \[4, 3\])"},
      {"Linear: i64 input", [] { nn::Linear(3, 4)(zeros({2, 3}, i64)); }, R"(^linear: dtypes differ: input i64, weight f32)"},
      {"Sequential: layers do not chain", [] {
         nn::Sequential s{std::make_shared<nn::Linear>(3, 4), std::make_shared<nn::Linear>(5, 2)};
         s(zeros({2, 3}));
       }, R"(^linear: input \[2, 4\] does not match weight \[2, 5\])"},
      {"Sequential: null module", [] { nn::Sequential().add(nullptr); }, R"(^Sequential: register_module\('0'\) of a null module)"},
      {"Embedding: id = num_embeddings", [] { nn::Embedding(10, 3)(tensor({1, 10}, i64)); },
       R"(^Embedding: id 10 is out of range for a table of 10 embeddings \(ids shape \[2\]\))"},
      {"Embedding: id -1", [] { nn::Embedding(10, 3)(tensor({{0.0, -1.0}}, i64)); },
       R"(^Embedding: id -1 is out of range for a table of 10 embeddings \(ids shape \[1, 2\]\))"},
      {"Embedding: f32 ids", [] { nn::Embedding(10, 3)(tensor({1.0})); }, R"(^Embedding: ids must be i64, got f32 \[1\])"},
      {"Embedding: padding_idx out of range", [] { nn::Embedding(10, 3, 10); }, R"(^Embedding: padding_idx 10 is out of range for 10 embeddings)"},
      {"Embedding: negative size", [] { nn::Embedding(-1, 3); }, R"(^Embedding: num_embeddings and embedding_dim must be non-negative, got -1 and 3)"},
      {"Conv1D: rank-2 input", [] { nn::Conv1D(3, 4, 2)(zeros({2, 3})); },
       R"(^conv1d: input \[2, 3\] must be \[batch, time, channels\] with 3 channels to match weight \[4, 3, 2\])"},
      {"Conv1D: channels", [] { nn::Conv1D(3, 4, 2)(zeros({2, 5, 4})); }, R"(^conv1d: input \[2, 5, 4\] .*with 3 channels)"},
      {"Conv1D: shorter than the kernel", [] { nn::Conv1D(3, 4, 3)(zeros({2, 2, 3})); },
       R"(^conv1d: input \[2, 2, 3\] has 2 time steps, fewer than the kernel span 3)"},
      {"Conv1D: zero-length sequence", [] { nn::Conv1D(3, 4, 1)(zeros({2, 0, 3})); }, R"(^conv1d: input \[2, 0, 3\] has 0 time steps)"},
      {"Conv1D: f64 input", [] { nn::Conv1D(3, 4, 2)(zeros({2, 5, 3}, f64)); },
       R"(^conv1d: input f64 \[2, 5, 3\] and weight f32 \[4, 3, 2\] have different dtypes)"},
      {"conv1d: i64", [] { nn::conv1d(zeros({2, 5, 3}, i64), zeros({4, 3, 2}, i64)); }, R"(^conv1d: expects a floating input .*got i64 \[2, 5, 3\])"},
      {"conv1d: bias size", [] { nn::conv1d(zeros({2, 5, 3}), zeros({4, 3, 2}), zeros({3})); },
       R"(^conv1d: bias \[3\] must be \[4\] to match weight \[4, 3, 2\])"},
      {"conv1d: rank-2 weight", [] { nn::conv1d(zeros({2, 5, 3}), zeros({4, 3})); }, R"(^conv1d: weight must be .*got \[4, 3\])"},
      {"conv1d: zero stride", [] { nn::conv1d(zeros({2, 5, 3}), zeros({4, 3, 2}), {}, 0); }, R"(^conv1d: stride and dilation must be positive, got 0 and 1)"},
      {"Conv1D: zero kernel", [] { nn::Conv1D(3, 4, 0); }, R"(^Conv1D: .*must be positive, got 3, 4 and 0)"},
      {"max_pool1d: rank-2 input", [] { nn::max_pool1d(zeros({2, 3}), 2); }, R"(^max_pool1d: input \[2, 3\] must be \[batch, time, channels\])"},
      {"max_pool1d: shorter than the pool", [] { nn::max_pool1d(zeros({2, 1, 3}), 2); },
       R"(^max_pool1d: input \[2, 1, 3\] has 1 time steps, fewer than the 2 it needs)"},
      {"max_pool1d: negative stride", [] { nn::max_pool1d(zeros({2, 4, 3}), 2, -1); }, R"(^max_pool1d: .*got 2 and -1)"},
      {"avg_pool1d: i64", [] { nn::avg_pool1d(zeros({2, 4, 3}, i64), 2); }, R"(^avg_pool1d: expects a floating input .*got i64 \[2, 4, 3\])"},
      {"global_max_pool1d: zero-length sequence", [] { nn::global_max_pool1d(zeros({2, 0, 3})); },
       R"(^global_max_pool1d: input \[2, 0, 3\] has 0 time steps)"},
      {"global_avg_pool1d: zero-length sequence", [] { nn::global_avg_pool1d(zeros({2, 0, 3})); },
       R"(^global_avg_pool1d: input \[2, 0, 3\] has 0 time steps)"},
      {"MaxPool1D: zero pool", [] { nn::MaxPool1D(0); }, R"(^MaxPool1D: pool_size must be positive)"},
      {"dropout: p > 1", [] { nn::dropout(zeros({2}), 1.01, true); }, R"(^dropout: p must be in \[0, 1\], got 1.01)"},
      {"Dropout: NaN", [] { nn::Dropout dropout(kNaN); }, R"(^Dropout: p must be in \[0, 1\], got nan)"},
      {"dropout: i64 in training", [] { nn::dropout(ones({4}, i64), 0.5, true); }, R"(^dropout: expects a floating input .*got i64 \[4\])"},
      // losses
      {"mse_loss: shapes differ", [] { nn::mse_loss(zeros({2, 3}), zeros({3, 2})); },
       R"(^mse_loss: prediction \[2, 3\] and target \[3, 2\] must have the same shape)"},
      {"mse_loss: i64 prediction", [] { nn::mse_loss(zeros({2}, i64), zeros({2}, i64)); }, R"(^mse_loss: prediction must be floating point, got i64 \[2\])"},
      {"l1_loss: shapes differ", [] { nn::l1_loss(zeros({2}), zeros({3})); }, R"(^l1_loss: prediction \[2\] and target \[3\])"},
      {"bce_with_logits: shapes differ", [] { nn::bce_with_logits(zeros({2}), zeros({3})); }, R"(^bce_with_logits: prediction \[2\] and target \[3\])"},
      {"cross_entropy: class = C", [] { nn::cross_entropy(zeros({2, 3}), tensor({0, 3}, i64)); },
       R"(^cross_entropy: target 3 is out of range for 3 classes \(ignore_index -100\), target shape \[2\])"},
      {"cross_entropy: class -1", [] { nn::cross_entropy(zeros({2, 3}), tensor({0, -1}, i64)); }, R"(^cross_entropy: target -1 is out of range for 3 classes)"},
      {"cross_entropy: f32 targets", [] { nn::cross_entropy(zeros({2, 3}), tensor({0.0, 1.0})); },
       R"(^cross_entropy: target must be i64 class indices \(the logits' shape \[2, 3\] without the last axis\) or probabilities of the logits' shape, got f32 \[2\])"},
      {"cross_entropy: target shape", [] { nn::cross_entropy(zeros({2, 3}), tensor({0, 1, 2}, i64)); },
       R"(^cross_entropy: target \[3\] must be the scores' shape \[2, 3\] without the last \(class\) axis)"},
      {"cross_entropy: scalar logits", [] { nn::cross_entropy(scalar(1), scalar(0, i64)); }, R"(^cross_entropy: scores must be floating point \[..., classes\], got f32 \[\])"},
      {"cross_entropy: no classes", [] { nn::cross_entropy(zeros({2, 0}), tensor({0, 0}, i64)); }, R"(^cross_entropy: target 0 is out of range for 0 classes)"},
      {"nll_loss: i64 scores", [] { nn::nll_loss(zeros({2, 3}, i64), tensor({0, 1}, i64)); }, R"(^nll_loss: scores must be floating point .*got i64 \[2, 3\])"},
      // modules
      {"load_state_dict: wrong shape", [] { nn::Linear(3, 4).load_state_dict({{"weight", zeros({4, 4})}, {"bias", zeros({4})}}); },
       R"(^load_state_dict into Linear: 'weight' has shape \[4, 4\], the module expects \[4, 3\])"},
      {"load_state_dict: missing entry", [] { nn::Linear(3, 4).load_state_dict({{"weight", zeros({4, 3})}}); },
       R"(^load_state_dict into Linear: missing 'bias' \[4\])"},
      {"load_state_dict: wrong dtype", [] { nn::Linear(3, 4).load_state_dict({{"weight", zeros({4, 3}, i64)}, {"bias", zeros({4})}}); },
       R"(^load_state_dict into Linear: 'weight' is i64, the module expects f32)"},
      {"summary: wrong input shape", [] {
         nn::Linear l(3, 4);
         nn::summary(l, {2, 5});
       }, R"(^linear: input \[2, 5\] does not match weight \[4, 3\])"},
  };
}

std::vector<ErrorCase> attention_errors() {
  using nn::scaled_dot_product_attention;
  return {
      {"sdpa: rank 1", [] { scaled_dot_product_attention(zeros({4}), zeros({4}), zeros({4})); },
       R"(^scaled_dot_product_attention: expected .*got query \[4\], key \[4\], value \[4\])"},
      {"sdpa: feature sizes differ", [] { scaled_dot_product_attention(zeros({2, 3, 4}), zeros({2, 5, 6}), zeros({2, 5, 6})); },
       R"(^scaled_dot_product_attention: .*got query \[2, 3, 4\], key \[2, 5, 6\], value \[2, 5, 6\])"},
      {"sdpa: key and value lengths differ", [] { scaled_dot_product_attention(zeros({2, 3, 4}), zeros({2, 5, 4}), zeros({2, 6, 4})); },
       R"(^scaled_dot_product_attention: .*key \[2, 5, 4\], value \[2, 6, 4\])"},
      {"sdpa: batch sizes differ", [] { scaled_dot_product_attention(zeros({2, 3, 4}), zeros({3, 5, 4}), zeros({3, 5, 4})); },
       R"(^scaled_dot_product_attention: .*query \[2, 3, 4\], key \[3, 5, 4\])"},
      {"sdpa: mask does not broadcast", [] { scaled_dot_product_attention(zeros({2, 3, 4}), zeros({2, 5, 4}), zeros({2, 5, 4}), zeros({4, 5})); },
       R"(^scaled_dot_product_attention: mask \[4, 5\] does not broadcast to the scores \[2, 3, 5\])"},
      {"sdpa: f32 query, f64 key", [] { scaled_dot_product_attention(zeros({2, 3, 4}), zeros({2, 5, 4}, f64), zeros({2, 5, 4})); },
       R"(^scaled_dot_product_attention: .*got query f32, key f64, value f32 \(query \[2, 3, 4\], key \[2, 5, 4\])"},
      {"sdpa: i64", [] { scaled_dot_product_attention(zeros({2, 3, 4}, i64), zeros({2, 5, 4}, i64), zeros({2, 5, 4}, i64)); },
       R"(^scaled_dot_product_attention: query, key and value must be floating .*query i64)"},
      {"sdpa: dropout 1.5", [] { scaled_dot_product_attention(zeros({2, 3, 4}), zeros({2, 5, 4}), zeros({2, 5, 4}), {}, {}, false, 1.5); },
       R"(^dropout: p must be in \[0, 1\], got 1.5)"},
      {"LuongAttention: feature size", [] { nn::LuongAttention(4).forward(zeros({2, 3, 5}), zeros({2, 5, 5}), zeros({2, 5, 5})); },
       R"(^LuongAttention: expected query \[B, Tq, 4\], .*got query \[2, 3, 5\], keys \[2, 5, 5\])"},
      {"LuongAttention: rank 2", [] { nn::LuongAttention(4).forward(zeros({3, 4}), zeros({5, 4}), zeros({5, 4})); },
       R"(^LuongAttention: .*got query \[3, 4\], keys \[5, 4\], values \[5, 4\])"},
      {"LuongAttention: padding mask", [] { nn::LuongAttention(4).forward(zeros({2, 3, 4}), zeros({2, 5, 4}), zeros({2, 5, 4}), zeros({2, 4})); },
       R"(^LuongAttention: key_padding_mask \[2, 4\] must be \[B, Tk\] = \[2, 5\] for keys \[2, 5, 4\])"},
      {"LuongAttention general: f64 inputs", [] {
         nn::LuongAttention(4, nn::LuongAttention::Score::general).forward(zeros({2, 3, 4}, f64), zeros({2, 5, 4}, f64), zeros({2, 5, 4}, f64));
       }, R"(^LuongAttention: .*\(the parameters are f32\), got query f64, keys f64, values f64)"},
      {"BahdanauAttention: query size", [] { nn::BahdanauAttention(4, 6, 8).forward(zeros({2, 1, 5}), zeros({2, 5, 6}), zeros({2, 5, 6})); },
       R"(^BahdanauAttention: expected query \[B, Tq, 4\], keys \[B, Tk, 6\].*got query \[2, 1, 5\])"},
      {"BahdanauAttention: key size", [] { nn::BahdanauAttention(4, 6, 8).forward(zeros({2, 1, 4}), zeros({2, 5, 4}), zeros({2, 5, 6})); },
       R"(^BahdanauAttention: .*keys \[2, 5, 4\])"},
      {"BahdanauAttention: 1-D mask", [] {
         nn::BahdanauAttention(4, 6, 8).forward(zeros({2, 1, 4}), zeros({2, 5, 6}), zeros({2, 5, 6}), zeros({5}));
       }, R"(^BahdanauAttention: key_padding_mask \[5\] must be \[B, Tk\] = \[2, 5\])"},
      {"BahdanauAttention: i64 inputs", [] {
         nn::BahdanauAttention(4, 6, 8).forward(zeros({2, 1, 4}, i64), zeros({2, 5, 6}, i64), zeros({2, 5, 6}, i64));
       }, R"(^BahdanauAttention: .*got query i64, keys i64, values i64)"},
      {"MultiheadAttention: embed_dim", [] { nn::MultiheadAttention(8, 2).forward(zeros({2, 3, 6}), zeros({2, 3, 6}), zeros({2, 3, 6})); },
       R"(^MultiheadAttention: expected query \[B, Tq, 8\], key and value \[B, Tk, 8\], got query \[2, 3, 6\])"},
      {"MultiheadAttention: heads do not divide", [] { nn::MultiheadAttention(8, 3); },
       R"(^MultiheadAttention: embed_dim 8 must be a positive multiple of num_heads 3)"},
      {"MultiheadAttention: key padding mask", [] {
         nn::MultiheadAttention(8, 2).forward(zeros({2, 3, 8}), zeros({2, 4, 8}), zeros({2, 4, 8}), zeros({2, 3}));
       }, R"(^MultiheadAttention: key_padding_mask \[2, 3\] must be \[B, Tk\] = \[2, 4\])"},
      {"MultiheadAttention: attn_mask", [] {
         nn::MultiheadAttention(8, 2).forward(zeros({2, 3, 8}), zeros({2, 4, 8}), zeros({2, 4, 8}), {}, zeros({4, 3}));
       }, R"(^MultiheadAttention: attn_mask \[4, 3\] must be \[Tq, Tk\] = \[3, 4\] or \[B \* heads, Tq, Tk\] = \[4, 3, 4\])"},
      {"MultiheadAttention: f64 inputs", [] {
         nn::MultiheadAttention(8, 2).forward(zeros({2, 3, 8}, f64), zeros({2, 4, 8}, f64), zeros({2, 4, 8}, f64));
       }, R"(^MultiheadAttention: .*\(the parameters are f32\), got query f64, key f64, value f64 \(query \[2, 3, 8\])"},
  };
}

std::vector<ErrorCase> recurrent_errors() {
  return {
      {"RNN: rank-2 input", [] { nn::RNN(3, 4)(zeros({2, 3})); }, R"(^RNN: expects input \[B, T, 3\], got \[2, 3\])"},
      {"RNN: feature size", [] { nn::RNN(3, 4)(zeros({2, 5, 4})); }, R"(^RNN: expects input \[B, T, 3\], got \[2, 5, 4\])"},
      {"LSTM: zero-length sequence", [] { nn::LSTM(3, 4)(zeros({2, 0, 3})); },
       R"(^LSTM: input \[2, 0, 3\] has no time steps)"},
      {"GRU: zero-length sequence, last output only", [] {
         nn::RecurrentOptions o;
         o.return_sequences = false;
         nn::Recurrent r([](std::int64_t, std::int64_t in) { return std::make_shared<nn::GRUCell>(in, 4); }, 3, o);
         r(zeros({2, 0, 3}));
       }, R"(^Recurrent: input \[2, 0, 3\] has no time steps)"},
      {"RNN: i64 input", [] { nn::RNN(3, 4)(zeros({2, 5, 3}, i64)); }, R"(^RNN: input is i64 \[2, 5, 3\], but the parameters are f32)"},
      {"GRU: f64 input, f32 parameters", [] { nn::GRU(3, 4)(zeros({2, 5, 3}, f64)); }, R"(^GRU: input is f64 \[2, 5, 3\], but the parameters are f32)"},
      {"LSTM: two initial states for one layer", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), {}, {{zeros({2, 4})}, {zeros({2, 4})}}); },
       R"(^LSTM: 2 initial states given, expected one per layer and direction \(1\))"},
      {"LSTM: initial state without c", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), {}, {{zeros({2, 4})}}); },
       R"(^LSTMCell: the initial state has 1 tensors, the cell keeps 2)"},
      {"LSTM: initial state shape", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), {}, {{zeros({2, 5}), zeros({2, 4})}}); },
       R"(^LSTMCell: an initial state tensor is \[2, 5\], expected \[2, 4\])"},
      {"LSTM: initial state dtype", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), {}, {{zeros({2, 4}, f64), zeros({2, 4}, f64)}}); },
       R"(^LSTMCell: an initial state tensor is f64 \[2, 4\], expected f32 like the input \[2, 5, 3\])"},
      {"LSTM: f32 lengths", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), tensor({1.0, 2.0})); }, R"(^LSTMCell: lengths must be i64 \[2\], got f32 \[2\])"},
      {"LSTM: lengths for another batch", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), tensor({1, 2, 3}, i64)); },
       R"(^LSTMCell: lengths must be i64 \[2\], got i64 \[3\])"},
      {"LSTM: length > T", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), tensor({1, 6}, i64)); },
       R"(^LSTMCell: a length of 6 is outside \[0, 5\] for sequences of 5 steps)"},
      {"LSTM: negative length", [] { nn::LSTM(3, 4).run(zeros({2, 5, 3}), tensor({-1, 2}, i64)); }, R"(^LSTMCell: a length of -1 is outside \[0, 5\])"},
      {"LSTM: zero layers", [] { nn::LSTM(3, 4, {.num_layers = 0}); }, R"(^Recurrent: num_layers must be at least 1, got 0)"},
      {"LSTM: zero hidden size", [] { nn::LSTM(3, 0); }, R"(^Cell: input_size and hidden_size must be positive, got 3 and 0)"},
      {"LSTM: dropout 1.5", [] { nn::LSTM(3, 4, {.dropout = 1.5}); }, R"(^Recurrent: dropout probabilities must be in \[0, 1\], got 1.5)"},
      {"DepthGatedLSTM: feature size", [] { nn::DepthGatedLSTM(3, 4, {.num_layers = 2})(zeros({2, 5, 4})); },
       R"(^DepthGatedLSTM: expects input \[B, T, 3\], got \[2, 5, 4\])"},
      {"bidirectional LSTM: one initial state", [] { nn::LSTM(3, 4, {.bidirectional = true}).run(zeros({2, 5, 3}), {}, {{zeros({2, 4}), zeros({2, 4})}}); },
       R"(^LSTM: 1 initial states given, expected one per layer and direction \(2\))"},
      {"Recurrent::cell: layer out of range", [] { nn::LSTM(3, 4).cell(5); }, R"(^LSTM: no cell at layer 5, direction 0 \(1 layers, 1 directions\))"},
      {"stack_states: no c in an RNN state", [] { nn::stack_states({{zeros({2, 4})}}, 1); },
       R"(^stack_states: component 1 of a state of 1 tensors)"},
      {"unroll: below states for another length", [] {
         nn::DepthGatedLSTMCell c(3, 4);
         nn::UnrollOptions o;
         o.below = {{zeros({2, 4}), zeros({2, 4})}};
         nn::unroll(c, zeros({2, 5, 3}), c.initial_state(2, f32), o);
       }, R"(^DepthGatedLSTMCell: 1 states of the layer beneath for 5 steps)"},
      {"unroll: below state without c", [] {
         nn::DepthGatedLSTMCell c(3, 4);
         nn::UnrollOptions o;
         o.below = std::vector<nn::State>(2, nn::State{zeros({2, 4})});
         nn::unroll(c, zeros({2, 2, 3}), c.initial_state(2, f32), o);
       }, R"(^DepthGatedLSTMCell: the state of the layer beneath must be \{h, c\} with c \[2, 4\], got 1 tensors)"},
      {"unroll: below state of another width", [] {
         nn::DepthGatedLSTMCell c(3, 4);
         nn::UnrollOptions o;
         o.below = std::vector<nn::State>(2, nn::State{zeros({2, 5}), zeros({2, 5})});
         nn::unroll(c, zeros({2, 2, 3}), c.initial_state(2, f32), o);
       }, R"(^DepthGatedLSTMCell: .*with c \[2, 4\], got 2 tensors, c \[2, 5\])"},
      {"LSTMCell::step: unprojected input", [] {
         nn::LSTMCell c(3, 4);
         c.step(zeros({2, 3}), c.initial_state(2, f32));
       }, R"(^LSTMCell: a step takes the projected input \[B, 16\] and a state of 2 tensor\(s\) \[B, 4\], got input \[2, 3\])"},
      {"LSTMCell::step: state without c", [] {
         nn::LSTMCell c(3, 4);
         c.step(zeros({2, 16}), {zeros({2, 4})});
       }, R"(^LSTMCell: .*got input \[2, 16\] and state \[\[2, 4\]\])"},
      {"GRUCell::step: input of 3 columns (would broadcast)", [] {
         nn::GRUCell c(3, 4);
         c.step(zeros({2, 3}), c.initial_state(2, f32));
       }, R"(^GRUCell: a step takes the projected input \[B, 12\] .*got input \[2, 3\])"},
      {"SimpleRNNCell::step: empty state", [] {
         nn::SimpleRNNCell c(3, 4);
         c.step(zeros({2, 4}), {});
       }, R"(^SimpleRNNCell: .*got input \[2, 4\] and state \[\])"},
      {"PeepholeLSTMCell::step: state for another batch", [] {
         nn::PeepholeLSTMCell c(3, 4);
         c.step(zeros({2, 16}), c.initial_state(3, f32));
       }, R"(^PeepholeLSTMCell: .*got input \[2, 16\] and state \[\[3, 4\], \[3, 4\]\])"},
      {"GRUResetBeforeCell::step: undefined state", [] {
         nn::GRUResetBeforeCell c(3, 4);
         c.step(zeros({2, 12}), {Tensor()});
       }, R"(^GRUResetBeforeCell: .*state \[undefined\])"},
      {"Gen1LSTMCell::step: rank-3 input", [] {
         nn::Gen1LSTMCell c(3, 4);
         c.step(zeros({2, 1, 16}), c.initial_state(2, f32));
       }, R"(^Gen1LSTMCell: .*got input \[2, 1, 16\])"},
      {"CoupledLSTMCell::step: state too wide", [] {
         nn::CoupledLSTMCell c(3, 4);
         c.step(zeros({2, 12}), {zeros({2, 5}), zeros({2, 5})});
       }, R"(^CoupledLSTMCell: .*\[B, 12\].*\[B, 4\].*state \[\[2, 5\], \[2, 5\]\])"},
      {"DepthGatedLSTMCell::step_stacked: below without c", [] {
         nn::DepthGatedLSTMCell c(3, 4);
         c.step_stacked(c.project_input(zeros({2, 3})), c.initial_state(2, f32), {zeros({2, 4})});
       }, R"(^DepthGatedLSTMCell: the state of the layer beneath must be \{h, c\})"},
      {"TruncatedBPTT: k1 = 0", [] { nn::TruncatedBPTT(0, 2); }, R"(^TruncatedBPTT: needs 1 <= k1 <= k2 .*got k1 = 0, k2 = 2)"},
      {"TruncatedBPTT: k2 not a multiple", [] { nn::TruncatedBPTT(2, 3); }, R"(^TruncatedBPTT: .*k1 = 2, k2 = 3)"},
      {"TruncatedBPTT: no state kept", [] { nn::TruncatedBPTT(2, 4).state_at(3); }, R"(^TruncatedBPTT: no state was kept at step 3)"},
  };
}

std::vector<ErrorCase> decode_errors() {
  return {
      {"teacher_forcing: batch sizes differ", [] { nn::teacher_forcing(constant_step(), tensor({0, 0}, i64), zeros({3, 4}, i64), {}); },
       R"(^teacher_forcing: 2 start tokens for targets \[3, 4\])"},
      {"teacher_forcing: f32 start tokens", [] { nn::teacher_forcing(constant_step(), tensor({0.0, 0.0}), zeros({2, 4}, i64), {}); },
       R"(^teacher_forcing: start tokens must be i64 of rank 1, got f32 \[2\])"},
      {"teacher_forcing: zero-length targets", [] { nn::teacher_forcing(constant_step(), tensor({0, 0}, i64), zeros({2, 0}, i64), {}); },
       R"(^teacher_forcing: targets \[2, 0\] have no steps)"},
      {"generate: empty context", [] { nn::generate(constant_step(), zeros({2, 0}, i64), {}, 3); },
       R"(^generate: the warm-start context needs at least one token, got \[2, 0\])"},
      {"generate: negative steps", [] { nn::generate(constant_step(), zeros({2, 1}, i64), {}, -1); }, R"(^generate: steps must be >= 0, got -1)"},
      {"choose_tokens: empty vocabulary, greedy", [] { nn::choose_tokens(zeros({2, 0})); },
       R"(^choose_tokens: logits must be \[B, V\] with V >= 1, got \[2, 0\])"},
      {"choose_tokens: empty vocabulary, sampled", [] { nn::choose_tokens(zeros({2, 0}), {.temperature = 1}); },
       R"(^choose_tokens: logits must be \[B, V\] with V >= 1, got \[2, 0\])"},
      {"choose_tokens: rank 1", [] { nn::choose_tokens(zeros({5})); }, R"(^choose_tokens: logits must be \[B, V\] with V >= 1, got \[5\])"},
      {"choose_tokens: NaN temperature", [] { nn::choose_tokens(zeros({2, 3}), {.temperature = kNaN}); },
       R"(^choose_tokens: temperature must be >= 0, got nan)"},
  };
}

std::vector<ErrorCase> optim_errors() {
  auto param = [] { return leaf({2}); };
  return {
      {"SGD: negative lr", [=] { optim::SGD({param()}, {.lr = -1}); }, R"(^optimizer: the learning rate must be non-negative, got -1)"},
      {"SGD: NaN lr", [=] { optim::SGD({param()}, {.lr = kNaN}); }, R"(^optimizer: the learning rate must be non-negative, got nan)"},
      {"SGD: negative momentum", [=] { optim::SGD({param()}, {.lr = 0.1, .momentum = -1}); }, R"(^SGD: momentum must be non-negative, got -1)"},
      {"SGD: negative weight decay", [=] { optim::SGD({param()}, {.lr = 0.1, .weight_decay = -1}); },
       R"(^SGD: weight_decay must be non-negative, got -1)"},
      {"SGD: Nesterov without momentum", [=] { optim::SGD({param()}, {.lr = 0.1, .nesterov = true}); }, R"(^SGD: Nesterov momentum needs momentum > 0)"},
      {"SGD: i64 parameter", [] { optim::SGD({zeros({2}, i64)}); }, R"(^optimizer: parameter 0 must be a floating leaf tensor)"},
      {"SGD: non-leaf parameter", [=] { optim::SGD({param() * 2.0}); }, R"(^optimizer: parameter 0 must be a floating leaf tensor)"},
      {"SGD: no parameters", [] { optim::SGD({}); }, R"(^optimizer: got an empty parameter list)"},
      {"SGD: gradient of another shape", [=] {
         Tensor p = param();
         optim::SGD o({p});
         p.impl().grad = zeros({3});  // past set_grad's check: step must not read past the gradient
         o.step();
       }, R"(^optimizer: a gradient of shape \[3\] for a parameter of shape \[2\])"},
      {"Adam: beta1 = 1", [=] { optim::Adam({param()}, {.beta1 = 1.0}); }, R"(^Adam: betas must be in \[0, 1\), got \(1, 0.999\))"},
      {"Adam: negative eps", [=] { optim::Adam({param()}, {.eps = -1}); }, R"(^Adam: eps must be non-negative, got -1)"},
      {"AdamW: negative weight decay", [=] { optim::AdamW({param()}, {.weight_decay = -1}); }, R"(^Adam: weight_decay must be non-negative, got -1)"},
      {"RMSprop: negative alpha", [=] { optim::RMSprop({param()}, {.alpha = -1}); }, R"(^RMSprop: alpha must be non-negative, got -1)"},
      {"RMSprop: negative momentum", [=] { optim::RMSprop({param()}, {.momentum = -1}); }, R"(^RMSprop: momentum must be non-negative, got -1)"},
      {"Adagrad: negative lr_decay", [=] { optim::Adagrad({param()}, {.lr_decay = -1}); }, R"(^Adagrad: lr_decay must be non-negative, got -1)"},
      {"Adagrad: negative accumulator", [=] { optim::Adagrad({param()}, {.initial_accumulator_value = -1}); },
       R"(^Adagrad: initial_accumulator_value must be non-negative, got -1)"},
      {"optimizer load_state_dict: buffer shape", [=] { optim::Adam({param()}).load_state_dict({{"state.0.exp_avg", zeros({3})}}); },
       R"(^optimizer load_state_dict: 'state.0.exp_avg' has shape \[3\], expected \[2\])"},
      {"optimizer load_state_dict: parameter index", [=] { optim::Adam({param()}).load_state_dict({{"state.5.exp_avg", zeros({2})}}); },
       R"(^optimizer load_state_dict: unexpected entry 'state.5.exp_avg' for 1 parameters)"},
      {"clip_grad_norm: norm_type 0", [=] { optim::clip_grad_norm({param()}, 1.0, 0); }, R"(^clip_grad_norm: norm_type must be positive, got 0)"},
      {"clip_grad_norm: negative max_norm", [=] { optim::clip_grad_norm({param()}, -1.0); },
       R"(^clip_grad_norm: max_norm must be non-negative, got -1)"},
      {"clip_grad_value: negative", [=] { optim::clip_grad_value({param()}, -1); }, R"(^clip_grad_value: clip_value must be non-negative, got -1)"},
      {"StepLR: step_size 0", [=] {
         optim::SGD o({param()});
         optim::StepLR(o, 0);
       }, R"(^StepLR: step_size must be at least 1, got 0)"},
      {"ExponentialLR: negative gamma", [=] {
         optim::SGD o({param()});
         optim::ExponentialLR(o, -1);
       }, R"(^ExponentialLR: gamma must be positive, got -1)"},
      {"CosineAnnealingLR: t_max 0", [=] {
         optim::SGD o({param()});
         optim::CosineAnnealingLR(o, 0);
       }, R"(^CosineAnnealingLR: t_max must be at least 1, got 0)"},
      {"LinearLR: start_factor 0", [=] {
         optim::SGD o({param()});
         optim::LinearLR(o, 0, 1, 5);
       }, R"(^LinearLR: start_factor must be in \(0, 1\] and end_factor in \[0, 1\], got 0 and 1)"},
      {"ReduceLROnPlateau: factor 2", [=] {
         optim::SGD o({param()});
         optim::ReduceLROnPlateau(o, optim::ReduceLROnPlateau::Mode::min, 2.0);
       }, R"(^ReduceLROnPlateau: factor must be in \(0, 1\), got 2)"},
      {"ReduceLROnPlateau: negative patience", [=] {
         optim::SGD o({param()});
         optim::ReduceLROnPlateau(o, optim::ReduceLROnPlateau::Mode::min, 0.1, -1);
       }, R"(^ReduceLROnPlateau: patience, cooldown, threshold and min_lr must be non-negative, got -1)"},
      {"fit: no batches", [] {
         nn::Linear l(3, 4);
         optim::SGD o(l.parameters());
         optim::fit(l, o, {});
       }, R"(^fit: the batch source is empty \(count = 0\))"},
      {"fit: negative epochs", [] {
         nn::Linear l(3, 4);
         optim::SGD o(l.parameters());
         optim::fit(l, o, {1, [](std::int64_t) { return optim::StepResult{}; }}, {.epochs = -1});
       }, R"(^fit: epochs must be >= 0, got -1)"},
      {"fit: loss is not a scalar", [] {
         nn::Linear l(3, 4);
         optim::SGD o(l.parameters());
         optim::fit(l, o, {1, [&](std::int64_t) { return optim::StepResult{l(zeros({2, 3}))}; }}, {.progress = false});
       }, R"(^fit: batch 0 returned a loss of shape \[2, 4\], not a scalar)"},
      {"ProgressBar: step past the total", [] { optim::ProgressBar(3, stdout, false).update(5); }, R"(^ProgressBar: step 5 is outside \[0, 3\])"},
  };
}

std::vector<ErrorCase> data_errors() {
  return {
      {"pad_sequences: maxlen -2", [] { data::pad_sequences({{1, 2}}, -2); }, R"(^pad_sequences: maxlen must be -1 \(the longest\) or non-negative, got -2)"},
      {"pad_feature_sequences: no sequences", [] { data::pad_feature_sequences({}); }, R"(^pad_feature_sequences: no sequences)"},
      {"pad_feature_sequences: feature shapes differ", [] { data::pad_feature_sequences({zeros({2, 3}), zeros({2, 4})}); },
       R"(^pad_feature_sequences: sequence 1 is f32 \[2, 4\] but sequence 0 is f32 \[2, 3\])"},
      {"pad_feature_sequences: dtypes differ", [] { data::pad_feature_sequences({zeros({2, 3}), zeros({2, 3}, f64)}); },
       R"(^pad_feature_sequences: sequence 1 is f64 \[2, 3\] but sequence 0 is f32 \[2, 3\])"},
      {"pad_feature_sequences: scalar", [] { data::pad_feature_sequences({scalar(1)}); }, R"(^pad_feature_sequences: sequence 0 has shape \[\])"},
      {"padding_mask: length > maxlen", [] { data::padding_mask(tensor({1, 5}, i64), 4); }, R"(^padding_mask: lengths\[1\] = 5 is outside \[0, 4\])"},
      {"padding_mask: f32 lengths", [] { data::padding_mask(tensor({1.0}), 4); }, R"(^padding_mask: lengths must be i64 \[N\], got f32 \[1\])"},
      {"window_starts: zero window", [] { data::window_starts(10, 0); }, R"(^window_starts: .*must be positive, got 0, 1, 1)"},
      {"timeseries_windows: scalar data", [] { data::timeseries_windows(scalar(1), 2); }, R"(^timeseries_windows: expects a time axis first, got shape \[\])"},
      {"timeseries_windows: zero stride", [] { data::timeseries_windows(zeros({10}), 2, 0); }, R"(^timeseries_windows: .*got 2, 0, 1)"},
      {"next_token_windows: k = 0", [] { data::next_token_windows({1, 2, 3}, 0); }, R"(^next_token_windows: k and stride must be positive, got k = 0)"},
      {"StreamBatcher: zero batch", [] { data::StreamBatcher({1, 2, 3, 4}, 0, 2); }, R"(^StreamBatcher: batch_size and bptt must be positive, got batch_size = 0)"},
      {"StreamBatcher: streams too short", [] { data::StreamBatcher({1, 2, 3}, 2, 2); }, R"(^StreamBatcher: 3 tokens in 2 streams leave 1 per stream)"},
      {"StreamBatcher::window: index past the end", [] { data::StreamBatcher({1, 2, 3, 4, 5, 6}, 2, 2).window(5); },
       R"(^StreamBatcher::window: index 5 is out of range for 1 windows)"},
      {"StreamBatcher::window: negative index", [] { data::StreamBatcher({1, 2, 3, 4, 5, 6}, 2, 2).window(-1); },
       R"(^StreamBatcher::window: index -1 is out of range)"},
      {"batches: zero batch size", [] { data::batches(10, 0); }, R"(^batches: batch_size must be positive, got 0)"},
      {"bucket_batches: negative length", [] { data::bucket_batches({1, -2}, 1); }, R"(^bucket_batches: lengths\[1\] is negative \(-2\))"},
      {"permutation: negative n", [] { data::permutation(-1); }, R"(^permutation: n must be non-negative, got -1)"},
      {"take: row = size", [] { data::take(zeros({3, 2}), {0, 3}); }, R"(^index_select: index 3 is out of range for axis 0 of size 3 \(shape \[3, 2\]\))"},
      {"take: negative row", [] { data::take(zeros({3, 2}), {-1}); }, R"(^index_select: index -1 is out of range for axis 0 of size 3)"},
      {"Vocabulary::token: id = size", [] { data::Vocabulary().token(2); }, R"(^Vocabulary::token: id 2 is out of range for a vocabulary of 2 tokens)"},
      {"Vocabulary::decode: negative id", [] { data::Vocabulary().decode({0, -1}); }, R"(^Vocabulary::token: id -1 is out of range)"},
      {"Vocabulary::build: min_count 0", [] { data::Vocabulary::build({{"a"}}, 0); }, R"(^Vocabulary::build: min_count must be at least 1, got 0)"},
      {"Vocabulary::from_tokens: no specials", [] { data::Vocabulary::from_tokens({"a"}); },
       R"(^Vocabulary::from_tokens: the tokens must start with "<pad>", "<unk>")"},
  };
}

/// Edges PyTorch accepts: empty batches, empty ranges, zero-size products.
std::vector<ValidCase> valid_edges() {
  auto all_zero = [](const Tensor& t) {
    for (double v : t.to_vector<double>()) CHECK(v == 0);
  };
  auto is_nan = [](const Tensor& t) { CHECK(std::isnan(t.item())); };
  return {
      {"Linear: batch 0", [] { return nn::Linear(3, 4)(zeros({0, 3})); }, {0, 4}},
      {"Linear: batch 0, backward gives zero gradients", [] {
         nn::Linear l(3, 4);
         sum(l(zeros({0, 3}))).backward();
         return l.weight.grad();
       }, {4, 3}, all_zero},
      {"matmul: inner size 0 gives zeros", [] { return matmul(ones({2, 0}), ones({0, 3})); }, {2, 3}, all_zero},
      {"matmul: batched, inner size 0", [] { return matmul(ones({2, 2, 0}), ones({2, 0, 3})); }, {2, 2, 3}, all_zero},
      {"Embedding: batch 0", [] { return nn::Embedding(10, 3)(zeros({0, 5}, i64)); }, {0, 5, 3}},
      {"Embedding with padding_idx: zero-length ids", [] { return nn::Embedding(10, 3, 0)(zeros({2, 0}, i64)); }, {2, 0, 3}},
      {"softmax: batch 0", [] { return softmax(zeros({0, 3}), 1); }, {0, 3}},
      {"softmax: over an axis of size 0", [] { return softmax(zeros({2, 0}), 1); }, {2, 0}},
      {"Conv1D: batch 0", [] { return nn::Conv1D(3, 4, 2)(zeros({0, 5, 3})); }, {0, 4, 4}},
      {"max_pool1d: batch 0", [] { return nn::max_pool1d(zeros({0, 4, 3}), 2); }, {0, 2, 3}},
      {"scaled_dot_product_attention: batch 0", [] {
         return nn::scaled_dot_product_attention(zeros({0, 3, 4}), zeros({0, 5, 4}), zeros({0, 5, 4})).context;
       }, {0, 3, 4}},
      {"MultiheadAttention: batch 0", [] { return nn::MultiheadAttention(8, 2).forward(zeros({0, 3, 8}), zeros({0, 4, 8}), zeros({0, 4, 8})).context; },
       {0, 3, 8}},
      {"GRU: batch 0", [] { return nn::GRU(3, 4)(zeros({0, 5, 3})); }, {0, 5, 4}},
      {"LSTM: batch 0, backward", [] {
         nn::LSTM r(3, 4);
         sum(r(zeros({0, 5, 3}))).backward();
         return r.parameters()[0].grad();
       }, {16, 3}, all_zero},
      {"unroll: zero steps keep the initial state", [] {
         nn::LSTMCell c(3, 4);
         nn::Unrolled u = nn::unroll(c, zeros({2, 0, 3}), c.initial_state(2, f32));
         CHECK(u.outputs.empty());
         return u.final_state[1];
       }, {2, 4}, all_zero},
      {"mse_loss: empty batch is NaN", [] { return nn::mse_loss(zeros({0}), zeros({0})); }, {}, is_nan},
      {"cross_entropy: empty batch is NaN", [] { return nn::cross_entropy(zeros({0, 3}), zeros({0}, i64)); }, {}, is_nan},
      {"slice: start past the end is empty", [] { return slice(zeros({2, 3}), 1, 5, 10); }, {2, 0}},
      {"slice: huge step takes the first", [] { return slice(zeros({2, 3}), 1, 0, kMax, kMax); }, {2, 1}},
      {"pad_sequences: no sequences", [] { return data::pad_sequences({}).ids; }, {0, 0}},
      {"next_token_windows: corpus shorter than k", [] { return data::next_token_windows({1, 2}, 5).inputs; }, {0, 5}},
      {"generate: zero steps", [] { return nn::generate(constant_step(), zeros({2, 1}, i64), {}, 0); }, {2, 0}},
  };
}

}  // namespace

TEST_CASE("validation: core (creation, conversion, autograd entry points)") { check_errors(core_errors()); }
TEST_CASE("validation: ops (elementwise, reductions, shape, indexing, linear algebra)") { check_errors(op_errors()); }
TEST_CASE("validation: layers, losses and modules") { check_errors(layer_errors()); }
TEST_CASE("validation: attention") { check_errors(attention_errors()); }
TEST_CASE("validation: recurrent layers, cells and truncated BPTT") { check_errors(recurrent_errors()); }
TEST_CASE("validation: decoding") { check_errors(decode_errors()); }
TEST_CASE("validation: optimizers, schedules, clipping, fit") { check_errors(optim_errors()); }
TEST_CASE("validation: data") { check_errors(data_errors()); }
TEST_CASE("validation: valid edges give empty or neutral results, as in PyTorch") { check_valid(valid_edges()); }

TEST_CASE("validation: the tables cover at least 60 error cases") {
  const std::size_t errors = core_errors().size() + op_errors().size() + layer_errors().size() +
                             attention_errors().size() + recurrent_errors().size() + decode_errors().size() +
                             optim_errors().size() + data_errors().size();
  MESSAGE(errors, " error cases, ", valid_edges().size(), " valid edges");
  CHECK(errors >= 60);
}
