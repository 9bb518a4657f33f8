#pragma once
// xgrad's one thread pool. Large GEMMs and large elementwise or row-wise kernels split their
// work across it; BLAS itself runs single-threaded inside it, so no second pool spins against
// this one. Idle workers spin for up to 1 ms (yielding their core after 50 us), then sleep.
#include <cstdint>
#include <functional>

namespace xgrad {

/// Threads xgrad computes on: the calling thread plus threads - 1 workers (default: the
/// number of hardware threads). 1 runs everything on the calling thread; 0 or less is an error. Safe to call from any
/// thread, and in a child forked while the pool ran: the child abandons the inherited pool (its
/// workers do not exist there) and starts its own, of the same size, when it next needs one.
void set_num_threads(int threads);
int num_threads();

namespace detail {
void parallel_run(std::int64_t n, std::int64_t grain, const std::function<void(std::int64_t, std::int64_t)>& f);
}

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
