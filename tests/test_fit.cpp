// optim/fit and optim/progress: the training loop on a small regression, callbacks, schedules,
// NaN errors, and the progress bar in plain and terminal modes.
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::optim;
namespace fs = std::filesystem;

namespace {

/// Everything written to a tmpfile() stream so far.
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, file)) text.append(buffer, n);
  return text;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

/// y = x w + b + noise on fixed random data: 64 training and 32 validation examples, 3 inputs.
struct Regression {
  Regression() : model(3, 1) {
    model.to(f64);
    Generator gen(7);
    const Tensor w = tensor({{0.5}, {-1.0}, {2.0}}, f64);
    train_x = uniform({64, 3}, -1, 1, f64, &gen);
    val_x = uniform({32, 3}, -1, 1, f64, &gen);
    train_y = matmul(train_x, w) + 0.3 + 0.01 * randn({64, 1}, f64, &gen);
    val_y = matmul(val_x, w) + 0.3 + 0.01 * randn({32, 1}, f64, &gen);
  }
  /// Batches of 16 with the loss (MSE) and the mean absolute error as a metric.
  Batches batches(const Tensor& x, const Tensor& y) {
    return {x.size(0) / 16, [this, x, y](std::int64_t i) {
              Tensor xb = slice(x, 0, 16 * i, 16 * (i + 1)), yb = slice(y, 0, 16 * i, 16 * (i + 1));
              Tensor prediction = model(xb);
              return StepResult{nn::mse_loss(prediction, yb), {{"mae", nn::l1_loss(prediction, yb).item()}}, 16};
            }};
  }
  Batches train() { return batches(train_x, train_y); }
  Batches validation() { return batches(val_x, val_y); }
  /// A validation source of one batch whose loss in the n-th epoch is losses[n].
  Batches scripted(std::vector<double> losses) {
    auto epoch = std::make_shared<std::size_t>(0);
    return {1, [epoch, losses](std::int64_t) { return StepResult{scalar(losses.at((*epoch)++), f64)}; }};
  }
  /// A copy of the model's current weights.
  nn::StateDict snapshot() const {
    nn::StateDict copy;
    for (const auto& [name, t] : model.state_dict()) copy.emplace_back(name, t.detach().clone());
    return copy;
  }

  nn::Linear model;
  Tensor train_x, train_y, val_x, val_y;
};

bool same_weights(const nn::StateDict& a, const nn::StateDict& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].first != b[i].first || max_abs_diff(a[i].second, b[i].second) != 0) return false;
  return true;
}

/// A callback that snapshots the weights after every epoch.
std::shared_ptr<LambdaCallback> recorder(const Regression& problem, std::vector<nn::StateDict>& snapshots) {
  return std::make_shared<LambdaCallback>(
      [&problem, &snapshots](std::int64_t, const Logs&, bool&) { snapshots.push_back(problem.snapshot()); });
}

}  // namespace

TEST_CASE("fit: the loss of a linear regression falls, with validation logs and a progress summary") {
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0.1});
  std::FILE* out = std::tmpfile();
  REQUIRE(out != nullptr);
  Batches validation = problem.validation();
  auto train_source = problem.train();
  train_source.run = [&, run = train_source.run](std::int64_t i) {
    CHECK(problem.model.is_training());
    CHECK(autograd::grad_enabled());
    return run(i);
  };
  validation.run = [&, run = validation.run](std::int64_t i) {
    CHECK_FALSE(problem.model.is_training());
    CHECK_FALSE(autograd::grad_enabled());
    return run(i);
  };
  problem.model.eval();  // fit switches to training and back
  History history = fit(problem.model, optimizer, train_source, {.epochs = 8, .out = out}, &validation);

  REQUIRE(history.epochs.size() == 8);
  CHECK_FALSE(history.stopped_early);
  CHECK_FALSE(problem.model.is_training());
  for (std::size_t e = 1; e < history.epochs.size(); ++e) CHECK(history.epochs[e].at("loss") < history.epochs[e - 1].at("loss"));
  CHECK(history.epochs.back().at("loss") < 0.05 * history.epochs.front().at("loss"));
  for (const auto& logs : history.epochs) {
    for (const char* key : {"loss", "mae", "val_loss", "val_mae", "lr", "seconds"}) CHECK(logs.count(key) == 1);
    CHECK(logs.size() == 6);
    CHECK(logs.at("lr") == 0.1);
  }
  // The last validation ran on the final weights: evaluate() gives the same numbers.
  Logs evaluated = evaluate(problem.model, problem.validation());
  CHECK(evaluated.at("loss") == history.epochs.back().at("val_loss"));
  CHECK(evaluated.at("mae") == history.epochs.back().at("val_mae"));

  const std::string text = contents(out);
  std::fclose(out);
  CHECK(text.find('\r') == std::string::npos);
  const auto lines = split_lines(text);
  REQUIRE(lines.size() == 8 * 5);  // "Epoch i/8", a line for each of the first 3 of 4 batches, the summary
  CHECK(lines[0] == "Epoch 1/8");
  CHECK(matches(lines[1], R"(^1/4 \[======>\.{23}\] - ETA: [\d.:]+s? - loss: \d\.\d{4} - mae: \d\.\d{4} - [\d.]+ it/s$)"));
  CHECK(matches(lines[4], R"(^4/4 \[=+\] - \d+\.\ds - loss: \d\.\d{4} - mae: \d\.\d{4} - val_loss: \d\.\d{4} - val_mae: \d\.\d{4} - [\d.]+ it/s$)"));
  CHECK(lines[35] == "Epoch 8/8");
}

TEST_CASE("fit: the loss is a weighted mean over batches, and progress can be off") {
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0});  // weights stay put
  const std::vector<double> losses{1, 2, 4};
  const std::vector<std::int64_t> counts{1, 1, 2};
  Batches source{3, [&](std::int64_t i) {
                   Tensor loss = nn::mse_loss(problem.model(problem.train_x), problem.train_y) * 0 + losses[i];
                   return StepResult{loss, {{"acc", losses[i] / 10}}, counts[i]};
                 }};
  std::FILE* out = std::tmpfile();
  History history = fit(problem.model, optimizer, source, {.progress = false, .out = out});
  CHECK(contents(out).empty());
  std::fclose(out);
  CHECK(history.epochs.at(0).at("loss") == doctest::Approx((1 + 2 + 2 * 4) / 4.0));
  CHECK(history.epochs.at(0).at("acc") == doctest::Approx((0.1 + 0.2 + 2 * 0.4) / 4.0));
}

TEST_CASE("fit: ModelCheckpoint saves only when the monitored value improves") {
  TempDir dir("checkpoint");
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0.05});
  const std::string best = dir.file("best.safetensors"), every = dir.file("every.safetensors");
  auto checkpoint = std::make_shared<ModelCheckpoint>(problem.model, best);
  std::vector<nn::StateDict> snapshots;
  std::vector<bool> written;  // whether the best file holds this epoch's weights
  auto spy = std::make_shared<LambdaCallback>([&](std::int64_t, const Logs&, bool&) {
    snapshots.push_back(problem.snapshot());
    written.push_back(fs::exists(best) && same_weights(load_safetensors(best), snapshots.back()));
  });
  Batches validation = problem.scripted({1.0, 0.8, 0.9, 0.5, 0.7, 0.5});
  FitOptions options{.epochs = 6, .progress = false};
  options.callbacks = {checkpoint, std::make_shared<ModelCheckpoint>(problem.model, every, "val_loss", Mode::min, false),
                       spy};
  fit(problem.model, optimizer, problem.train(), options, &validation);

  CHECK(written == std::vector<bool>{true, true, false, true, false, false});  // a tie is no improvement
  CHECK(checkpoint->saved_epoch() == 3);
  CHECK(same_weights(load_safetensors(best), snapshots[3]));
  CHECK(same_weights(load_safetensors(every), snapshots[5]));
  // Loading the checkpoint into a fresh model gives the weights of the best epoch.
  nn::Linear restored(3, 1);
  restored.to(f64);
  restored.load(best);
  CHECK(same_weights(restored.state_dict(), snapshots[3]));
  // Atomic writes leave no temporary files behind.
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 2);

  // Without validation the default monitor is missing: a clear error, not a silent no-op.
  options.callbacks = {std::make_shared<ModelCheckpoint>(problem.model, best)};
  CHECK(matches(error_of([&] { fit(problem.model, optimizer, problem.train(), options); }),
                R"(ModelCheckpoint: the monitored value 'val_loss' is not in the logs \(present: loss, lr, mae, seconds\))"));
}

TEST_CASE("fit: EarlyStopping stops after `patience` epochs without improvement and restores the best") {
  for (bool restore_best : {false, true}) {
    INFO("restore_best ", restore_best);
    Regression problem;
    SGD optimizer(problem.model.parameters(), {.lr = 0.05});
    std::vector<nn::StateDict> snapshots;
    auto stopping = std::make_shared<EarlyStopping>(problem.model, "val_loss", 3, 0, Mode::min, restore_best);
    FitOptions options{.epochs = 20, .progress = false};
    options.callbacks = {recorder(problem, snapshots), stopping};
    Batches validation = problem.scripted({1.0, 0.5, 0.6, 0.5, 0.7, 0.1, 0.1});
    History history = fit(problem.model, optimizer, problem.train(), options, &validation);

    CHECK(history.stopped_early);
    REQUIRE(history.epochs.size() == 5);  // improvements at epochs 0 and 1, then 3 epochs without
    CHECK(stopping->best_epoch() == 1);
    CHECK(stopping->stopped_epoch() == 4);
    CHECK(same_weights(problem.snapshot(), snapshots[restore_best ? 1 : 4]));
  }
}

TEST_CASE("fit: EarlyStopping counts only improvements larger than min_delta, in either mode") {
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0.05});
  auto stopping = std::make_shared<EarlyStopping>(problem.model, "val_loss", 2, 0.1, Mode::max);
  FitOptions options{.epochs = 20, .progress = false};
  options.callbacks = {stopping};
  Batches validation = problem.scripted({0.5, 0.55, 0.7, 0.75, 0.79, 0.9});
  History history = fit(problem.model, optimizer, problem.train(), options, &validation);
  CHECK(history.stopped_early);
  CHECK(history.epochs.size() == 5);  // best 0.5 -> 0.7 at epoch 2; 0.75 and 0.79 are within 0.1
  CHECK(stopping->best_epoch() == 2);
  // A second fit starts afresh.
  Batches again = problem.scripted({0.3, 0.45, 0.6});  // each beats the last by > 0.1, not the old best
  options.epochs = 3;
  CHECK_FALSE(fit(problem.model, optimizer, problem.train(), options, &again).stopped_early);
}

TEST_CASE("fit: CSVLogger writes a header and one exact row per epoch") {
  TempDir dir("csv");
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0.1});
  ExponentialLR schedule(optimizer, 0.5);
  const std::string path = dir.file("log.csv");
  FitOptions options{.epochs = 3, .progress = false, .schedule = &schedule};
  options.callbacks = {std::make_shared<CSVLogger>(path)};
  Batches validation = problem.validation();
  History history = fit(problem.model, optimizer, problem.train(), options, &validation);

  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  const auto lines = split_lines(text.str());
  REQUIRE(lines.size() == 4);
  CHECK(lines[0] == "epoch,loss,mae,val_loss,val_mae,lr,seconds");
  for (std::size_t e = 0; e < 3; ++e) {
    const Logs& logs = history.epochs[e];
    CHECK(lines[e + 1] == fmt::format("{},{},{},{},{},{},{}", e, logs.at("loss"), logs.at("mae"), logs.at("val_loss"),
                                      logs.at("val_mae"), logs.at("lr"), logs.at("seconds")));
    // Full precision: the text parses back to the same double.
    CHECK(std::stod(lines[e + 1].substr(2, lines[e + 1].find(',', 2) - 2)) == logs.at("loss"));
  }
  CHECK(matches(lines[3], R"(^2,.*,0\.025,)"));
}

TEST_CASE("fit: schedules step once per epoch and ReduceLROnPlateau follows val_loss") {
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0.1});
  StepLR schedule(optimizer, 1, 0.5);
  std::vector<double> seen;  // the lr during every batch
  Batches source = problem.train();
  source.run = [&, run = source.run](std::int64_t i) {
    seen.push_back(optimizer.lr());
    return run(i);
  };
  History history = fit(problem.model, optimizer, source, {.epochs = 3, .progress = false, .schedule = &schedule});
  CHECK(seen == std::vector<double>{0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.025});
  CHECK(history.epochs[2].at("lr") == 0.025);
  CHECK(optimizer.lr() == 0.0125);

  // The training loss falls every epoch, but the scripted val_loss does not: the plateau sees val_loss.
  SGD plateau_optimizer(problem.model.parameters(), {.lr = 0.1});
  ReduceLROnPlateau plateau(plateau_optimizer, ReduceLROnPlateau::Mode::min, 0.5, 0);
  Batches validation = problem.scripted({1, 1, 1});
  history = fit(problem.model, plateau_optimizer, problem.train(), {.epochs = 3, .progress = false, .plateau = &plateau},
                &validation);
  CHECK(history.epochs[0].at("lr") == 0.1);
  CHECK(history.epochs[1].at("lr") == 0.1);
  CHECK(history.epochs[2].at("lr") == 0.05);
  CHECK(plateau_optimizer.lr() == 0.025);
}

TEST_CASE("fit: clip_norm bounds the gradient norm that reaches the optimizer") {
  struct RecordingSGD : SGD {
    using SGD::SGD;
    void step() override {
      norms.push_back(grad_norm(parameters()));
      SGD::step();
    }
    std::vector<double> norms;
  };
  Regression problem;
  RecordingSGD optimizer(problem.model.parameters(), {.lr = 0.1});
  fit(problem.model, optimizer, problem.train(), {.epochs = 2, .clip_norm = 1e-3, .progress = false});
  REQUIRE(optimizer.norms.size() == 8);
  for (double norm : optimizer.norms) CHECK(norm <= 1e-3 * (1 + 1e-9));
  CHECK(optimizer.norms.front() == doctest::Approx(1e-3));  // the initial gradients are much larger
}

TEST_CASE("fit: a NaN loss throws naming the epoch and batch; bad sources are refused") {
  Regression problem;
  SGD optimizer(problem.model.parameters(), {.lr = 0.1});
  std::int64_t calls = 0;
  Batches source = problem.train();
  source.run = [&, run = source.run](std::int64_t i) {
    StepResult result = run(i);
    if (++calls == 7) result.loss = result.loss * std::nan("");  // epoch 2, batch 3
    return result;
  };
  CHECK(matches(error_of([&] { fit(problem.model, optimizer, source, {.epochs = 3, .progress = false}); }),
                R"(^fit: the training loss is nan at epoch 2/3, batch 3/4$)"));

  Batches empty{0, source.run};
  CHECK(matches(error_of([&] { fit(problem.model, optimizer, empty); }), "fit: the batch source is empty"));
  Batches vector_loss{1, [&](std::int64_t) { return StepResult{problem.model(problem.train_x)}; }};
  CHECK(matches(error_of([&] { fit(problem.model, optimizer, vector_loss, {.progress = false}); }),
                R"(fit: batch 0 returned a loss of shape \[64, 1\], not a scalar)"));
  Batches untracked{1, [&](std::int64_t) { return StepResult{scalar(1.0)}; }};
  CHECK(matches(error_of([&] { fit(problem.model, optimizer, untracked, {.progress = false}); }),
                "does not require grad"));
  Batches reserved{1, [&](std::int64_t) { return StepResult{scalar(1.0), {{"val_acc", 1}}}; }};
  CHECK(matches(error_of([&] { evaluate(problem.model, reserved); }), "metric named 'val_acc'"));
}

TEST_CASE("ProgressBar: plain lines without '\\r' when not a terminal") {
  std::FILE* out = std::tmpfile();
  ProgressBar bar(50, out);
  CHECK_FALSE(bar.is_terminal());  // a file is not a terminal
  for (std::int64_t step = 1; step <= 50; ++step) bar.update(step, {{"loss", 0.5}, {"acc", 0.81}});
  bar.finish({{"loss", 0.4321}, {"acc", 0.81}, {"lr", 1e-5}});
  const std::string text = contents(out);
  std::fclose(out);
  CHECK(text.find('\r') == std::string::npos);
  const auto lines = split_lines(text);
  REQUIRE(lines.size() == 10);  // one line per tenth (5, 10, ..., 45) and the final one
  CHECK(matches(lines[0], R"(^ 5/50 \[==>\.{27}\] - ETA: [\d.:]+s? - loss: 0\.5000 - acc: 0\.8100 - [\d.]+ (it/s|s/it)$)"));
  CHECK(matches(lines[4], R"(^25/50 \[={14}>\.{15}\] - ETA: )"));
  CHECK(matches(lines[9], R"(^50/50 \[={30}\] - \d+\.\ds - loss: 0\.4321 - acc: 0\.8100 - lr: 1\.0000e-05 - [\d.]+ it/s$)"));
}

TEST_CASE("ProgressBar: redraws one line in place with '\\r' on a terminal") {
  std::FILE* out = std::tmpfile();
  ProgressBar bar(50, out, true, std::chrono::milliseconds(0));
  CHECK(bar.is_terminal());
  bar.update(12, {{"loss", 0.4321}, {"acc", 0.81}});
  bar.update(13, {{"loss", 0.4}});
  bar.finish({{"loss", 0.3}});
  const std::string text = contents(out);
  std::fclose(out);
  CHECK(std::count(text.begin(), text.end(), '\r') == 3);
  CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  CHECK(matches(text, R"(^\r12/50 \[======>\.{23}\] - ETA: [\d.:]+s? - loss: 0\.4321 - acc: 0\.8100 - [\d.]+ it/s\r13/50 )"));
  // The shorter second line is padded with spaces to cover the first.
  const auto second = text.substr(text.find('\r', 1), text.rfind('\r') - text.find('\r', 1));
  CHECK(second.size() == text.find('\r', 1));
  // finish() shows the last step reported (the work may stop early) and the elapsed time.
  CHECK(matches(text, R"(\r13/50 \[======>\.{23}\] - \d+\.\ds - loss: 0\.3000 - [\d.]+ it/s *\n$)"));
}

TEST_CASE("ProgressBar: on a terminal, redraws closer than the interval are skipped but the last step is drawn") {
  std::FILE* out = std::tmpfile();
  ProgressBar bar(10, out, true, std::chrono::hours(1));
  for (std::int64_t step = 1; step <= 10; ++step) bar.update(step, {{"loss", 1.0 / step}});
  bar.finish({{"loss", 0.1}});
  const std::string text = contents(out);
  std::fclose(out);
  CHECK(std::count(text.begin(), text.end(), '\r') == 3);  // step 1, step 10, finish
  CHECK(matches(text, R"(^\r 1/10 .*\r10/10 \[={30}\] - ETA: 0\.0s - loss: 0\.1000 .*\r10/10 \[={30}\] - \d+\.\ds - loss: 0\.1000 - [\d.]+ it/s *\n$)"));
}

TEST_CASE("format_duration: Keras-style durations") {
  CHECK(format_duration(0.42) == "0.4s");
  CHECK(format_duration(12.4) == "12s");
  CHECK(format_duration(185) == "3:05");
  CHECK(format_duration(3723) == "1:02:03");
}
