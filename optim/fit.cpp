#include "xgrad/optim/fit.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <tuple>

#include <fmt/format.h>

#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/error.hpp"
#include "xgrad/optim/clip.hpp"

namespace xgrad::optim {

namespace {

/// Restores a module's training mode when the scope ends (also on an exception).
class TrainingModeGuard {
 public:
  explicit TrainingModeGuard(nn::Module& model) : model_(model), was_training_(model.is_training()) {}
  ~TrainingModeGuard() { model_.train(was_training_); }
  TrainingModeGuard(const TrainingModeGuard&) = delete;
  TrainingModeGuard& operator=(const TrainingModeGuard&) = delete;

 private:
  nn::Module& model_;
  bool was_training_;
};

/// Weighted means of named values, kept in the order the names first appear.
class WeightedMeans {
 public:
  void add(const std::string& name, double value, double weight) {
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.name == name; });
    if (it == entries_.end()) it = entries_.insert(entries_.end(), Entry{name});
    it->sum += value * weight;
    it->weight += weight;
  }
  /// Sums every process's entries (the same names in the same order on every rank), so that
  /// all of them report the means over the whole data set.
  void reduce(const ProcessGroup& group) {
    if (group.size() == 1) return;
    std::vector<double> totals;
    for (const auto& e : entries_) totals.insert(totals.end(), {e.sum, e.weight});
    group.sum(totals);
    for (std::size_t i = 0; i < entries_.size(); ++i) entries_[i].sum = totals[2 * i], entries_[i].weight = totals[2 * i + 1];
  }
  Metrics means() const {
    Metrics out;
    for (const auto& e : entries_)
      out.emplace_back(e.name, e.weight > 0 ? e.sum / e.weight : std::numeric_limits<double>::quiet_NaN());
    return out;
  }

 private:
  struct Entry {
    std::string name;
    double sum = 0, weight = 0;
  };
  std::vector<Entry> entries_;
};

void check_source(const Batches& batches, const char* who) {
  check(batches.count > 0, "{}: the batch source is empty (count = {})", who, batches.count);
  check(static_cast<bool>(batches.run), "{}: the batch source has no run function", who);
}

/// Runs batch `index` and adds its loss and metrics to `means`; returns the result.
StepResult run_batch(const Batches& batches, std::int64_t index, WeightedMeans& means, const char* who) {
  StepResult result = batches.run(index);
  check(result.loss.defined() && result.loss.numel() == 1, "{}: batch {} returned a loss of shape {}, not a scalar",
        who, index, result.loss.defined() ? fmt::format("{}", result.loss.shape()) : std::string("(undefined)"));
  check(result.count >= 0, "{}: batch {} has a negative example count {}", who, index, result.count);
  const auto weight = static_cast<double>(result.count);
  means.add("loss", result.loss.item<double>(), weight);
  for (const auto& [name, value] : result.metrics) {
    check(name != "loss" && name != "lr" && name != "seconds" && !name.starts_with("val_"),
          "{}: batch {} returned a metric named '{}', a name reserved for the logs", who, index, name);
    means.add(name, value, weight);
  }
  return result;
}

/// Mean loss and metrics over every batch, in eval mode without grad ("loss" first).
Metrics evaluate_means(nn::Module& model, const Batches& batches) {
  check_source(batches, "evaluate");
  TrainingModeGuard restore(model);
  autograd::NoGradGuard no_grad;
  model.eval();
  WeightedMeans means;
  for (std::int64_t i = 0; i < batches.count; ++i) run_batch(batches, i, means, "evaluate");
  means.reduce(process_group());
  return means.means();
}

/// Where a column goes in the CSV: loss, metrics, val_loss, val_ metrics, lr, seconds.
int column_rank(const std::string& key) {
  if (key == "loss") return 0;
  if (key == "val_loss") return 2;
  if (key == "lr") return 4;
  if (key == "seconds") return 5;
  return key.starts_with("val_") ? 3 : 1;
}

}  // namespace

// --- Monitor ------------------------------------------------------------------------------

Monitor::Monitor(std::string key, Mode mode, double min_delta) : key_(std::move(key)), mode_(mode), min_delta_(min_delta) {
  check(min_delta >= 0, "Monitor '{}': min_delta must be >= 0, got {}", key_, min_delta);
  reset();
}

void Monitor::reset() {
  best_ = mode_ == Mode::min ? std::numeric_limits<double>::infinity() : -std::numeric_limits<double>::infinity();
}

double Monitor::read(const Logs& logs, const char* who) const {
  auto it = logs.find(key_);
  if (it != logs.end()) return it->second;
  std::vector<std::string> present;
  for (const auto& entry : logs) present.push_back(entry.first);
  fail("{}: the monitored value '{}' is not in the logs (present: {}); pass validation data or monitor another key",
       who, key_, fmt::join(present, ", "));
}

bool Monitor::improve(double value) {
  const bool better = mode_ == Mode::min ? value < best_ - min_delta_ : value > best_ + min_delta_;
  if (better) best_ = value;
  return better;
}

// --- callbacks ----------------------------------------------------------------------------

ModelCheckpoint::ModelCheckpoint(nn::Module& model, std::string path, std::string monitor, Mode mode, bool save_best_only)
    : model_(model), path_(std::move(path)), monitor_(std::move(monitor), mode), save_best_only_(save_best_only) {}

void ModelCheckpoint::on_epoch_end(std::int64_t epoch, const Logs& logs, bool& /*stop*/) {
  if (save_best_only_ && !monitor_.improve(monitor_.read(logs, "ModelCheckpoint"))) return;
  // The replicas are identical: rank 0 writes the file, and the others wait for it, so that
  // none of them loads it before it is there.
  if (is_main_process()) model_.save(path_);
  if (process_group().size() > 1) process_group().barrier();
  saved_epoch_ = epoch;
}

EarlyStopping::EarlyStopping(nn::Module& model, std::string monitor, std::int64_t patience, double min_delta, Mode mode,
                             bool restore_best)
    : model_(model), monitor_(std::move(monitor), mode, min_delta), patience_(patience), restore_best_(restore_best) {
  check(patience >= 0, "EarlyStopping: patience must be >= 0, got {}", patience);
}

void EarlyStopping::on_train_begin() {
  monitor_.reset();
  wait_ = 0;
  stopped_epoch_ = best_epoch_ = -1;
  best_state_.clear();
}

void EarlyStopping::on_epoch_end(std::int64_t epoch, const Logs& logs, bool& stop) {
  if (monitor_.improve(monitor_.read(logs, "EarlyStopping"))) {
    wait_ = 0;
    best_epoch_ = epoch;
    if (restore_best_) {
      autograd::NoGradGuard no_grad;
      best_state_.clear();
      for (const auto& [name, t] : model_.state_dict()) best_state_.emplace_back(name, t.detach().clone());
    }
    return;
  }
  if (++wait_ >= patience_) {
    stop = true;
    stopped_epoch_ = epoch;
  }
}

void EarlyStopping::on_train_end() {
  if (restore_best_ && !best_state_.empty()) model_.load_state_dict(best_state_);
}

CSVLogger::CSVLogger(std::string path) : path_(std::move(path)) {}

CSVLogger::~CSVLogger() { close(); }

void CSVLogger::close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void CSVLogger::on_train_begin() {
  close();
  columns_.clear();
  if (!is_main_process()) return;  // every rank has the same logs: rank 0 writes them
  file_ = std::fopen(path_.c_str(), "w");
  if (!file_) fail("CSVLogger: cannot open '{}' for writing: {}", path_, std::strerror(errno));
}

void CSVLogger::on_epoch_end(std::int64_t epoch, const Logs& logs, bool& /*stop*/) {
  if (!is_main_process()) return;
  check(file_ != nullptr, "CSVLogger: '{}' is not open (on_train_begin was not called)", path_);
  if (columns_.empty()) {
    for (const auto& entry : logs) columns_.push_back(entry.first);
    std::stable_sort(columns_.begin(), columns_.end(), [](const std::string& a, const std::string& b) {
      return std::forward_as_tuple(column_rank(a), a) < std::forward_as_tuple(column_rank(b), b);
    });
    fmt::print(file_, "epoch,{}\n", fmt::join(columns_, ","));
  }
  std::string row = std::to_string(epoch);
  for (const auto& column : columns_) {
    auto it = logs.find(column);
    row += it == logs.end() ? std::string(",") : fmt::format(",{}", it->second);
  }
  fmt::print(file_, "{}\n", row);
  check(std::fflush(file_) == 0, "CSVLogger: cannot write to '{}': {}", path_, std::strerror(errno));
}

void CSVLogger::on_train_end() { close(); }

// --- fit and evaluate ---------------------------------------------------------------------

Logs evaluate(nn::Module& model, const Batches& batches) {
  const Metrics means = evaluate_means(model, batches);
  return Logs(means.begin(), means.end());
}

History fit(nn::Module& model, Optimizer& optimizer, const Batches& train, const FitOptions& options,
            const Batches* validation) {
  check_source(train, "fit");
  if (validation) check_source(*validation, "fit (validation)");
  check(options.epochs >= 0, "fit: epochs must be >= 0, got {}", options.epochs);
  TrainingModeGuard restore(model);
  for (const auto& callback : options.callbacks) callback->on_train_begin();

  History history;
  for (std::int64_t epoch = 0; epoch < options.epochs; ++epoch) {
    const auto start = ProgressBar::Clock::now();
    const double lr = optimizer.lr();
    if (train.on_epoch_begin) train.on_epoch_begin(epoch);
    std::optional<ProgressBar> bar;
    // out = nullptr: silent, like progress = false; in a data-parallel job rank 0 prints
    if (options.progress && options.out != nullptr && is_main_process()) {
      fmt::print(options.out, "Epoch {}/{}\n", epoch + 1, options.epochs);
      bar.emplace(train.count, options.out);
    }

    WeightedMeans means;
    for (std::int64_t i = 0; i < train.count; ++i) {
      model.train();
      optimizer.zero_grad();
      const StepResult result = run_batch(train, i, means, "fit");
      const double loss = result.loss.item<double>();
      check(std::isfinite(loss), "fit: the training loss is {} at epoch {}/{}, batch {}/{}", loss, epoch + 1,
            options.epochs, i + 1, train.count);
      check(result.loss.requires_grad(),
            "fit: the loss of batch {} does not require grad (computed without grad, or not from the model?)", i);
      result.loss.backward();
      if (options.clip_norm > 0) clip_grad_norm(optimizer.parameters(), options.clip_norm);
      optimizer.step();
      if (bar) bar->update(i + 1, means.means());
    }

    means.reduce(process_group());  // the progress bar showed this rank's running means
    Metrics summary = means.means();
    if (validation) {
      if (validation->on_epoch_begin) validation->on_epoch_begin(epoch);
      for (const auto& [name, value] : evaluate_means(model, *validation)) summary.emplace_back("val_" + name, value);
    }
    Logs logs(summary.begin(), summary.end());
    logs["lr"] = lr;
    logs["seconds"] = std::chrono::duration<double>(ProgressBar::Clock::now() - start).count();
    if (bar) bar->finish(summary);

    if (options.schedule) options.schedule->step();
    if (options.plateau) options.plateau->step(logs.at(validation ? "val_loss" : "loss"));
    bool stop = false;
    for (const auto& callback : options.callbacks) callback->on_epoch_end(epoch, logs, stop);
    history.epochs.push_back(std::move(logs));
    if (stop) {
      history.stopped_early = true;
      break;
    }
  }
  for (const auto& callback : options.callbacks) callback->on_train_end();
  return history;
}

Tensor shard_rows(const Tensor& order, const ProcessGroup& group) {
  const std::int64_t n = group.size(), rank = group.rank();
  if (n == 1) return order;
  // Rank 0's order everywhere (a sum to which the others add zeros), whatever each rank's seed.
  std::vector<double> everyone = order.to_vector<double>();
  if (rank != 0) std::fill(everyone.begin(), everyone.end(), 0.0);
  group.sum(everyone);
  // Padded to a multiple of n by repeating the first rows (DistributedSampler), rank r takes
  // rows r, r + n, r + 2n, ...: batch k of every rank together is batch k of one process with
  // n times the batch size.
  const auto rows = static_cast<std::int64_t>(everyone.size());
  const std::int64_t per_rank = (rows + n - 1) / n;
  Tensor mine = empty({rows == 0 ? 0 : per_rank}, i64);
  for (std::int64_t j = 0; j < mine.numel(); ++j)
    mine.data<std::int64_t>()[j] = static_cast<std::int64_t>(everyone[static_cast<std::size_t>((rank + j * n) % rows)]);
  return mine;
}

Batches tensor_batches(nn::UnaryModule& model, const Tensor& x, const Tensor& y, nn::LossFunction loss,
                       std::int64_t batch_size, bool shuffle, Generator* generator) {
  const char* op = "tensor_batches";
  check(x.dim() > 0 && y.dim() > 0 && x.shape()[0] == y.shape()[0],
        "{}: x {} and y {} must have the same number of rows (first axis)", op, x.shape(), y.shape());
  check(batch_size > 0, "{}: batch_size must be positive, got {}", op, batch_size);
  check(static_cast<bool>(loss), "{}: no loss function", op);
  const std::int64_t rows = x.shape()[0];
  // The rows of the current epoch, shared by the batches' closures: in order, or (shuffle)
  // redrawn at each epoch's start as the argsort of uniform noise, a uniform random permutation.
  // In a data-parallel job every rank takes its shard of rank 0's order (shard_rows).
  const ProcessGroup& group = process_group();
  auto order = std::make_shared<Tensor>(shard_rows(arange(static_cast<double>(rows), i64), group));
  std::function<void(std::int64_t)> reshuffle = {};
  if (shuffle)
    reshuffle = [order, rows, generator, &group](std::int64_t) {
      *order = shard_rows(sort(uniform({rows}, 0, 1, f64, generator)).indices, group);
    };
  const std::int64_t mine = order->numel();
  return Batches{
      .count = (mine + batch_size - 1) / batch_size,
      .run = [&model, x, y, loss = std::move(loss), order, mine, batch_size](std::int64_t index) {
        const std::int64_t begin = index * batch_size, end = std::min(mine, begin + batch_size);
        const Tensor picked = slice(*order, 0, begin, end);
        const Tensor y_rows = index_select(y, 0, picked);
        return StepResult{loss(model(index_select(x, 0, picked)), y_rows), {}, end - begin};
      },
      .on_epoch_begin = reshuffle};
}

Batches tensor_batches(nn::UnaryModule& model, const Tensor& x, const Tensor& y, std::string_view loss,
                       std::int64_t batch_size, bool shuffle, Generator* generator) {
  return tensor_batches(model, x, y, nn::loss_by_name(loss), batch_size, shuffle, generator);
}

}  // namespace xgrad::optim
