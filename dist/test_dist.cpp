// xgrad::dist on two ranks (CTest runs it with mpirun -np 2): the collectives, DataParallel's
// equivalence with one process at the global batch (an LSTM language model and the CNN-GRU
// forecaster, float64, 20 Adam steps), unused parameters, no_sync, fit with sharded batches and
// reduced logs, and resuming from a checkpoint. Each rank also computes the single-process
// reference itself (the data is generated, the same on every rank), so nothing is compared
// against a number written here.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <regex>
#include <string>

#include <unistd.h>

#include <xgrad/dist/data_parallel.hpp>
#include <xgrad/dist/dist.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}
bool matches(const std::string& text, const std::string& pattern) { return std::regex_search(text, std::regex(pattern)); }

/// max |a - b| / max |b| over every parameter (relative to each tensor's scale).
double relative_difference(const nn::Module& a, const nn::Module& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  REQUIRE(pa.size() == pb.size());
  double worst = 0;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    const auto x = pa[i].to_vector<double>(), y = pb[i].to_vector<double>();
    double diff = 0, scale = 0;
    for (std::size_t k = 0; k < x.size(); ++k) diff = std::max(diff, std::abs(x[k] - y[k])), scale = std::max(scale, std::abs(y[k]));
    worst = std::max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

/// The largest difference of a number across the ranks (0 when every rank holds the same).
double spread(double value) {
  return dist::all_reduce(value, dist::ReduceOp::max) - dist::all_reduce(value, dist::ReduceOp::min);
}

/// How far rank 0's parameters are from this rank's (every rank gets the largest).
double replica_difference(const nn::Module& m) {
  double worst = 0;
  for (const auto& p : m.parameters()) {
    Tensor mine = p.detach().clone(), zeroth = p.detach().clone();
    dist::broadcast(zeroth, 0);
    worst = std::max(worst, max(abs(mine - zeroth)).item());
  }
  return dist::all_reduce(worst, dist::ReduceOp::max);
}

struct LanguageModel : nn::UnaryModule {
  nn::Holder<nn::Embedding> embed{this, "embed", 11, 6};
  nn::Holder<nn::LSTM> lstm{this, "lstm", 6, 12};
  nn::Holder<nn::Linear> head{this, "head", 12, 11};
  Tensor forward(const Tensor& tokens) override { return head(lstm(embed(tokens))); }
};

struct Forecaster : nn::UnaryModule {  // examples/cnn_gru_forecast.cpp's model, smaller
  nn::Holder<nn::Conv1D> conv1{this, "conv1", 1, 8, 5};
  nn::Holder<nn::MaxPool1D> pool{this, "pool", 2};
  nn::Holder<nn::Conv1D> conv2{this, "conv2", 8, 8, 3};
  nn::Holder<nn::GRU> gru{this, "gru", 8, 8};
  nn::Holder<nn::Linear> dense{this, "dense", 8, 1};
  Tensor forward(const Tensor& x) override { return dense(gru->run(relu(conv2(pool(relu(conv1(x)))))).h()); }
};

/// Global batch `step` of a task: inputs and targets of 2b rows, from a generator seeded by the
/// step (the same on every rank).
using Batch = std::pair<Tensor, Tensor>;
Batch lm_batch(std::int64_t step, std::int64_t rows) {
  Generator gen(1000 + static_cast<std::uint64_t>(step));
  Tensor tokens = floor(uniform({rows, 9}, 0, 11, f64, &gen)).to(i64);
  return {slice(tokens, 1, 0, 8), slice(tokens, 1, 1, 9)};
}
Batch forecast_batch(std::int64_t step, std::int64_t rows) {
  Generator gen(2000 + static_cast<std::uint64_t>(step));
  Tensor x = randn({rows, 20, 1}, f64, &gen);
  return {x, sum(slice(x, 1, 15, 20), {1}) * 0.3};
}

using Task = std::function<Batch(std::int64_t step, std::int64_t rows)>;
using Loss = std::function<Tensor(nn::UnaryModule&, const Batch&)>;

Tensor lm_loss(nn::UnaryModule& m, const Batch& b) { return nn::cross_entropy(m(b.first), b.second); }
Tensor forecast_loss(nn::UnaryModule& m, const Batch& b) { return nn::l1_loss(m(b.first), b.second); }

/// This rank's rows of a global batch: r, r + N, r + 2N, ...
Batch my_rows(const Batch& global) {
  std::vector<std::int64_t> rows;
  for (std::int64_t r = dist::rank(); r < global.first.size(0); r += dist::world_size()) rows.push_back(r);
  return {data::take(global.first, rows), data::take(global.second, rows)};
}

/// 20 Adam steps at per-rank batch b under DataParallel against one process at batch N*b.
template <class Model>
void check_equivalence(const Task& task, const Loss& loss, std::int64_t b, dist::DataParallelOptions options) {
  const std::int64_t global = b * dist::world_size();
  manual_seed(7);
  Model reference;
  reference.to(f64);
  manual_seed(7 + 31 * static_cast<std::uint64_t>(dist::rank()));  // each rank its own initial weights
  Model model;
  model.to(f64);
  dist::DataParallel ddp(model, options);
  CHECK(relative_difference(model, reference) == 0);  // rank 0's weights everywhere
  optim::Adam adam(model.parameters(), {.lr = 1e-2}), adam_ref(reference.parameters(), {.lr = 1e-2});
  std::vector<Tensor> start;
  for (const auto& p : reference.parameters()) start.push_back(p.detach().clone());
  for (std::int64_t step = 0; step < 20; ++step) {
    const Batch batch = task(step, global);
    adam.zero_grad();
    loss(model, my_rows(batch)).backward();
    adam.step();
    adam_ref.zero_grad();
    loss(reference, batch).backward();
    adam_ref.step();
  }
  const double error = relative_difference(model, reference);
  double moved = 0;
  for (std::size_t i = 0; i < start.size(); ++i) moved = std::max(moved, max(abs(reference.parameters()[i] - start[i])).item());
  MESSAGE("buckets ", ddp.bucket_count(), ", overlap ", options.overlap, ": relative difference from one process ",
          error, " after 20 steps (parameters moved up to ", moved, ")");
  CHECK(error <= 1e-10);
  CHECK(moved > 1e-2);  // the comparison is not of untrained weights
  CHECK(replica_difference(model) == 0);
  CHECK(ddp.stats().steps == 20);
}

}  // namespace

TEST_CASE("world: rank, size, broadcast and all_reduce of tensors; mismatches are errors") {
  REQUIRE(dist::world_size() == 2);
  const int r = dist::rank();
  CHECK(matches(dist::describe(), "rank [01] of 2 on "));
  for (Dtype dtype : {f32, f64, i64}) {
    Tensor t = full({2, 3}, r + 1.0, dtype);
    dist::all_reduce(t);
    CHECK(t.to_vector<double>() == std::vector<double>(6, 3.0));
    Tensor m = full({4}, r + 1.0, dtype);
    dist::all_reduce(m, dist::ReduceOp::max);
    CHECK(m.to_vector<double>() == std::vector<double>(4, 2.0));
    dist::all_reduce(m, dist::ReduceOp::min);
    CHECK(m.to_vector<double>() == std::vector<double>(4, 2.0));
    Tensor b = full({3}, 10.0 * r, dtype);
    dist::broadcast(b, 1);
    CHECK(b.to_vector<double>() == std::vector<double>(3, 10.0));
  }
  Tensor empty_one = zeros({0, 4});
  dist::all_reduce(empty_one);
  CHECK(empty_one.numel() == 0);
  CHECK(dist::all_reduce(r + 0.5) == 2.0);
  Tensor odd = zeros({r + 1});  // [1] on rank 0, [2] on rank 1: both ranks get an Error, no hang
  CHECK(matches(error_of([&] { dist::all_reduce(odd); }), R"(dist::all_reduce: the ranks' tensors differ .*rank [01] of 2)"));
  Tensor typed = zeros({2}, r == 0 ? f32 : f64);
  CHECK(matches(error_of([&] { dist::broadcast(typed); }), R"(dist::broadcast: the ranks' tensors differ)"));
  Tensor one = zeros({1});
  CHECK(matches(error_of([&] { dist::broadcast(one, 2); }), R"(dist::broadcast: root 2 is not a rank of 2)"));
  dist::barrier();
}

TEST_CASE("DataParallel: an LSTM language model at batch b per rank equals one process at batch 2b") {
  check_equivalence<LanguageModel>(lm_batch, lm_loss, 4, {});
  // Buckets of a few hundred bytes: many allreduces, started during backward, or all after it.
  check_equivalence<LanguageModel>(lm_batch, lm_loss, 3, {.bucket_mb = 0.0005});
  check_equivalence<LanguageModel>(lm_batch, lm_loss, 3, {.bucket_mb = 0.0005, .overlap = false});
}

TEST_CASE("DataParallel: the CNN-GRU forecaster at batch b per rank equals one process at batch 2b") {
  check_equivalence<Forecaster>(forecast_batch, forecast_loss, 4, {});
  check_equivalence<Forecaster>(forecast_batch, forecast_loss, 4, {.bucket_mb = 0.001});
}

TEST_CASE("DataParallel: parameters without a gradient on some or all ranks") {
  struct Heads : nn::Module {
    nn::Holder<nn::Linear> a{this, "a", 3, 2}, b{this, "b", 3, 2}, never{this, "never", 3, 2};
  } heads;
  heads.to(f64);
  dist::DataParallel ddp(heads, {.bucket_mb = 0.0001});
  Tensor x = tensor({{1.0, -2.0, 0.5}}, f64);
  // Rank 0 uses head a, rank 1 head b: each gradient is that rank's over 2 (the other adds 0).
  auto loss_of = [&](int rank) { return sum(rank == 0 ? heads.a(x) : heads.b(x) * 3.0); };
  std::vector<Tensor> expected;
  for (int rank = 0; rank < 2; ++rank) {
    nn::Linear& head = rank == 0 ? *heads.a : *heads.b;
    auto grads = autograd::grad({loss_of(rank)}, head.parameters());
    for (auto& g : grads) expected.push_back(g / 2.0);
  }
  loss_of(dist::rank()).backward();
  std::vector<Tensor> got;
  for (const auto& p : heads.a->parameters()) got.push_back(p.grad());
  for (const auto& p : heads.b->parameters()) got.push_back(p.grad());
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    REQUIRE(got[i].defined());
    CHECK(max(abs(got[i] - expected[i])).item() == 0);
  }
  for (const auto& p : heads.never->parameters()) CHECK_FALSE(p.grad().defined());  // as in one process
}

TEST_CASE("DataParallel: no_sync accumulates locally; the next backward averages the sum") {
  manual_seed(3);
  LanguageModel reference;
  reference.to(f64);
  manual_seed(3 + 5 * static_cast<std::uint64_t>(dist::rank()));  // rank 0 as the reference
  LanguageModel model;
  model.to(f64);
  dist::DataParallel ddp(model, {.bucket_mb = 0.001});
  // Two micro-batches per rank; one process sees the four micro-batches of both ranks.
  std::vector<Batch> micro;
  for (int k = 0; k < 2; ++k) micro.push_back(lm_batch(50 + k, 4));
  {
    auto guard = ddp.no_sync();
    lm_loss(model, my_rows(micro[0])).backward();
  }
  CHECK(ddp.stats().steps == 0);
  lm_loss(model, my_rows(micro[1])).backward();
  CHECK(ddp.stats().steps == 1);
  for (const auto& m : micro) lm_loss(reference, m).backward();
  const auto mine = model.parameters(), ref = reference.parameters();
  double worst = 0;
  for (std::size_t i = 0; i < mine.size(); ++i)
    worst = std::max(worst, max(abs(mine[i].grad() - ref[i].grad())).item() / std::max(1e-300, max(abs(ref[i].grad())).item()));
  MESSAGE("no_sync: gradients within ", worst, " of one process");
  CHECK(worst <= 1e-12);
}

TEST_CASE("fit under DataParallel: sharded batches, the single-process history and decisions, files from rank 0 only") {
  const std::int64_t rows = 40, b = 5;
  Generator data_gen(11);
  Tensor x = randn({rows, 20, 1}, f64, &data_gen);
  Tensor y = sum(slice(x, 1, 15, 20), {1}) * 0.3;
  auto run = [&](bool distributed, const std::string& csv) {
    manual_seed(distributed ? 20 + static_cast<std::uint64_t>(dist::rank()) : 20);
    auto model = std::make_shared<Forecaster>();
    model->to(f64);
    std::unique_ptr<dist::DataParallel> ddp;
    const optim::ProcessGroup* saved = nullptr;
    if (distributed) ddp = std::make_unique<dist::DataParallel>(*model);
    else saved = optim::set_process_group(nullptr);  // this rank alone, as one process
    optim::Adam adam(model->parameters(), {.lr = 3e-3});
    // Rank 0's shuffle is the one used: the other ranks' seeds do not matter.
    Generator order(distributed ? 5 + static_cast<std::uint64_t>(dist::rank()) * 17 : 5);
    auto train = optim::tensor_batches(*model, x, y, "mae", distributed ? b : 2 * b, true, &order);
    auto val = optim::tensor_batches(*model, slice(x, 0, 0, 14), slice(y, 0, 0, 14), "mae", 3, false);
    // The decisions taken from the reduced logs: the learning rate halves after any epoch that
    // does not improve val_loss by 1 %, and two such epochs in a row stop training.
    optim::ReduceLROnPlateau plateau(adam, optim::Mode::min, 0.5, 0, 1e-2);
    auto stopping = std::make_shared<optim::EarlyStopping>(*model, "val_loss", 2, 0.0);
    auto history = optim::fit(*model, adam, train,
                              {.epochs = 8, .progress = false, .plateau = &plateau,
                               .callbacks = {std::make_shared<optim::CSVLogger>(csv), stopping}},
                              &val);
    if (saved) optim::set_process_group(saved);
    return std::make_pair(history, model);
  };
  const std::string dir = std::filesystem::temp_directory_path() / ("xgrad_dist_fit_" + std::to_string(::getpid()));
  const std::string csv = dir + "_rank" + std::to_string(dist::rank()) + ".csv";
  auto [one, reference] = run(false, dir + "_alone" + std::to_string(dist::rank()) + ".csv");
  auto [two, model] = run(true, csv);
  MESSAGE("one process: ", one.epochs.size(), " epochs, last lr ", one.epochs.back().at("lr"), "; two ranks: ",
          two.epochs.size(), " epochs, last lr ", two.epochs.back().at("lr"));
  REQUIRE(two.epochs.size() == one.epochs.size());
  CHECK(two.stopped_early == one.stopped_early);
  CHECK(spread(static_cast<double>(two.epochs.size())) == 0);
  for (std::size_t e = 0; e < two.epochs.size(); ++e) {
    CHECK(two.epochs[e].at("lr") == one.epochs[e].at("lr"));
    CHECK(spread(two.epochs[e].at("lr")) == 0);
    for (const char* key : {"loss", "val_loss"}) {
      CHECK(spread(two.epochs[e].at(key)) == 0);  // every rank reports the same number
      CHECK(two.epochs[e].at(key) == doctest::Approx(one.epochs[e].at(key)).epsilon(1e-10));
    }
  }
  CHECK(relative_difference(*model, *reference) <= 1e-10);
  CHECK(std::filesystem::exists(csv) == (dist::rank() == 0));
  dist::barrier();
  std::filesystem::remove(csv);
  std::filesystem::remove(dir + "_alone" + std::to_string(dist::rank()) + ".csv");
}

/// A replica on one rank: the model (float64; from a checkpoint when one is given), its
/// DataParallel and its optimizer.
struct Replica {
  LanguageModel model;
  dist::DataParallel ddp;
  optim::Adam adam;
  explicit Replica(const std::string& checkpoint = "")
      : ddp(prepare(model, checkpoint)), adam(model.parameters(), {.lr = 1e-2}) {
    if (!checkpoint.empty()) adam.load(checkpoint + ".adam");
  }
  static LanguageModel& prepare(LanguageModel& m, const std::string& checkpoint) {
    m.to(f64);
    if (!checkpoint.empty()) m.load(checkpoint + ".model");
    return m;
  }
  void train(std::int64_t from, std::int64_t to) {
    for (std::int64_t step = from; step < to; ++step) {
      adam.zero_grad();
      lm_loss(model, my_rows(lm_batch(step, 6))).backward();
      adam.step();
    }
  }
};

TEST_CASE("resume: rank 0's checkpoint continues the same trajectory") {
  const std::string path = std::filesystem::temp_directory_path() /
                           ("xgrad_dist_resume_" + std::to_string(dist::all_reduce(::getpid() * 1.0, dist::ReduceOp::max)));
  manual_seed(40 + static_cast<std::uint64_t>(dist::rank()));
  Replica straight;
  straight.train(0, 20);

  manual_seed(40 + static_cast<std::uint64_t>(dist::rank()));
  {
    Replica first;
    first.train(0, 10);
    if (dist::rank() == 0) {  // written atomically (a temporary file renamed into place)
      first.model.save(path + ".model");
      first.adam.save(path + ".adam");
    }
  }
  dist::barrier();
  manual_seed(99 + static_cast<std::uint64_t>(dist::rank()));  // other initial weights: the checkpoint decides
  Replica resumed(path);
  resumed.train(10, 20);
  const double error = relative_difference(resumed.model, straight.model);
  MESSAGE("resumed after 10 of 20 steps: relative difference ", error);
  CHECK(error == 0);
  dist::barrier();
  if (dist::rank() == 0) {
    std::filesystem::remove(path + ".model");
    std::filesystem::remove(path + ".adam");
  }
}

int main(int argc, char** argv) {
  dist::Environment mpi(argc, argv);
  doctest::Context context(argc, argv);
  if (dist::rank() != 0) context.setOption("minimal", true);  // rank 0 reports; others only failures
  const int failed = context.run();
  // Every rank returns the same status: a failure on any rank fails the job.
  return static_cast<int>(dist::all_reduce(failed != 0 ? 1.0 : 0.0, dist::ReduceOp::max));
}
