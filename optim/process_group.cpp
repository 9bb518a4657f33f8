#include "xgrad/optim/process_group.hpp"

#include <atomic>

namespace xgrad::optim {

namespace {

class SingleProcess final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void sum(std::span<double>) const override {}
};

const SingleProcess g_alone;
std::atomic<const ProcessGroup*> g_group{nullptr};

}  // namespace

const ProcessGroup& process_group() {
  const ProcessGroup* group = g_group.load();
  return group ? *group : g_alone;
}

const ProcessGroup* set_process_group(const ProcessGroup* group) { return g_group.exchange(group); }

}  // namespace xgrad::optim
