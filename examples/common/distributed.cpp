#include "common/distributed.hpp"

#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include <fmt/core.h>

#if XGRAD_EXAMPLES_HAVE_DIST
#include <xgrad/dist/data_parallel.hpp>
#include <xgrad/dist/dist.hpp>
#endif

namespace xgrad::examples {



#if XGRAD_EXAMPLES_HAVE_DIST
struct Distributed::State {
  std::unique_ptr<dist::Environment> mpi;
  std::unique_ptr<dist::DataParallel> ddp;
};

Distributed::Distributed(bool on, Options options, int& argc, char**& argv)
    : on_(on), options_(options), state_(std::make_unique<State>()) {
  if (!on_) return;
  state_->mpi = std::make_unique<dist::Environment>(argc, argv);
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  set_num_threads(std::max(1, cores / dist::local_size()));
  if (dist::rank() != 0 && !std::freopen("/dev/null", "w", stdout)) fail("--distributed: cannot silence stdout");
}
Distributed::~Distributed() {
  state_->ddp.reset();  // its hooks go before MPI does
  state_->mpi.reset();
}
int Distributed::rank() const { return on_ ? dist::rank() : 0; }
int Distributed::size() const { return on_ ? dist::world_size() : 1; }
void Distributed::wrap(nn::Module& model) {
  if (on_) state_->ddp = std::make_unique<dist::DataParallel>(model, dist::DataParallelOptions{.bucket_mb = options_.bucket_mb, .overlap = options_.overlap});
}
std::string Distributed::summary(double train_seconds) const {
  if (!on_ || !state_->ddp) return "";
  const dist::SyncStats& s = state_->ddp->stats();
  return fmt::format(
      "{} ranks x {} threads, allreduces {} backward in {} buckets: {} steps, {:.1f} KiB of gradients per step; "
      "of {:.2f} s training, {:.2f} s in the hooks during backward and {:.2f} s at its end ({:.1f} % in all)",
      size(), num_threads(), options_.overlap ? "during" : "after", state_->ddp->bucket_count(), s.steps,
      s.bytes_per_step / 1024.0, train_seconds, s.hook_seconds, s.wait_seconds,
      100 * (s.hook_seconds + s.wait_seconds) / train_seconds);
}
#else
struct Distributed::State {};
Distributed::Distributed(bool on, Options options, int&, char**&) : on_(on), options_(options) {
  if (on_) fail("--distributed: these examples were built without xgrad::dist (MPI was not found)");
}
Distributed::~Distributed() = default;
int Distributed::rank() const { return 0; }
int Distributed::size() const { return 1; }
void Distributed::wrap(nn::Module&) {}
std::string Distributed::summary(double) const { return ""; }
#endif

Tensor Distributed::shard(const Tensor& batch) const {
  if (size() == 1) return batch;
  std::vector<std::int64_t> rows;
  for (std::int64_t r = rank(); r < batch.size(0); r += size()) rows.push_back(r);
  return data::take(batch, rows);
}

}  // namespace xgrad::examples
