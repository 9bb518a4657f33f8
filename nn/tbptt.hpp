#pragma once
// Truncated backpropagation through time over long sequences (Williams & Peng's BPTT(k1, k2)):
// every k1 steps, the errors of those k1 steps are backpropagated through the last k2 steps.
// Between windows the recurrent state is carried forward detached, so memory stays flat.
#include <map>
#include <vector>

#include "xgrad/nn/cell.hpp"

namespace xgrad::nn {

/// One update of BPTT(k1, k2): run the steps [begin, end) with the graph recorded, from the
/// state at `begin`; the loss counts the steps [loss_begin, end) (the newest k1).
struct TruncationWindow {
  std::int64_t begin, loss_begin, end;
};

/// The same states cut from the graph.
State detach(const State& state);
std::vector<State> detach(const std::vector<State>& states);

/// Plans BPTT(k1, k2) over a sequence and keeps the detached states each window starts from.
/// k2 must be a multiple of k1, so that every window starts where an earlier one ended.
///
/// ```
///   TruncatedBPTT tbptt(k1, k2);
///   for (auto w : tbptt.windows(T)) {
///     auto r = lstm.run(slice(x, 1, w.begin, w.end), {}, tbptt.state_at(w.begin));
///     loss(the steps of r.output from w.loss_begin - w.begin on).backward(); optimizer.step();
///     tbptt.keep(w.end, r.states);
///   }
/// ```
class TruncatedBPTT {
 public:
  TruncatedBPTT(std::int64_t k1, std::int64_t k2);
  /// Windows ending at k1, 2 k1, ... (and at the last step), each reaching back k2 steps.
  std::vector<TruncationWindow> windows(std::int64_t steps) const;
  /// The state kept at step `t` (empty at step 0: the layer's initial state).
  const std::vector<State>& state_at(std::int64_t t) const;
  /// Keeps (detached) the states reached at step `t`; forgets those no window will need.
  void keep(std::int64_t t, const std::vector<State>& states);
  /// Forgets every kept state (a new sequence).
  void reset() { kept_.clear(); }

 private:
  std::int64_t k1_, k2_;
  std::map<std::int64_t, std::vector<State>> kept_;
};

}  // namespace xgrad::nn
