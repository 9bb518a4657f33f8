#pragma once
// Data-parallel training in the style of PyTorch's DistributedDataParallel: every rank holds the
// whole model, runs forward and backward on its own share of the batch, and backward ends with
// every gradient averaged over the ranks, so that the optimizers, which run on every rank alike,
// keep the replicas identical.
//
//   dist::Environment mpi(argc, argv);
//   Model model;                        // any nn::Module
//   dist::DataParallel ddp(model);      // rank 0's parameters and buffers everywhere
//   optim::Adam adam(model.parameters(), 1e-3);
//   ... loss.backward();                // gradients are averaged when backward returns
//   adam.step();
//
// How: the gradients are grouped into buckets of about bucket_mb, in the reverse order of
// model.parameters() (about the order in which backward finishes them). A hook on each parameter
// (autograd::register_post_accumulate_grad_hook) copies its gradient into its bucket once
// backward has added its last contribution; when a bucket is full its MPI_Iallreduce starts,
// while backward goes on through the earlier layers. Buckets start strictly in index order, the
// same on every rank, as MPI requires of collectives. At the end of backward
// (autograd::queue_callback) the rest start, everything is awaited, and the sums divided by the
// number of ranks are written back into .grad.
#include <chrono>
#include <cstdint>
#include <memory>

#include "xgrad/nn/module.hpp"

namespace xgrad::dist {

struct DataParallelOptions {
  /// Gradient bytes per allreduce. Smaller buckets start earlier and overlap more of backward;
  /// larger ones pay the per-message latency less often (PyTorch: 25 MB).
  double bucket_mb = 4;
  /// Start each bucket's allreduce during backward; false: all of them after backward (only
  /// for measuring what the overlap gains).
  bool overlap = true;
};

/// Where DataParallel's time went, summed over steps (on this rank).
struct SyncStats {
  std::int64_t steps = 0;           ///< backward calls that averaged gradients
  double hook_seconds = 0;          ///< in the hooks during backward: copies into buckets, starting allreduces
  double wait_seconds = 0;          ///< at the end of backward: the rest started, waited for, written back
                                    ///< (communication backward did not hide, and waiting for slower ranks)
  std::int64_t bytes_per_step = 0;  ///< gradient bytes each rank sends into the allreduces per step
};

/// Averages `module`'s gradients over the ranks at the end of every backward (see above).
/// A parameter that received no gradient on a rank counts as zero there; one that received none
/// on any rank keeps no gradient, as in a single process (the optimizers then skip it).
/// With dropout, each rank should draw its own masks: seed each rank differently
/// (manual_seed(seed + dist::rank())) and keep the data order's generator the same everywhere.
class DataParallel {
 public:
  explicit DataParallel(nn::Module& module, DataParallelOptions options = {});
  ~DataParallel();
  DataParallel(const DataParallel&) = delete;
  DataParallel& operator=(const DataParallel&) = delete;

  nn::Module& module() const;
  /// Gradients are accumulated locally, not averaged, while the returned guard lives (several
  /// backward calls per step); the first backward after it averages what was accumulated
  /// (PyTorch's no_sync()).
  class NoSync {
   public:
    explicit NoSync(DataParallel& owner);
    ~NoSync();
    NoSync(const NoSync&) = delete;
    NoSync& operator=(const NoSync&) = delete;

   private:
    DataParallel& owner_;
  };
  [[nodiscard]] NoSync no_sync() { return NoSync(*this); }

  const SyncStats& stats() const;
  void reset_stats();
  /// Buckets the gradients are grouped into.
  std::size_t bucket_count() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace xgrad::dist
