#include "common/adding.hpp"

#include "xgrad/autograd/ops.hpp"

namespace xgrad::examples {

Adding adding_problem(std::int64_t n, std::int64_t T, Generator& gen) {
  Tensor values = uniform({n, T}, 0, 1, f32, &gen);
  Tensor first = randint(0, T / 2, {n, 1}, &gen), second = randint(T / 2, T, {n, 1}, &gen);
  Tensor t = arange(static_cast<double>(T), i64);
  Tensor marks = (eq(t, first) + eq(t, second)).to(f32);  // [N, T]
  return {stack({values, marks}, -1), sum(values * marks, 1, true)};
}

}  // namespace xgrad::examples
