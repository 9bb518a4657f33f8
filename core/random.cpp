#include "xgrad/core/random.hpp"

#include <pthread.h>

#include "xgrad/core/kernel.hpp"

namespace xgrad {

namespace {
thread_local Generator* t_stand_in = nullptr;  // DefaultGeneratorScope

Generator& process_generator() {
  static Generator generator(0);
  // Fork safety: a child forked while another thread drew from the default generator inherits
  // its lock held by a thread that does not exist there, and its first draw waited forever.
  // The lock is held across fork() (taken in the prepare handler), so it is free in both.
  static const bool fork_safe = ::pthread_atfork([] { generator.mutex().lock(); }, [] { generator.mutex().unlock(); },
                                                 [] { generator.mutex().unlock(); }) == 0;
  (void)fork_safe;
  return generator;
}

}  // namespace

Generator& default_generator() { return t_stand_in ? *t_stand_in : process_generator(); }
void manual_seed(std::uint64_t seed) { process_generator().seed(seed); }

DefaultGeneratorScope::DefaultGeneratorScope(Generator& stand_in) : previous_(t_stand_in) { t_stand_in = &stand_in; }
DefaultGeneratorScope::~DefaultGeneratorScope() { t_stand_in = previous_; }

namespace {
template <class Distribution>
Tensor sample(const Shape& shape, Dtype dtype, Generator* gen, Distribution dist) {
  Generator& g = gen ? *gen : default_generator();
  Tensor t = empty(shape, dtype);
  std::lock_guard lock(g.mutex());
  auto& engine = g.engine();
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(dist(engine));
  });
  return t;
}
}  // namespace

Tensor randn(const Shape& shape, Dtype dtype, Generator* gen) {
  check(is_floating(dtype), "randn: expects a floating dtype, got {}", dtype_name(dtype));
  return sample(shape, dtype, gen, std::normal_distribution<double>(0.0, 1.0));
}

Tensor uniform(const Shape& shape, double low, double high, Dtype dtype, Generator* gen) {
  check(is_floating(dtype), "uniform: expects a floating dtype, got {}", dtype_name(dtype));
  check(low <= high, "uniform: low {} is above high {}", low, high);
  return sample(shape, dtype, gen, std::uniform_real_distribution<double>(low, high));
}

Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator* gen) {
  check(low < high, "randint: empty range [{}, {})", low, high);
  return sample(shape, i64, gen, std::uniform_int_distribution<std::int64_t>(low, high - 1));
}

}  // namespace xgrad
