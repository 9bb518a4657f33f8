#include "xgrad/nn/tbptt.hpp"

#include <algorithm>

namespace xgrad::nn {

State detach(const State& state) {
  State out;
  for (const auto& t : state) out.push_back(t.detach());
  return out;
}

std::vector<State> detach(const std::vector<State>& states) {
  std::vector<State> out;
  for (const auto& s : states) out.push_back(detach(s));
  return out;
}

TruncatedBPTT::TruncatedBPTT(std::int64_t k1, std::int64_t k2) : k1_(k1), k2_(k2) {
  if (k1 < 1 || k2 < k1 || k2 % k1 != 0)
    fail("TruncatedBPTT: needs 1 <= k1 <= k2 with k2 a multiple of k1, got k1 = {}, k2 = {}", k1, k2);
}

std::vector<TruncationWindow> TruncatedBPTT::windows(std::int64_t steps) const {
  if (steps < 0) fail("TruncatedBPTT::windows: steps must be non-negative, got {}", steps);
  // No sum below can overflow: loss_begin + k1 (which wrapped around for a huge k1 and made the
  // loop run on) is written as loss_begin + min(k1, steps - loss_begin), and the window's start
  // loss_begin + k1 - k2 as loss_begin - (k2 - k1).
  const std::int64_t count = ceil_div(steps, k1_);
  check_fits_in_memory(count, sizeof(TruncationWindow), "TruncatedBPTT::windows", "the window list");
  std::vector<TruncationWindow> out;
  out.reserve(static_cast<std::size_t>(count));
  for (std::int64_t loss_begin = 0; loss_begin < steps;) {
    const std::int64_t end = loss_begin + std::min(k1_, steps - loss_begin);
    out.push_back({std::max<std::int64_t>(0, loss_begin - (k2_ - k1_)), loss_begin, end});
    loss_begin = end;
  }
  return out;
}

const std::vector<State>& TruncatedBPTT::state_at(std::int64_t t) const {
  static const std::vector<State> initial;
  if (t < 0) fail("TruncatedBPTT::state_at: step must be non-negative, got {}", t);
  if (t == 0) return initial;
  auto it = kept_.find(t);
  if (it == kept_.end()) fail("TruncatedBPTT: no state was kept at step {}", t);
  return it->second;
}

void TruncatedBPTT::keep(std::int64_t t, const std::vector<State>& states) {
  if (t < 0) fail("TruncatedBPTT::keep: step must be non-negative, got {}", t);
  kept_[t] = detach(states);
  // the next window starts at most k2 - k1 steps before t
  kept_.erase(kept_.begin(), kept_.lower_bound(t - (k2_ - k1_)));
}

}  // namespace xgrad::nn
