#pragma once
// How fit() and its callbacks see the other processes of a data-parallel job. One process by
// default; dist::Environment (the optional MPI target) installs the MPI world, so that the same
// training code prints, logs and checkpoints once (on rank 0) and every rank takes the same
// decisions (early stopping, learning-rate changes) from the same reduced numbers.
#include <span>

namespace xgrad::optim {

/// The processes that train one model together.
class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Element-wise sums across the processes, in place: every process gets the totals.
  virtual void sum(std::span<double> values) const = 0;
  /// Returns when every process has reached it (e.g. after rank 0 wrote a file the others read).
  virtual void barrier() const {
    double nothing = 0;
    sum({&nothing, 1});
  }
};

/// The group fit() uses: the one installed, or this process alone.
const ProcessGroup& process_group();
/// Installs `group` (nullptr: this process alone) and returns the one it replaces. The group
/// must outlive its installation.
const ProcessGroup* set_process_group(const ProcessGroup* group);
/// Rank 0 of the group: the process that prints and writes files.
inline bool is_main_process() { return process_group().rank() == 0; }

}  // namespace xgrad::optim
