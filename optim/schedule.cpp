#include "xgrad/optim/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

namespace xgrad::optim {

namespace {

/// A schedule's factor must be a finite number (NaN or an infinity would reach the learning rate).
void check_finite(const char* op, const char* name, double value) {
  if (!std::isfinite(value)) fail("{}: {} must be finite, got {}", op, name, value);
}

}  // namespace

StepLR::StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma)
    : Schedule(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size < 1) fail("StepLR: step_size must be at least 1, got {}", step_size);
  if (!(gamma > 0)) fail("StepLR: gamma must be positive, got {}", gamma);
  check_finite("StepLR", "gamma", gamma);
}
double StepLR::lr_at(std::int64_t epoch) const {
  return base_lr_ * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : Schedule(optimizer), gamma_(gamma) {
  if (!(gamma > 0)) fail("ExponentialLR: gamma must be positive, got {}", gamma);
  check_finite("ExponentialLR", "gamma", gamma);
}
double ExponentialLR::lr_at(std::int64_t epoch) const { return base_lr_ * std::pow(gamma_, static_cast<double>(epoch)); }

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min)
    : Schedule(optimizer), t_max_(t_max), eta_min_(eta_min) {
  if (t_max < 1) fail("CosineAnnealingLR: t_max must be at least 1, got {}", t_max);
  if (!(eta_min >= 0)) fail("CosineAnnealingLR: eta_min must be non-negative, got {}", eta_min);
  check_finite("CosineAnnealingLR", "eta_min", eta_min);
}
double CosineAnnealingLR::lr_at(std::int64_t epoch) const {
  return eta_min_ + (base_lr_ - eta_min_) * (1 + std::cos(std::numbers::pi * static_cast<double>(epoch) / t_max_)) / 2;
}

LinearLR::LinearLR(Optimizer& optimizer, double start_factor, double end_factor, std::int64_t total_iters)
    : Schedule(optimizer), start_(start_factor), end_(end_factor), total_(total_iters) {
  if (total_iters < 1) fail("LinearLR: total_iters must be at least 1, got {}", total_iters);
  if (!(start_factor > 0 && start_factor <= 1 && end_factor >= 0 && end_factor <= 1))  // PyTorch's ranges
    fail("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1], got {} and {}", start_factor, end_factor);
  optimizer.set_lr(lr_at(0));
}
double LinearLR::lr_at(std::int64_t epoch) const {
  return base_lr_ * (start_ + (end_ - start_) * static_cast<double>(std::min(epoch, total_)) / total_);
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, Mode mode, double factor, std::int64_t patience,
                                     double threshold, std::int64_t cooldown, double min_lr)
    : optimizer_(optimizer), mode_(mode), factor_(factor), threshold_(threshold), min_lr_(min_lr),
      patience_(patience), cooldown_(cooldown),
      best_(mode == Mode::min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity()) {
  if (mode != Mode::min && mode != Mode::max) fail("ReduceLROnPlateau: unknown mode {}", static_cast<int>(mode));
  if (!(factor > 0 && factor < 1)) fail("ReduceLROnPlateau: factor must be in (0, 1), got {}", factor);
  if (patience < 0 || cooldown < 0 || !(threshold >= 0) || !(min_lr >= 0))
    fail("ReduceLROnPlateau: patience, cooldown, threshold and min_lr must be non-negative, got {}, {}, {} and {}",
         patience, cooldown, threshold, min_lr);
  check_finite("ReduceLROnPlateau", "threshold", threshold);
  check_finite("ReduceLROnPlateau", "min_lr", min_lr);
}

bool ReduceLROnPlateau::step(double metric) {
  const bool better = mode_ == Mode::min ? metric < best_ * (1 - threshold_) : metric > best_ * (1 + threshold_);
  if (better) {
    best_ = metric;
    bad_epochs_ = 0;
  } else {
    ++bad_epochs_;
  }
  if (cooldown_left_ > 0) {
    --cooldown_left_;
    bad_epochs_ = 0;
  }
  if (bad_epochs_ <= patience_) return false;
  const double reduced = std::max(optimizer_.lr() * factor_, min_lr_);
  bad_epochs_ = 0;
  cooldown_left_ = cooldown_;
  if (optimizer_.lr() - reduced <= 1e-8) return false;
  optimizer_.set_lr(reduced);
  return true;
}

}  // namespace xgrad::optim
