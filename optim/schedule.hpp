#pragma once
// Learning-rate schedules. Each sets the optimizer's lr from the epoch count (closed forms of
// PyTorch's StepLR, ExponentialLR, CosineAnnealingLR, LinearLR) or from a metric
// (ReduceLROnPlateau). Call step() once per epoch (or per batch, for warm-up). Factors that are
// NaN, infinite or out of range are errors naming the schedule and the field; a learning rate a
// schedule reaches that is not finite (gamma > 1 for long enough) is refused by set_lr.
#include <cstdint>

#include "xgrad/optim/optimizer.hpp"

namespace xgrad::optim {

/// The base of the epoch-count schedules: step() sets the optimizer's lr to lr_at(the next epoch).
class Schedule {
 public:
  explicit Schedule(Optimizer& optimizer) : optimizer_(optimizer), base_lr_(optimizer.lr()) {}
  virtual ~Schedule() = default;
  /// Advances one epoch and sets the optimizer's learning rate.
  void step() {
    optimizer_.set_lr(lr_at(epoch_ + 1));  // a refused learning rate leaves the epoch where it was
    ++epoch_;
  }
  std::int64_t epoch() const { return epoch_; }
  /// The learning rate this schedule gives at an epoch.
  virtual double lr_at(std::int64_t epoch) const = 0;

 protected:
  Optimizer& optimizer_;
  double base_lr_;
  std::int64_t epoch_ = 0;
};

/// lr = base * gamma^floor(epoch / step_size)
class StepLR : public Schedule {
 public:
  StepLR(Optimizer& optimizer, std::int64_t step_size, double gamma = 0.1);
  double lr_at(std::int64_t epoch) const override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

/// lr = base * gamma^epoch
class ExponentialLR : public Schedule {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  double lr_at(std::int64_t epoch) const override;

 private:
  double gamma_;
};

/// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / t_max)) / 2
class CosineAnnealingLR : public Schedule {
 public:
  CosineAnnealingLR(Optimizer& optimizer, std::int64_t t_max, double eta_min = 0);
  double lr_at(std::int64_t epoch) const override;

 private:
  std::int64_t t_max_;
  double eta_min_;
};

/// Linear warm-up: lr = base * (start + (end - start) min(epoch, total) / total); the optimizer
/// starts at base * start.
class LinearLR : public Schedule {
 public:
  LinearLR(Optimizer& optimizer, double start_factor = 1.0 / 3, double end_factor = 1, std::int64_t total_iters = 5);
  double lr_at(std::int64_t epoch) const override;

 private:
  double start_, end_;
  std::int64_t total_;
};

/// Divides the learning rate by 1/factor when a metric has not improved (by more than a
/// relative threshold) for `patience` epochs; then waits `cooldown` epochs.
class ReduceLROnPlateau {
 public:
  enum class Mode { min, max };
  ReduceLROnPlateau(Optimizer& optimizer, Mode mode = Mode::min, double factor = 0.1, std::int64_t patience = 10,
                    double threshold = 1e-4, std::int64_t cooldown = 0, double min_lr = 0);
  /// Reports the epoch's metric; returns true when the learning rate was reduced.
  bool step(double metric);

 private:
  Optimizer& optimizer_;
  Mode mode_;
  double factor_, threshold_, min_lr_;
  std::int64_t patience_, cooldown_;
  double best_;
  std::int64_t bad_epochs_ = 0, cooldown_left_ = 0;
};

}  // namespace xgrad::optim
