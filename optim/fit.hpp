#pragma once
// A Keras-style training loop: fit() runs epochs over a generic batch source with a progress
// bar, validation, learning-rate schedules and callbacks (checkpoints, early stopping, CSV
// logs). A convenience, not a cage: the loop is ten lines anyone can write by hand:
//   for (i...) { model.train(); opt.zero_grad(); loss = forward(i); loss.backward(); opt.step(); }
// Epochs are numbered from 0 in logs and callbacks (as Keras) and from 1 in printed text.
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "xgrad/core/random.hpp"
#include "xgrad/core/tensor.hpp"
#include "xgrad/nn/loss.hpp"
#include "xgrad/nn/module.hpp"
#include "xgrad/optim/optimizer.hpp"
#include "xgrad/optim/process_group.hpp"
#include "xgrad/optim/progress.hpp"
#include "xgrad/optim/schedule.hpp"

namespace xgrad::optim {

/// What the forward pass over one batch gives back.
struct StepResult {
  Tensor loss = {};            ///< a scalar; in training it must require grad
  Metrics metrics = {};        ///< e.g. {{"acc", 0.8}}; averaged over batches weighted by count
  std::int64_t count = 1;      ///< examples in the batch, the weight of its loss and metrics
};

/// A source of batches: `run(index)` does the forward pass on batch index in [0, count).
struct Batches {
  std::int64_t count = 0;                                      ///< batches per epoch
  std::function<StepResult(std::int64_t index)> run = {};
  std::function<void(std::int64_t epoch)> on_epoch_begin = {};  ///< e.g. reshuffle; optional
};

/// One epoch's results: "loss", metrics, "val_loss", "val_<metric>", "lr" (the rate used
/// during the epoch) and "seconds" (its wall time, validation included).
using Logs = std::map<std::string, double>;

/// Hooks that fit() calls; override what you need.
class Callback {
 public:
  virtual ~Callback() = default;
  /// Before the first epoch (resets per-run state, so one callback can serve several fits).
  virtual void on_train_begin() {}
  /// After each epoch; set `stop` to end training after this epoch.
  virtual void on_epoch_end(std::int64_t /*epoch*/, const Logs& /*logs*/, bool& /*stop*/) {}
  /// After the last epoch (not when an exception ends training).
  virtual void on_train_end() {}
};

/// A callback from a function, for one-off hooks.
class LambdaCallback : public Callback {
 public:
  using EpochEnd = std::function<void(std::int64_t epoch, const Logs& logs, bool& stop)>;
  explicit LambdaCallback(EpochEnd on_epoch_end) : on_epoch_end_(std::move(on_epoch_end)) {}
  void on_epoch_end(std::int64_t epoch, const Logs& logs, bool& stop) override { on_epoch_end_(epoch, logs, stop); }

 private:
  EpochEnd on_epoch_end_;
};

/// Whether a monitored value is better when lower or higher (shared with ReduceLROnPlateau).
using Mode = ReduceLROnPlateau::Mode;

/// The best value seen of one log entry: improvement means beating it by more than min_delta.
class Monitor {
 public:
  Monitor(std::string key, Mode mode, double min_delta = 0);
  /// logs[key]; throws naming `who`, the key and the keys present when it is absent.
  double read(const Logs& logs, const char* who) const;
  /// True, and `value` becomes the best, when it improves on the best (NaN never does).
  bool improve(double value);
  /// Forgets the best value.
  void reset();
  double best() const { return best_; }
  const std::string& key() const { return key_; }

 private:
  std::string key_;
  Mode mode_;
  double min_delta_;
  double best_;
};

/// Saves the model (module.save: safetensors, written atomically) after an epoch whose
/// monitored value improved, or after every epoch when save_best_only is false.
class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(nn::Module& model, std::string path, std::string monitor = "val_loss", Mode mode = Mode::min,
                  bool save_best_only = true);
  void on_train_begin() override { monitor_.reset(); }
  void on_epoch_end(std::int64_t epoch, const Logs& logs, bool& stop) override;
  /// The epoch last saved (-1 before any).
  std::int64_t saved_epoch() const { return saved_epoch_; }

 private:
  nn::Module& model_;
  std::string path_;
  Monitor monitor_;
  bool save_best_only_;
  std::int64_t saved_epoch_ = -1;
};

/// Stops training after `patience` epochs in a row without improvement of the monitored value.
/// With restore_best, the model ends training with the weights of its best epoch (whether or not
/// it stopped early); a copy of them is kept meanwhile.
class EarlyStopping : public Callback {
 public:
  EarlyStopping(nn::Module& model, std::string monitor = "val_loss", std::int64_t patience = 3, double min_delta = 0,
                Mode mode = Mode::min, bool restore_best = false);
  void on_train_begin() override;
  void on_epoch_end(std::int64_t epoch, const Logs& logs, bool& stop) override;
  void on_train_end() override;
  /// The epoch that set stop (-1 when training ran to the end).
  std::int64_t stopped_epoch() const { return stopped_epoch_; }
  /// The epoch with the best monitored value (-1 before any).
  std::int64_t best_epoch() const { return best_epoch_; }

 private:
  nn::Module& model_;
  Monitor monitor_;
  std::int64_t patience_;
  bool restore_best_;
  std::int64_t wait_ = 0, stopped_epoch_ = -1, best_epoch_ = -1;
  nn::StateDict best_state_;  ///< clones, not views of the live weights
};

/// Writes one CSV row per epoch: the header "epoch,loss,<metrics>,val_loss,val_<metrics>,lr,seconds"
/// (metrics in name order), then values in full precision. The file is truncated when training
/// begins and each row is appended and flushed at once, so it can be followed during a run and
/// survives a crash.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string path);
  ~CSVLogger() override;
  CSVLogger(const CSVLogger&) = delete;
  CSVLogger& operator=(const CSVLogger&) = delete;
  void on_train_begin() override;
  void on_epoch_end(std::int64_t epoch, const Logs& logs, bool& stop) override;
  void on_train_end() override;

 private:
  void close();
  std::string path_;
  std::FILE* file_ = nullptr;
  std::vector<std::string> columns_;  ///< fixed by the first epoch
};

/// How fit() runs: epochs, clipping, output, learning-rate schedules and callbacks.
struct FitOptions {
  std::int64_t epochs = 1;
  double clip_norm = 0;                      ///< clip_grad_norm of the optimizer's parameters when > 0
  bool progress = true;                      ///< "Epoch i/n", a progress bar and a summary line per epoch
  std::FILE* out = stdout;                   ///< where progress goes; nullptr: nowhere (as progress = false)
  Schedule* schedule = nullptr;              ///< stepped after each epoch
  ReduceLROnPlateau* plateau = nullptr;      ///< stepped after each epoch with val_loss (loss without validation)
  std::vector<std::shared_ptr<Callback>> callbacks = {};  ///< called in this order after each epoch
};

/// The logs of every epoch run.
struct History {
  std::vector<Logs> epochs = {};
  bool stopped_early = false;
};

/// Trains `model` for options.epochs over `train`, validating on `validation` after each epoch
/// (eval mode, no grad). A non-finite training loss throws an Error naming the epoch and batch.
/// The model is left in the training mode it had on entry.
History fit(nn::Module& model, Optimizer& optimizer, const Batches& train, const FitOptions& options = {},
            const Batches* validation = nullptr);

/// The weighted mean loss and metrics over `batches`, in eval mode without grad ("loss", names).
Logs evaluate(nn::Module& model, const Batches& batches);

/// This process's share of the row order `order` (i64 [rows]) in a data-parallel job: rank 0's
/// order, padded to a multiple of the group's size by repeating its first rows, and every
/// size-th row from this rank's (PyTorch's DistributedSampler). Batch k of size b on every rank
/// together holds the rows of batch k of size b * size in one process. One process: `order`.
Tensor shard_rows(const Tensor& order, const ProcessGroup& group = process_group());

/// Keras' fit(x, y, batch_size, shuffle) as a batch source: the rows of x and y (their first
/// axis) in batches of batch_size (the last one shorter), in a new random order each epoch when
/// shuffle; a batch's loss is loss(model(x rows), y rows), by Keras name ("mse", "mae",
/// "binary_crossentropy", ...: nn::loss_by_name) or any function. In a data-parallel job each
/// process reads its shard (shard_rows) in batches of batch_size:
///   optim::fit(model, adam, optim::tensor_batches(model, x, y, "mse"), {.epochs = 10});
Batches tensor_batches(nn::UnaryModule& model, const Tensor& x, const Tensor& y, nn::LossFunction loss,
                       std::int64_t batch_size = 32, bool shuffle = true, Generator* generator = nullptr);
Batches tensor_batches(nn::UnaryModule& model, const Tensor& x, const Tensor& y, std::string_view loss,
                       std::int64_t batch_size = 32, bool shuffle = true, Generator* generator = nullptr);

}  // namespace xgrad::optim
