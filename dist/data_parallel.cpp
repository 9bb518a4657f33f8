#include "xgrad/dist/data_parallel.hpp"

#include <algorithm>
#include <cstring>
#include <unordered_set>
#include <vector>

#include "xgrad/autograd/engine.hpp"
#include "xgrad/core/error.hpp"
#include "xgrad/core/kernel.hpp"
#include "xgrad/dist/dist.hpp"
#include "xgrad/dist/mpi_check.hpp"

namespace xgrad::dist {

using detail::check_mpi;

/// One allreduce: a flat buffer holding some parameters' gradients, then one "has a gradient"
/// flag per parameter (summed with the gradients, so it costs no message of its own).
struct Bucket {
  Dtype dtype;
  std::vector<std::size_t> params;  // indices into State::params
  Tensor buffer;                    // [gradient elements + params.size()]
  std::size_t waiting = 0;          // parameters not copied in yet this step
  MPI_Request request = MPI_REQUEST_NULL;
};

struct Param {
  Tensor tensor;
  std::size_t bucket = 0;
  std::int64_t offset = 0;  // of its gradient in the bucket's buffer
  std::int64_t flag = 0;    // of its flag
  bool ready = false;       // copied into the bucket this step
  autograd::HookHandle hook;
};

struct DataParallel::State {
  nn::Module* module;
  DataParallelOptions options;
  std::vector<Param> params;
  std::vector<Bucket> buckets;
  std::size_t next_launch = 0;  // buckets start in index order, the same on every rank
  bool in_step = false;         // a backward has handed in gradients; the end callback is queued
  int no_sync = 0;
  SyncStats stats;

  void on_gradient(std::size_t i) {
    if (no_sync) return;
    if (!in_step) {
      in_step = true;
      autograd::queue_callback([this] { finish(); });
    }
    Param& p = params[i];
    if (p.ready) return;
    const auto start = std::chrono::steady_clock::now();
    copy_in(p, 1);
    if (--buckets[p.bucket].waiting == 0 && options.overlap) launch_ready();
    progress();
    stats.hook_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  /// Writes p's gradient (zeros when it has none) and its flag into its bucket.
  void copy_in(Param& p, double has_gradient) {
    Bucket& b = buckets[p.bucket];
    const Tensor g = p.tensor.grad();
    xgrad::detail::dispatch_floating(b.dtype, "DataParallel", [&](auto tag) {
      using T = decltype(tag);
      T* dst = b.buffer.data<T>();
      const std::int64_t n = p.tensor.numel();
      if (g.defined()) std::memcpy(dst + p.offset, g.data<T>(), static_cast<std::size_t>(n) * sizeof(T));
      else std::fill(dst + p.offset, dst + p.offset + n, T(0));
      dst[p.flag] = static_cast<T>(has_gradient);
    });
    p.ready = true;
  }

  void launch_ready() {
    while (next_launch < buckets.size() && buckets[next_launch].waiting == 0) launch(buckets[next_launch++]);
  }

  void launch(Bucket& b) {
    const auto count = static_cast<int>(b.buffer.numel());
    check_mpi(MPI_Iallreduce(MPI_IN_PLACE, b.buffer.impl().storage->data(), count, detail::mpi_type(b.dtype), MPI_SUM,
                             MPI_COMM_WORLD, &b.request),
              "DataParallel (MPI_Iallreduce)");
  }

  /// Lets MPI move the started allreduces on (Open MPI's non-blocking collectives advance
  /// only inside MPI calls).
  void progress() {
    for (std::size_t k = 0; k < next_launch; ++k) {
      if (buckets[k].request == MPI_REQUEST_NULL) continue;
      int done = 0;
      check_mpi(MPI_Test(&buckets[k].request, &done, MPI_STATUS_IGNORE), "DataParallel (MPI_Test)");
    }
  }

  /// End of backward: the parameters that got no gradient hand in zeros, the remaining buckets
  /// start, and the averages go back into .grad.
  void finish() {
    in_step = false;
    const auto start = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < params.size(); ++i) {
      Param& p = params[i];
      if (p.ready) continue;
      copy_in(p, p.tensor.grad().defined() ? 1 : 0);  // a gradient from an earlier backward
      --buckets[p.bucket].waiting;
    }
    launch_ready();
    for (auto& b : buckets) check_mpi(MPI_Wait(&b.request, MPI_STATUS_IGNORE), "DataParallel (MPI_Wait)");
    const double world = world_size();
    for (auto& p : params) {
      Bucket& b = buckets[p.bucket];
      xgrad::detail::dispatch_floating(b.dtype, "DataParallel", [&](auto tag) {
        using T = decltype(tag);
        const T* sum = b.buffer.data<T>();
        if (sum[p.flag] == T(0)) return;  // no rank has a gradient: none, as in one process
        Tensor g = p.tensor.grad();
        if (!g.defined() || g.requires_grad()) {
          g = zeros(p.tensor.shape(), p.tensor.dtype());
          p.tensor.set_grad(g);
        }
        T* out = g.data<T>();
        for (std::int64_t k = 0, n = p.tensor.numel(); k < n; ++k) out[k] = sum[p.offset + k] / static_cast<T>(world);
        g.bump_version();
      });
    }
    reset_step();
    stats.steps += 1;
    stats.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }

  void reset_step() {
    for (auto& p : params) p.ready = false;
    for (auto& b : buckets) b.waiting = b.params.size();
    next_launch = 0;
  }
};

DataParallel::DataParallel(nn::Module& module, DataParallelOptions options) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.module = &module;
  s.options = options;
  if (!initialized()) fail("dist::DataParallel: MPI is not running (create a dist::Environment first)");
  if (!(options.bucket_mb > 0))
    fail("dist::DataParallel: bucket_mb must be positive, got {}", options.bucket_mb);
  // Every rank starts from rank 0's weights, whatever its seed; broadcast also checks that
  // the ranks' models have the same tensors.
  for (auto [name, t] : module.named_parameters()) broadcast(t, 0);
  for (auto [name, t] : module.named_buffers()) broadcast(t, 0);

  // Buckets in reverse parameter order (about the order backward finishes the gradients), one
  // dtype per bucket, each at most bucket_mb unless one parameter alone is larger.
  std::unordered_set<const TensorImpl*> seen;  // tied weights are one parameter
  std::vector<Tensor> trained;
  for (const auto& p : module.parameters())
    if (p.requires_grad() && seen.insert(&p.impl()).second) trained.push_back(p);
  std::reverse(trained.begin(), trained.end());
  const auto cap = static_cast<std::int64_t>(options.bucket_mb * 1024 * 1024);
  std::vector<std::int64_t> bucket_bytes;
  for (const auto& t : trained) {
    if (!is_floating(t.dtype())) continue;
    const std::int64_t bytes = t.numel() * static_cast<std::int64_t>(dtype_size(t.dtype()));
    if (s.buckets.empty() || s.buckets.back().dtype != t.dtype() || bucket_bytes.back() + bytes > cap) {
      s.buckets.push_back(Bucket{t.dtype(), {}, {}, 0, MPI_REQUEST_NULL});
      bucket_bytes.push_back(0);
    }
    Param p;
    p.tensor = t;
    p.bucket = s.buckets.size() - 1;
    p.offset = bucket_bytes.back() / static_cast<std::int64_t>(dtype_size(t.dtype()));
    bucket_bytes.back() += bytes;
    s.buckets.back().params.push_back(s.params.size());
    s.params.push_back(std::move(p));
  }
  for (std::size_t k = 0; k < s.buckets.size(); ++k) {
    Bucket& b = s.buckets[k];
    const std::int64_t elements = bucket_bytes[k] / static_cast<std::int64_t>(dtype_size(b.dtype));
    b.buffer = zeros({elements + static_cast<std::int64_t>(b.params.size())}, b.dtype);
    for (std::size_t j = 0; j < b.params.size(); ++j) s.params[b.params[j]].flag = elements + static_cast<std::int64_t>(j);
    s.stats.bytes_per_step += b.buffer.numel() * static_cast<std::int64_t>(dtype_size(b.dtype));
  }
  s.reset_step();
  for (std::size_t i = 0; i < s.params.size(); ++i)
    s.params[i].hook = autograd::register_post_accumulate_grad_hook(s.params[i].tensor,
                                                                    [&s, i](const Tensor&) { s.on_gradient(i); });
}

DataParallel::~DataParallel() = default;

nn::Module& DataParallel::module() const { return *state_->module; }
const SyncStats& DataParallel::stats() const { return state_->stats; }
void DataParallel::reset_stats() {
  const std::int64_t bytes = state_->stats.bytes_per_step;
  state_->stats = SyncStats{};
  state_->stats.bytes_per_step = bytes;
}
std::size_t DataParallel::bucket_count() const { return state_->buckets.size(); }

DataParallel::NoSync::NoSync(DataParallel& owner) : owner_(owner) { ++owner_.state_->no_sync; }
DataParallel::NoSync::~NoSync() { --owner_.state_->no_sync; }

}  // namespace xgrad::dist
