#include "xgrad/nn/dropout.hpp"

#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {
void check_probability(double p, const char* op) {
  if (!(p >= 0 && p <= 1)) fail("{}: p must be in [0, 1], got {}", op, p);
}
}  // namespace

Tensor dropout_mask(const Shape& shape, double p, Dtype dtype, Generator* gen) {
  check_probability(p, "dropout");
  if (p == 1) return zeros(shape, dtype);  // everything dropped (PyTorch), without 0 * inf
  Tensor keep = lt(uniform(shape, 0, 1, dtype, gen), scalar(1 - p, dtype));
  return keep * (1.0 / (1 - p));
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_probability(p, "dropout");
  if (!training || p == 0) return x;
  if (!is_floating(x.dtype()))
    fail("dropout: expects a floating input (f32 or f64), got {} {}", dtype_name(x.dtype()), x.shape());
  return x * dropout_mask(x.shape(), p, x.dtype(), gen);
}

Dropout::Dropout(double probability) : p(probability) { check_probability(p, "Dropout"); }

}  // namespace xgrad::nn
