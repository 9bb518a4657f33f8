#pragma once
// One seedable random generator: the same seed gives the same numbers and the same run.
#include <cstdint>
#include <random>

#include "core/tensor.hpp"

namespace xgrad {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  void seed(std::uint64_t seed) { engine_.seed(seed); }
  std::mt19937_64& engine() { return engine_; }

 private:
  std::mt19937_64 engine_;
};

/// The process-wide generator used when none is passed.
Generator& default_generator();
/// Reseeds the default generator.
void manual_seed(std::uint64_t seed);

/// Standard normal samples.
Tensor randn(const Shape& shape, Dtype dtype = f32, Generator* gen = nullptr);
/// Uniform samples in [low, high).
Tensor uniform(const Shape& shape, double low = 0, double high = 1, Dtype dtype = f32, Generator* gen = nullptr);
/// Uniform integers in [low, high), as i64.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator* gen = nullptr);

}  // namespace xgrad
