#pragma once
// One seedable random generator: the same seed gives the same numbers and the same run.
#include <cstdint>
#include <mutex>
#include <random>

#include "xgrad/core/tensor.hpp"

namespace xgrad {

/// A Mersenne Twister with a lock. randn, uniform and randint hold the lock while they draw a
/// tensor, so one generator (the default one included) can be used from several threads: every
/// draw gets distinct numbers, in an order that depends on the threads' timing. For threaded
/// runs that are reproducible, give each thread its own Generator. Copies copy the state.
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) : engine_(seed) {}
  Generator(const Generator& other) : engine_(other.state()) {}
  Generator& operator=(const Generator& other) {
    if (this != &other) {
      std::mt19937_64 copied = other.state();
      std::lock_guard lock(mutex_);
      engine_ = copied;
    }
    return *this;
  }
  void seed(std::uint64_t seed) {
    std::lock_guard lock(mutex_);
    engine_.seed(seed);
  }
  /// The engine itself, unlocked: a caller that shares the generator between threads holds
  /// mutex() while it draws.
  std::mt19937_64& engine() { return engine_; }
  std::mutex& mutex() const { return mutex_; }

 private:
  std::mt19937_64 state() const {
    std::lock_guard lock(mutex_);
    return engine_;
  }
  std::mt19937_64 engine_;
  mutable std::mutex mutex_;
};

/// The generator used when none is passed: the process-wide one (safe to draw from in several
/// threads), or this thread's stand-in while a DefaultGeneratorScope lives.
Generator& default_generator();
/// Reseeds the process-wide default generator.
void manual_seed(std::uint64_t seed);

/// Makes `stand_in` this thread's default generator for a scope, leaving the process-wide one
/// untouched: checkpoint replays its forward's draws this way while other threads draw as usual.
class DefaultGeneratorScope {
 public:
  explicit DefaultGeneratorScope(Generator& stand_in);
  ~DefaultGeneratorScope();
  DefaultGeneratorScope(const DefaultGeneratorScope&) = delete;
  DefaultGeneratorScope& operator=(const DefaultGeneratorScope&) = delete;

 private:
  Generator* previous_;
};

/// Standard normal samples.
Tensor randn(const Shape& shape, Dtype dtype = f32, Generator* gen = nullptr);
/// Uniform samples in [low, high).
Tensor uniform(const Shape& shape, double low = 0, double high = 1, Dtype dtype = f32, Generator* gen = nullptr);
/// Uniform integers in [low, high), as i64.
Tensor randint(std::int64_t low, std::int64_t high, const Shape& shape, Generator* gen = nullptr);

}  // namespace xgrad
