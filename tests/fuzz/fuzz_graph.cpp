// libFuzzer target for autograd: the bytes program a small random graph. They pick 1-3 float64
// leaves (shapes of rank 0-3 with sizes 0-4, values including 0, +-inf and NaN), then a sequence
// of unary, binary, reduction and shape ops on the tensors made so far; an op the shapes do not
// allow must fail with an xgrad::Error and is skipped. The sum of the last tensor is then
// differentiated twice: autograd::grad (retaining the graph) and backward into .grad. The two
// must agree bit for bit and give every leaf a gradient of its own shape and dtype; a crash,
// a sanitizer report or a non-xgrad exception is a finding.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

/// Reads the fuzzer's bytes as a stream of small choices (zeros once they run out).
class Bytes {
 public:
  Bytes(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t next() { return at_ < size_ ? data_[at_++] : 0; }
  int below(int n) { return next() % n; }
  bool done() const { return at_ >= size_; }
  double value() {
    static const double special[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-300, 1e300,
                                     std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                     std::numeric_limits<double>::quiet_NaN(), 3.0};
    const std::uint8_t b = next();
    if (b < 48) return special[b % 12];
    return (static_cast<double>(b) - 152.0) / 16.0;  // [-6.5, 6.4]
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_, at_ = 0;
};

Tensor random_leaf(Bytes& in) {
  Shape shape;
  for (int r = in.below(4); r > 0; --r) shape.push_back(in.below(5));
  Tensor t = zeros(shape, f64);
  double* p = t.data<double>();
  for (std::int64_t i = 0; i < t.numel(); ++i) p[i] = in.value();
  return t.requires_grad_();
}

std::int64_t axis_of(Bytes& in, const Tensor& t) { return t.dim() == 0 ? 0 : in.below(static_cast<int>(t.dim())) - (in.below(2) ? t.dim() : 0); }

Tensor unary(Bytes& in, const Tensor& x) {
  switch (in.below(22)) {
    case 0: return neg(x);
    case 1: return exp(x);
    case 2: return log(x);
    case 3: return tanh(x);
    case 4: return sigmoid(x);
    case 5: return relu(x);
    case 6: return sqrt(x);
    case 7: return abs(x);
    case 8: return pow(x, in.value());
    case 9: return softplus(x, 1 + in.below(3), 20);
    case 10: return sum(x);
    case 11: return sum(x, axis_of(in, x), in.below(2) == 1);
    case 12: return mean(x, axis_of(in, x));
    case 13: return max(x);
    case 14: return max(x, axis_of(in, x)).values;
    case 15: return logsumexp(x, axis_of(in, x));
    case 16: return softmax(x, axis_of(in, x));
    case 17: return log_softmax(x, axis_of(in, x));
    case 18: return flatten(x);
    case 19: return transpose(x, axis_of(in, x), axis_of(in, x));
    case 20: return slice(x, axis_of(in, x), in.below(3), in.below(5), 1 + in.below(2));
    default: return pad(x, axis_of(in, x), in.below(3), in.below(3), in.value());
  }
}

Tensor binary(Bytes& in, const Tensor& a, const Tensor& b) {
  switch (in.below(9)) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return pow(a, b);
    case 5: return maximum(a, b);
    case 6: return matmul(a, b, in.below(2) == 1, in.below(2) == 1);
    case 7: return concat({a, b}, axis_of(in, a));
    default: return where(gt(a, b).to(f64), a, b);
  }
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  return std::memcmp(a.data<double>(), b.data<double>(), static_cast<std::size_t>(a.numel()) * sizeof(double)) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Bytes in(data, size);
  std::vector<Tensor> leaves;
  for (int n = 1 + in.below(3); n > 0; --n) leaves.push_back(random_leaf(in));
  std::vector<Tensor> made = leaves;
  for (int steps = 0; steps < 12 && !in.done(); ++steps) {
    const Tensor& a = made[in.below(static_cast<int>(made.size()))];
    try {
      if (in.below(2) == 0) made.push_back(unary(in, a));
      else made.push_back(binary(in, a, made[in.below(static_cast<int>(made.size()))]));
    } catch (const Error&) {
      // shapes or arguments the op refuses: a clean error
    }
  }
  const Tensor loss = sum(made.back());
  if (!loss.requires_grad()) return 0;
  std::vector<Tensor> by_grad;
  try {
    by_grad = autograd::grad({loss}, leaves, {}, false, true, /*allow_unused=*/true);
    loss.backward();
  } catch (const Error&) {
    return 0;  // e.g. anomaly-free refusal; still no crash
  }
  for (std::size_t i = 0; i < leaves.size(); ++i) {
    const Tensor g = leaves[i].grad();
    if (!by_grad[i].defined()) {
      if (g.defined()) std::abort();  // backward reached a leaf that grad() did not
      continue;
    }
    if (!g.defined() || g.shape() != leaves[i].shape() || g.dtype() != f64) std::abort();
    if (!same_bits(g, by_grad[i])) std::abort();  // the same graph, the same gradient
  }
  return 0;
}
