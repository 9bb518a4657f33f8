#pragma once
// xgrad's one thread pool. Large GEMMs and large elementwise or row-wise kernels split their
// work across it; BLAS itself runs single-threaded inside it, so no second pool spins against
// this one. Idle workers spin for up to 1 ms (yielding their core after 50 us), then sleep.
//
// How much work is worth a worker depends on how far apart the two cores are: a virtual machine's
// cores may share a cache (a cache line crosses and back in about 100 ns) or sit on different
// chips (about 350 ns), and the host moves them between the two for seconds to minutes at a time.
// Far apart, a small kernel split in two loses more to moving its data than it gains (a small
// LSTM's train step: 8150 items/s on two near cores, 5850 far apart, 7650 on one core). So the
// pool times a cache line's round trip to a worker about every 100 ms, and while it is slow the
// kernels split only work 8 times larger (detail::parallel_threshold; a matrix product 64 times,
// core/gemm.cpp's kFarProductFactor). Results do not change:
// a kernel whose result depends on its ranges keeps them and runs them on the calling thread.
#include <chrono>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <optional>

namespace xgrad {

/// Threads xgrad computes on: the calling thread plus threads - 1 workers (default: the
/// number of hardware threads). 1 runs everything on the calling thread; 0 or less is an error. Safe to call from any
/// thread, and in a child forked while the pool ran: the child abandons the inherited pool (its
/// workers do not exist there) and starts its own, of the same size, when it next needs one.
void set_num_threads(int threads);
int num_threads();

namespace detail {
/// parallel_for's ranges of [0, n), run as parallel_for runs them (kernels that f calls run on
/// the calling thread alone), by the pool's workers too when `use_workers`, else by the calling
/// thread alone, in order: a kernel whose result depends on its ranges (a BLAS product of those
/// rows) gets the same bits either way.
void parallel_run(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& f,
                  bool use_workers = true);

/// The least work (multiply-adds, elements: the caller's unit) worth splitting for a kernel that
/// splits from `work` when the cores are near: `work`, or 8 times it while the pool's last probe
/// found its cores far apart. Probes again (on this thread, about 100 us) when the last probe is
/// more than 100 ms old and the pool is idle.
std::int64_t parallel_threshold(std::int64_t work);

/// The round trip of a cache line between this thread and a pool worker, in ns (the best of a
/// few batches of a few trips): the probe behind parallel_threshold. nullopt when there is no
/// worker to ask (one thread, a forked child, the pool busy or this thread inside it) or none
/// answered within `wait`.
std::optional<double> probe_round_trip(std::chrono::microseconds wait);

/// Fixes what parallel_threshold assumes (true: the cores are far apart), for tests and
/// measurements, instead of the probes' answer (they go on); nullopt goes back to that answer.
void assume_cores_far_apart(std::optional<bool> far);
bool cores_far_apart();

/// How many probes parallel_threshold has tried since the process started, how many a worker
/// answered (one may not while another program holds its core), and how many found the cores far apart.
struct CoreProbes {
  std::int64_t tried = 0, answered = 0, far = 0;
};
CoreProbes core_probes();

class Pool;
struct SideTask;

/// Work that runs beside the calling thread on a pool worker while the caller goes on: a
/// recurrent weight's gradient, summed one time step after another, off the path of the
/// recurrence's backward. A lane's tasks run one at a time and in the order posted, so whatever
/// they compute is the same bits as running them inline; the caller leaves alone what a posted
/// task writes until drain() returns. drain() runs on the calling thread the tasks no worker has
/// started, waits for the one running, and rethrows the first exception a task of this lane
/// threw. A task runs inline where no worker could take it (one thread, a forked child, a caller
/// inside the pool). A lane belongs to one thread, which also destroys its tasks (their tensors'
/// buffers go back to that thread's cache).
class SideLane {
 public:
  SideLane();
  ~SideLane();  // drains; an exception is dropped
  SideLane(const SideLane&) = delete;
  SideLane& operator=(const SideLane&) = delete;
  /// Whether a task posted now would go to a worker (else post() runs it inline): callers use it
  /// to skip building a task that a worker would not take.
  static bool has_worker();
  void post(std::function<void()> task);
  void drain();

 private:
  void collect();  // destroys the finished tasks at the front, keeping their first exception

  std::shared_ptr<Pool> pool_;  // the pool its queued tasks went to
  std::deque<std::unique_ptr<SideTask>> tasks_;
  std::exception_ptr error_;
};
}  // namespace detail

/// Calls f(begin, end) on disjoint ranges that cover [0, n), in parallel when n is at least
/// 2 * grain (each range holds at least `grain` items). The calling thread runs one range, and
/// any that no worker has started yet, and returns when all are done. Nested calls, and calls
/// while another thread uses the pool, run on the calling thread alone. Small work costs one
/// comparison (no std::function is built).
template <class F>
void parallel_for(std::int64_t n, std::int64_t grain, F&& f) {
  if (n <= 0) return;
  if (n < 2 * grain) f(std::int64_t{0}, n);
  else detail::parallel_run(n, grain, f);
}

}  // namespace xgrad
