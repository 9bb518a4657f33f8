#include "xgrad/core/parallel.hpp"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include <immintrin.h>

#include "xgrad/core/error.hpp"

namespace xgrad {

namespace {

thread_local bool t_in_pool = false;  // set on workers and on a thread running a parallel_for

/// Counts the forks this process came through: a forked child has none of its parent's threads,
/// and this is cheaper to compare per call than getpid(), a system call.
std::atomic<int> g_forks{0};
void register_fork_handlers();
int forks_so_far() {
  register_fork_handlers();
  return g_forks.load(std::memory_order_relaxed);
}

/// Spins until done() or for `span`, whichever comes first; past the first 50 us it yields the
/// core at each turn, so that a thread of another process waiting for it runs.
template <class Done>
void spin_briefly(Done done, std::chrono::microseconds span) {
  const auto start = std::chrono::steady_clock::now();
  const auto polite = start + std::chrono::microseconds(50), until = start + span;
  for (auto now = start; !done() && now < until; now = std::chrono::steady_clock::now()) {
    if (now < polite)
      for (int i = 0; i < 16; ++i) _mm_pause();
    else
      std::this_thread::yield();
  }
}

// A worker spins this long for the next task before it sleeps (yielding its core past the first
// 50 us): waking a sleeping one (a futex call, then the scheduler) costs tens of microseconds on a
// virtual machine, and a recurrent step's parallel GEMMs are often farther apart than 50 us.
// Measured (2 threads, two alternating full runs of xgrad_bench, median ms per step), 50 us -> 1 ms:
// gru_imdb 56-57 -> 33-39, cnn_gru 14.3-14.9 -> 9.2-10.8, small_lstm 3.1-3.9 -> 2.5-2.7,
// bilstm_tagger 42-48 -> 37-40; dglstm within noise. (OpenMP runtimes spin longer still.)
constexpr auto kWorkerSpin = std::chrono::microseconds(1000);
// The caller spins this long for the workers to finish their parts, then sleeps: the parts are of
// equal size, so they usually end together.
constexpr auto kCallerSpin = std::chrono::microseconds(50);
// A lane queues at most this many tasks; its next post first drains them (a worker that cannot
// keep up, or whose core another program holds, costs the caller the work, never unbounded memory).
constexpr std::size_t kSideQueued = 32;

}  // namespace

namespace detail {

struct SideTask {
  explicit SideTask(std::function<void()> f) : run(std::move(f)) {}
  std::function<void()> run;
  std::exception_ptr error;
  std::atomic<bool> done{false};
};

class Pool {
 public:
  explicit Pool(int threads) : forks_(forks_so_far()) {
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return static_cast<int>(workers_.size()) + 1; }
  /// Whether this process owns the workers (a forked child has none).
  bool usable() const { return !workers_.empty() && g_forks.load(std::memory_order_relaxed) == forks_; }
  std::mutex& busy() { return busy_; }

  /// Runs task(part) for part in [0, parts) with parts <= size(). The caller runs part 0, then
  /// any part that no worker has taken yet: a worker that is slow to wake (its core lent to
  /// another thread) costs the caller the parts it does itself, never a wait for the worker to
  /// start. Each part is the same computation whoever runs it.
  void run(int parts, const std::function<void(int)>& task) {
    std::uint32_t run_id;
    {
      std::lock_guard lock(mutex_);
      task_ = &task;
      parts_ = parts;
      run_id = ++runs_;
      done_.store(0, std::memory_order_relaxed);
      claims_.store(std::uint64_t{run_id} << 32 | 1, std::memory_order_relaxed);  // part 0 is the caller's
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    std::exception_ptr error;
    for (int part = 0; part >= 0; part = claim(run_id, parts)) {
      try {
        task(part);
      } catch (...) {
        if (!error) error = std::current_exception();
      }
      done_.fetch_add(1, std::memory_order_acq_rel);
    }
    wait_for_parts(parts);  // the task lives on our stack
    // Taken even when our part threw too: left behind, it would be thrown by a later run.
    std::exception_ptr from_worker = std::exchange(worker_error_, nullptr);
    if (!error) error = from_worker;
    if (error) std::rethrow_exception(error);
  }

  /// Queues a SideLane's task for a worker (see SideLane).
  void post(SideTask* task) {
    {
      std::lock_guard lock(mutex_);
      side_.push_back(task);
      side_queued_.store(side_.size(), std::memory_order_release);
    }
    wake_.notify_all();
  }

  /// Runs queued side tasks in order, on this thread, until none is left or `until` is done;
  /// false, with nothing run, while another thread runs them (one runner at a time keeps the
  /// order).
  bool run_side_tasks(const SideTask* until) {
    {
      std::lock_guard lock(mutex_);
      if (side_running_.load(std::memory_order_relaxed) || side_.empty()) return false;
      side_running_.store(true, std::memory_order_relaxed);
    }
    for (;;) {
      SideTask* task;
      {
        std::lock_guard lock(mutex_);
        if (side_.empty() || (until && until->done.load(std::memory_order_acquire))) {
          side_running_.store(false, std::memory_order_release);
          break;
        }
        task = side_.front();
        side_.pop_front();
        side_queued_.store(side_.size(), std::memory_order_release);
      }
      // Its kernels run on this thread alone, as on a worker, also where the owner runs it (drain):
      // a product split into ranges would sum some rows otherwise than in one (OpenBLAS's tails).
      const bool in_pool = std::exchange(t_in_pool, true);
      try {
        task->run();
      } catch (...) {
        task->error = std::current_exception();
      }
      t_in_pool = in_pool;
      task->done.store(true, std::memory_order_release);  // its owner may destroy it from here on
    }
    if (side_queued_.load(std::memory_order_acquire) > 0) wake_.notify_all();  // left for a worker
    return true;
  }

 private:
  /// Whether a worker has something to do: a new run, or side tasks nobody is running.
  bool work_ready(std::uint64_t seen) const {
    return generation_.load(std::memory_order_acquire) != seen ||
           (side_queued_.load(std::memory_order_acquire) > 0 && !side_running_.load(std::memory_order_acquire));
  }

  /// The next part of run `run_id` not yet taken, or -1 (all taken, or that run is over).
  int claim(std::uint32_t run_id, int parts) {
    std::uint64_t seen = claims_.load(std::memory_order_acquire);
    while ((seen >> 32) == run_id && static_cast<int>(seen & 0xffffffffu) < parts)
      if (claims_.compare_exchange_weak(seen, seen + 1, std::memory_order_acq_rel))
        return static_cast<int>(seen & 0xffffffffu);
    return -1;
  }

  void work() {
    t_in_pool = true;
    std::uint64_t seen = 0;
    for (;;) {
      // Spin first: the next parallel kernel of a training step usually follows soon.
      spin_briefly([&] { return work_ready(seen); }, kWorkerSpin);
      const std::function<void(int)>* task;
      int parts;
      std::uint32_t run_id;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return work_ready(seen); });
        if (stop_) return;
        if (generation_.load(std::memory_order_relaxed) == seen) task = nullptr;  // side tasks
        else {
          seen = generation_.load(std::memory_order_relaxed);
          task = task_;
          parts = parts_;
          run_id = runs_;
        }
      }
      if (!task) {
        run_side_tasks(nullptr);
        continue;
      }
      // A part claimed belongs to the run read above: the claim fails once that run is over.
      for (int part; (part = claim(run_id, parts)) >= 0;) {
        try {
          (*task)(part);
        } catch (...) {
          std::lock_guard lock(mutex_);
          if (!worker_error_) worker_error_ = std::current_exception();
        }
        if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == parts) done_.notify_one();
      }
    }
  }

  /// Waits until every part is done: spinning briefly (the parts are of equal size, so they
  /// usually end together), then sleeping. Spinning on: a worker that another process's thread
  /// has pushed off its core would then cost the caller a whole time slice, for every parallel
  /// kernel (a step of an LSTM ran 6x slower beside a compiler).
  void wait_for_parts(int parts) {
    spin_briefly([&] { return done_.load(std::memory_order_acquire) == parts; }, kCallerSpin);
    for (int now; (now = done_.load(std::memory_order_acquire)) < parts;) done_.wait(now, std::memory_order_acquire);
  }

  const int forks_;  // forks_so_far() when the workers started
  std::vector<std::thread> workers_;
  std::mutex mutex_, busy_;
  std::condition_variable wake_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<std::uint64_t> claims_{0};  // the run's number (high 32 bits) and its next part
  std::atomic<int> done_{0};              // parts of the run finished
  const std::function<void(int)>* task_ = nullptr;
  int parts_ = 0;
  std::uint32_t runs_ = 0;  // numbers the runs (under mutex_); wraps, as the claims' high bits
  bool stop_ = false;
  std::exception_ptr worker_error_;  // the first exception a worker's part threw
  std::deque<SideTask*> side_;             // posted side tasks not started yet (under mutex_)
  std::atomic<std::size_t> side_queued_{0};  // side_.size(), for the spinning workers
  std::atomic<bool> side_running_{false};    // a thread runs side tasks (set under mutex_)
};

}  // namespace detail

namespace {

using detail::Pool;

std::mutex g_pool_mutex;  // guards g_pool's replacement
std::shared_ptr<Pool> g_pool;

// Fork safety. A child forked after the pool started has none of its workers, yet inherits the
// pool: destroying it there (set_num_threads, or exit's static destructors) would notify a
// condition variable whose waiters do not exist and join threads that do not exist, and never
// return. So the child abandons the inherited pool (kept reachable here, never destroyed) and
// starts a fresh one when it next needs threads. g_pool_mutex is held across fork() so that the
// child never inherits it locked by a thread that is gone.
std::vector<std::shared_ptr<Pool>>* g_abandoned_pools = nullptr;

void register_fork_handlers() {
  static const bool registered = [] {
    return ::pthread_atfork([] { g_pool_mutex.lock(); }, [] { g_pool_mutex.unlock(); },
                            [] {
                              ++g_forks;
                              if (g_pool) {
                                if (!g_abandoned_pools) g_abandoned_pools = new std::vector<std::shared_ptr<Pool>>();
                                g_abandoned_pools->push_back(std::move(g_pool));
                              }
                              g_pool_mutex.unlock();
                            }) == 0;
  }();
  (void)registered;
}

int g_threads = 0;  // set_num_threads's count (0: the default); a forked child's new pool has it too

int default_threads() { return std::max(1, static_cast<int>(std::thread::hardware_concurrency())); }

std::shared_ptr<Pool> pool() {
  register_fork_handlers();
  std::lock_guard lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_shared<Pool>(g_threads > 0 ? g_threads : default_threads());
  return g_pool;
}

}  // namespace

void set_num_threads(int threads) {
  // as torch.set_num_threads: 0 or a negative count is a mistake, not a request for 1 thread
  if (threads < 1) fail("set_num_threads: the thread count must be positive, got {}", threads);
  register_fork_handlers();
  std::lock_guard lock(g_pool_mutex);
  g_threads = threads;
  if (g_pool && g_pool->size() == threads) return;
  g_pool = std::make_shared<Pool>(threads);
}

int num_threads() { return pool()->size(); }

namespace {

/// Runs part `part` of `parts` equal ranges of [0, n), f(begin, end).
void run_range(std::int64_t n, int parts, int part, const std::function<void(std::int64_t, std::int64_t)>& f) {
  f(n * part / parts, n * (part + 1) / parts);
}

struct InPool {  // kernels called while it lives run on this thread alone
  InPool() { t_in_pool = true; }
  ~InPool() { t_in_pool = false; }
};

}  // namespace

void detail::parallel_run(std::int64_t n, std::int64_t grain,
                          const std::function<void(std::int64_t, std::int64_t)>& f, bool use_workers) {
  if (n <= 0) return;
  grain = std::max<std::int64_t>(grain, 1);
  std::shared_ptr<Pool> p;
  if (!t_in_pool) p = pool();
  if (!p || !p->usable()) {  // inside the pool, or no workers: one range, as on one thread
    f(0, n);
    return;
  }
  const int parts = static_cast<int>(std::clamp<std::int64_t>(n / grain, 1, p->size()));
  std::unique_lock busy(p->busy(), std::try_to_lock);
  InPool in_pool;
  if (busy.owns_lock() && use_workers) return p->run(parts, [&](int part) { run_range(n, parts, part, f); });
  // Not needed, or another thread holds them: the same ranges on this thread, in order.
  if (busy.owns_lock()) busy.unlock();
  for (int part = 0; part < parts; ++part) run_range(n, parts, part, f);
}

// --- the side lane ------------------------------------------------------------------------------

detail::SideLane::SideLane() = default;

detail::SideLane::~SideLane() {
  try {
    drain();
  } catch (...) {  // a destructor cannot throw; drain() is where errors are reported
  }
}

namespace {
/// The pool whose worker would take a side task posted from this thread now; null where none
/// would (one thread, a pool unusable after fork, or a thread already inside the pool).
std::shared_ptr<Pool> side_pool() {
  if (t_in_pool) return nullptr;
  std::shared_ptr<Pool> p = pool();
  return p->size() > 1 && p->usable() ? p : nullptr;
}
}  // namespace

bool detail::SideLane::has_worker() { return side_pool() != nullptr; }

void detail::SideLane::post(std::function<void()> task) {
  collect();
  std::shared_ptr<Pool> p = side_pool();
  if (!p) {
    drain();  // after the tasks posted before it
    task();
    return;
  }
  if (tasks_.size() >= kSideQueued || (pool_ && pool_ != p)) drain();
  pool_ = std::move(p);
  tasks_.push_back(std::make_unique<SideTask>(std::move(task)));
  pool_->post(tasks_.back().get());
}

void detail::SideLane::drain() {
  if (!tasks_.empty()) {
    const SideTask* last = tasks_.back().get();
    // Run what no worker has started; while a worker runs them, wait for it (a task is a few
    // microseconds to a few hundred).
    const auto start = std::chrono::steady_clock::now();
    while (!last->done.load(std::memory_order_acquire))
      if (!pool_->run_side_tasks(last)) {
        if (std::chrono::steady_clock::now() - start < std::chrono::microseconds(50)) _mm_pause();
        else std::this_thread::yield();
      }
  }
  pool_.reset();
  collect();
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
}

void detail::SideLane::collect() {
  while (!tasks_.empty() && tasks_.front()->done.load(std::memory_order_acquire)) {
    if (!error_) error_ = tasks_.front()->error;
    tasks_.pop_front();
  }
}

// --- how far apart the cores are ----------------------------------------------------------------

namespace {

// A round trip slower than this means the cores are far apart. Measured on the 2-core VM, best of
// batches of 16 trips: 48-56 ns near, 240-257 ns far (medians 60-74 and 310-334 ns).
constexpr double kFarRoundTripNs = 150;
// Far apart, kernels split only work this many times larger. Measured (2 threads, small_lstm,
// GEMMs split from 2^20 vs 2^23 multiply-adds, items/s): far 5850 -> 7700, near 8150 -> 7700.
constexpr std::int64_t kFarFactor = 8;
constexpr auto kProbeEvery = std::chrono::milliseconds(100);
// A probe waits this long for a worker to start answering: enough for one that spins. A sleeping
// worker often takes a scheduler tick (about 4 ms here) to start while this thread keeps its own
// core busy; the probe has woken it, and the next try, kProbeRetry later, finds it spinning.
constexpr auto kProbeWait = std::chrono::microseconds(20);
constexpr auto kProbeRetry = std::chrono::milliseconds(1);
constexpr int kProbeBatches = 4, kProbeTrips = 16;

std::atomic<bool> g_far{false};
std::atomic<int> g_assumed{-1};  // assume_cores_far_apart: -1 probe, 0 near, 1 far
std::atomic<std::int64_t> g_next_probe{0};  // steady_clock ticks
std::atomic<std::int64_t> g_tried{0}, g_answered{0}, g_answered_far{0};

std::int64_t ticks_now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

std::int64_t ticks(std::chrono::nanoseconds span) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(span).count();
}

/// Probes when the last probe is older than kProbeEvery (one thread at a time); a probe that
/// finds no worker answering is tried again kProbeRetry later. Probes run (and are counted) even
/// while an assumption is fixed, so that a measurement under either policy can tell the regime.
void probe_when_due() {
  if (t_in_pool) return;
  const std::int64_t now = ticks_now();
  std::int64_t due = g_next_probe.load(std::memory_order_relaxed);
  if (now < due || !g_next_probe.compare_exchange_strong(due, now + ticks(kProbeRetry), std::memory_order_relaxed))
    return;
  g_tried.fetch_add(1, std::memory_order_relaxed);
  if (const auto ns = detail::probe_round_trip(kProbeWait)) {
    const bool far = *ns > kFarRoundTripNs;
    g_far.store(far, std::memory_order_relaxed);
    g_answered.fetch_add(1, std::memory_order_relaxed);
    g_answered_far.fetch_add(far, std::memory_order_relaxed);
    g_next_probe.store(now + ticks(kProbeEvery), std::memory_order_relaxed);
  }
}

}  // namespace

std::int64_t detail::parallel_threshold(std::int64_t work) {
  thread_local std::uint32_t calls = 0;
  if ((++calls & 63) == 0) probe_when_due();  // a clock read per 64 kernels, not per kernel
  return cores_far_apart() ? work * kFarFactor : work;
}

bool detail::cores_far_apart() {
  const int assumed = g_assumed.load(std::memory_order_relaxed);
  return assumed >= 0 ? assumed == 1 : g_far.load(std::memory_order_relaxed);
}

detail::CoreProbes detail::core_probes() {
  return {g_tried.load(std::memory_order_relaxed), g_answered.load(std::memory_order_relaxed),
          g_answered_far.load(std::memory_order_relaxed)};
}

void detail::assume_cores_far_apart(std::optional<bool> far) { g_assumed.store(far ? int(*far) : -1); }

std::optional<double> detail::probe_round_trip(std::chrono::microseconds wait) {
  if (t_in_pool) return std::nullopt;
  std::shared_ptr<Pool> p = pool();
  if (!p->usable()) return std::nullopt;
  std::unique_lock busy(p->busy(), std::try_to_lock);
  if (!busy.owns_lock()) return std::nullopt;
  // Part 1 (a worker) answers each odd value of the ball with the next even one until the ball
  // is -1; part 0 (this thread) serves and times. If no worker has taken part 1 within `wait`,
  // part 0 ends the game, and whoever takes part 1 later finds it over.
  alignas(64) std::atomic<std::int64_t> ball{0};
  alignas(64) std::atomic<bool> answering{false};
  std::optional<double> best;
  auto serve = [&] {
    const auto give_up = std::chrono::steady_clock::now() + wait;
    while (!answering.load(std::memory_order_acquire))
      if (std::chrono::steady_clock::now() > give_up) return;
    for (std::int64_t b = 0, v = 1; b < kProbeBatches; ++b) {
      const auto start = std::chrono::steady_clock::now();
      for (int t = 0; t < kProbeTrips; ++t, v += 2) {
        ball.store(v, std::memory_order_release);
        for (std::uint32_t spins = 0; ball.load(std::memory_order_acquire) != v + 1;)
          if (++spins % 1024 == 0 && std::chrono::steady_clock::now() > start + wait) return;  // the worker lost its core
      }
      const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
      best = std::min(best.value_or(ns / kProbeTrips), ns / kProbeTrips);
    }
  };
  auto answer = [&] {
    answering.store(true, std::memory_order_release);
    for (std::int64_t v; (v = ball.load(std::memory_order_acquire)) >= 0;)
      if (v % 2 == 1) ball.compare_exchange_strong(v, v + 1, std::memory_order_acq_rel);
  };
  p->run(2, [&](int part) {
    if (part == 0) {
      serve();
      ball.store(-1, std::memory_order_release);
    } else {
      answer();
    }
  });
  return best;
}

}  // namespace xgrad
