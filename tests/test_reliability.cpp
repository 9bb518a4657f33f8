// Long runs and determinism: a 10 000-step truncated-BPTT run keeps resident memory and the live
// graph flat (and the same loop without detach visibly does not); one seed and one thread count
// give a bit-identical training run.
#include <malloc.h>
#include <unistd.h>

#include <cstddef>
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XGRAD_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(XGRAD_TEST_ASAN)
// from <sanitizer/allocator_interface.h>, which Debian ships with clang but not with GCC
extern "C" std::size_t __sanitizer_get_current_allocated_bytes();
#endif

#include <cstring>
#include <fstream>
#include <thread>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(XGRAD_TEST_ASAN)
/// Under AddressSanitizer resident memory also holds the quarantine of freed blocks (256 MB
/// that fill up over the run): the bytes allocated and not freed are measured instead.
constexpr const char* kMemory = "allocated";
std::int64_t memory_bytes() { return static_cast<std::int64_t>(__sanitizer_get_current_allocated_bytes()); }
#else
constexpr const char* kMemory = "resident";
/// Resident memory of this process in bytes (Linux), after handing the heap's free pages back:
/// free memory left resident by earlier tests would otherwise absorb a growing loop's first
/// megabytes without a change in resident size.
std::int64_t memory_bytes() {
  malloc_trim(0);
  std::ifstream statm("/proc/self/statm");
  std::int64_t pages = 0, resident = 0;
  statm >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}
#endif

/// What a truncated-BPTT run leaves behind.
struct LongRun {
  std::int64_t window_nodes = 0;  ///< live nodes just before the first backward: one window's graph
  std::int64_t peak_nodes = 0;    ///< the most live nodes just before any backward
  std::int64_t warm_nodes = 0;    ///< live nodes between windows at step 1 015 (the loop is warm)
  std::int64_t end_nodes = 0;     ///< live nodes between windows at the last step
  std::int64_t growth = 0;        ///< memory_bytes() gained from step 1 015 to the last step
  double first_loss = 0, last_loss = 0;
};

constexpr std::int64_t kWarmStep = 1015;  // 29 windows of 35
constexpr std::int64_t kMaxGrowth = 1 << 20;

/// An LSTM (4 -> 8) and a linear head, trained with SGD to reproduce a [2, steps, 4] sequence in
/// windows of 35 steps, each window starting from the state the previous one reached. With
/// `detach` that state is cut from the graph (TruncatedBPTT::keep), as truncated BPTT should;
/// without it, the carried state holds every earlier window's graph, and each backward must keep
/// the graph (retain_graph) because the next window's backward runs through it again.
LongRun tbptt_run(std::int64_t steps, bool detach) {
  manual_seed(4);
  LSTM lstm(4, 8);
  Linear head(8, 4);
  std::vector<Tensor> params = lstm.parameters();
  for (auto& p : head.parameters()) params.push_back(p);
  optim::SGD sgd(params, {.lr = 0.05});
  const std::int64_t k = 35;
  Tensor x = randn({2, steps, 4});
  TruncatedBPTT tbptt(k, k);
  std::vector<State> carried;  // without detach
  LongRun run;
  const auto before = autograd::live_nodes();
  std::int64_t memory_warm = 0;
  for (const auto& w : tbptt.windows(steps)) {
    Tensor target = slice(x, 1, w.begin, w.end);
    RecurrentResult r = lstm.run(target, {}, detach ? tbptt.state_at(w.begin) : carried);
    Tensor loss = mean(square(head(r.output) - target));
    const std::int64_t nodes = autograd::live_nodes() - before;
    if (w.begin == 0) run.window_nodes = nodes;
    run.peak_nodes = std::max(run.peak_nodes, nodes);
    sgd.zero_grad();
    loss.backward({}, /*retain_graph=*/!detach);
    // Without detach the next backward runs through this window's graph again, which saved the
    // weights: a step would modify them in place and that backward would (rightly) refuse, as
    // PyTorch's does. The control only measures the graph, so it keeps the weights.
    if (detach) sgd.step();
    if (detach) tbptt.keep(w.end, r.states);
    else carried = r.states;
    (w.begin == 0 ? run.first_loss : run.last_loss) = loss.item();
    if (w.end == kWarmStep) {
      run.warm_nodes = autograd::live_nodes() - before;
      memory_warm = memory_bytes();
    }
  }
  run.end_nodes = autograd::live_nodes() - before;
  run.growth = memory_bytes() - memory_warm;
  return run;
}

/// tbptt_run on a thread of its own, which starts with an empty tensor pool (the pool is per
/// thread) and its own malloc arena: buffers that earlier tests freed into the pool would
/// otherwise absorb the first megabytes of a growing loop without a change in resident size.
LongRun isolated_tbptt_run(std::int64_t steps, bool detach) {
  LongRun run;
  std::thread([&] { run = tbptt_run(steps, detach); }).join();
  return run;
}

/// Every loss and every parameter of a training run, to compare bit for bit.
struct Trace {
  std::vector<float> losses;
  std::vector<std::vector<float>> params;
};

bool identical(const Trace& a, const Trace& b) {
  if (a.losses.size() != b.losses.size() || a.params.size() != b.params.size()) return false;
  if (std::memcmp(a.losses.data(), b.losses.data(), a.losses.size() * sizeof(float)) != 0) return false;
  for (std::size_t i = 0; i < a.params.size(); ++i)
    if (a.params[i].size() != b.params[i].size() ||
        std::memcmp(a.params[i].data(), b.params[i].data(), a.params[i].size() * sizeof(float)) != 0)
      return false;
  return true;
}

double largest_difference(const Trace& a, const Trace& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.params.size(); ++i)
    for (std::size_t j = 0; j < a.params[i].size(); ++j)
      worst = std::max(worst, static_cast<double>(std::abs(a.params[i][j] - b.params[i][j])));
  return worst;
}

/// Sets the BLAS thread count for a scope.
struct ThreadsGuard {
  int saved = num_threads();
  explicit ThreadsGuard(int threads) { set_num_threads(threads); }
  ~ThreadsGuard() { set_num_threads(saved); }
};

/// 20 steps of a two-layer LSTM classifier with every kind of dropout (input, recurrent, between
/// layers, before the head) and Adam, all drawn from the default generator seeded with `seed`.
/// Sizes are large enough for OpenBLAS to split its GEMMs across threads (m n k >= 2^18), and not
/// multiples of 32, so the split is uneven: at 2 threads the test covers threaded GEMMs too.
Trace train_with_dropout(std::uint64_t seed) {
  manual_seed(seed);
  const std::int64_t B = 24, T = 8, I = 40, H = 100, classes = 7;
  Recurrent lstm([=](std::int64_t, std::int64_t in) { return std::make_shared<LSTMCell>(in, H); }, I,
                 {.num_layers = 2, .dropout = 0.2, .recurrent_dropout = 0.2, .layer_dropout = 0.3});
  Dropout drop(0.25);
  Linear head(H, classes);
  std::vector<Tensor> params = lstm.parameters();
  for (auto& p : head.parameters()) params.push_back(p);
  optim::Adam adam(params, {.lr = 1e-2});
  Tensor x = randn({B, T, I});
  Tensor y = randint(0, classes, {B, T});
  Trace trace;
  for (int step = 0; step < 20; ++step) {
    Tensor loss = cross_entropy(head(drop(lstm(x))), y);
    adam.zero_grad();
    loss.backward();
    adam.step();
    trace.losses.push_back(loss.item<float>());
  }
  for (auto& p : params) trace.params.push_back(p.to_vector<float>());
  return trace;
}

}  // namespace

TEST_CASE("long run: 10 000 steps of truncated BPTT keep resident memory and the live graph flat") {
  const LongRun run = isolated_tbptt_run(10000, /*detach=*/true);
  MESSAGE(fmt::format("window graph {} nodes, peak {}; live between windows {} at step {} and {} at step 10 000; "
                      "{} memory growth from step {} to 10 000: {} bytes; loss {:.4f} -> {:.4f}",
                      run.window_nodes, run.peak_nodes, run.warm_nodes, kWarmStep, run.end_nodes, kMemory, kWarmStep,
                      run.growth, run.first_loss, run.last_loss));
  CHECK(run.window_nodes > 0);
  CHECK(run.peak_nodes <= run.window_nodes);  // no window's graph outgrows the first
  CHECK(run.end_nodes <= run.warm_nodes);     // nothing piles up between windows
  CHECK(run.growth < kMaxGrowth);
  CHECK(run.last_loss < run.first_loss);  // and it trained
}

TEST_CASE("long run, control: the same loop without detach grows, and the checks above catch it") {
  // Without detach the second window's backward reaches the first window's graph, already freed:
  {
    manual_seed(4);
    LSTM lstm(4, 8);
    Tensor x = randn({2, 4, 4});
    RecurrentResult first = lstm.run(slice(x, 1, 0, 2));
    sum(first.output).backward();
    RecurrentResult second = lstm.run(slice(x, 1, 2, 4), {}, first.states);
    CHECK(matches(error_of([&] { sum(second.output).backward(); }), R"(freed by the first backward)"));
  }
  // so the loop keeps the graph, and then it keeps all of it: 2 100 steps (each backward costs
  // the whole history) fail every bound the real run meets
  const std::int64_t steps = 2100;
  const LongRun run = isolated_tbptt_run(steps, /*detach=*/false);
  const double per_step = static_cast<double>(run.end_nodes - run.warm_nodes) / (steps - kWarmStep);
  MESSAGE(fmt::format("without detach: window graph {} nodes, peak {}; live between windows {} at step {} and {} at "
                      "step {} ({:.1f} per step); {} memory growth from step {} to {}: {} bytes",
                      run.window_nodes, run.peak_nodes, run.warm_nodes, kWarmStep, run.end_nodes, steps, per_step,
                      kMemory, kWarmStep, steps, run.growth));
  CHECK(run.peak_nodes > 10 * run.window_nodes);
  CHECK(run.end_nodes > run.warm_nodes);
  CHECK(per_step >= 0.5 * static_cast<double>(run.window_nodes) / 35);  // every step's graph stays: linear growth
  CHECK(run.growth >= kMaxGrowth);
}

TEST_CASE("determinism: one seed and one thread count give bit-identical losses and parameters") {
  std::vector<Trace> first_runs;
  for (int threads : {1, 2}) {
    CAPTURE(threads);
    ThreadsGuard guard(threads);
    const Trace a = train_with_dropout(11), b = train_with_dropout(11);
    REQUIRE(a.losses.size() == 20);
    CHECK(identical(a, b));
    CHECK(a.losses.back() < a.losses.front());
    first_runs.push_back(a);
  }
  // a different seed draws other weights and masks: the comparison can tell runs apart
  CHECK_FALSE(identical(first_runs[0], train_with_dropout(12)));
  // Across thread counts nothing is promised: the pool splits a large GEMM's output among the
  // threads (core/gemm.cpp), and OpenBLAS may sum the elements at the edge of a split with a
  // different micro-kernel, in a different order. Whether that shows depends on the shapes (and
  // on the OpenBLAS build and CPU).
  const Trace& one = first_runs[0];
  const Trace& two = first_runs[1];
  std::size_t step = 0;
  while (step < one.losses.size() && one.losses[step] == two.losses[step]) ++step;
  MESSAGE(fmt::format("1 vs 2 threads: {}{}; largest parameter difference {:.3g}, last loss {:.9g} vs {:.9g}",
                      identical(one, two) ? "identical" : "different",
                      step < one.losses.size() ? fmt::format(" from step {} of 20", step + 1) : "",
                      largest_difference(one, two), one.losses.back(), two.losses.back()));
}
