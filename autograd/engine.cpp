#include "xgrad/autograd/engine.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <span>
#include <utility>

#include "xgrad/autograd/engine_detail.hpp"
#include "xgrad/autograd/fusion.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/gemm.hpp"
#include "xgrad/core/kernel.hpp"
#include "xgrad/core/parallel.hpp"

namespace xgrad::autograd {

namespace {

/// Node address -> position in one backward call's list of nodes (open addressing). The engine
/// keeps every per-call fact in its own tables, never on the nodes, so that threads can
/// back-propagate graphs that share nodes (a shared leaf's accumulator) at the same time.
class NodeIndex {
 public:
  static constexpr std::uint32_t kNone = ~std::uint32_t{0};
  NodeIndex() : table_(16, {nullptr, kNone}) {}
  std::uint32_t find(const Node* node) const {
    for (std::size_t i = hash(node);; i = (i + 1) & (table_.size() - 1)) {
      if (table_[i].first == node) return table_[i].second;
      if (!table_[i].first) return kNone;
    }
  }
  void insert(const Node* node, std::uint32_t value) {
    if (2 * (used_.size() + 1) > table_.size()) grow();
    used_.push_back(place(node, value));
  }
  /// Empties the table in time proportional to its entries, not its capacity (a thread's table
  /// serves every later backward call; one huge graph must not slow down the small ones after).
  void clear() {
    if (table_.size() > kKeep) {
      table_.assign(16, {nullptr, kNone});
    } else {
      for (std::size_t i : used_) table_[i] = {nullptr, kNone};
    }
    used_.clear();
  }

 private:
  static constexpr std::size_t kKeep = std::size_t{1} << 16;  // larger tables are freed after use
  std::size_t hash(const Node* node) const {
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(node) >> 4) * 0x9E3779B97F4A7C15ull >> 20) &
           (table_.size() - 1);
  }
  std::size_t place(const Node* node, std::uint32_t value) {
    std::size_t i = hash(node);
    while (table_[i].first) i = (i + 1) & (table_.size() - 1);
    table_[i] = {node, value};
    return i;
  }
  void grow() {
    auto old = std::move(table_);
    table_.assign(old.size() * 2, {nullptr, kNone});
    used_.clear();
    for (const auto& [node, value] : old)
      if (node) used_.push_back(place(node, value));
  }
  std::vector<std::pair<const Node*, std::uint32_t>> table_;
  std::vector<std::size_t> used_;  // occupied positions
};

/// A weight's products are summed into a running sum of its own: one at a time where a product
/// runs well alone -- a weight of at most kChainedEntries entries (32 KiB of floats: the sum stays
/// in L1), or a step of at least kEfficientRows rows within LIBXSMM's range for weight gradients
/// (gemm.cpp; measured: dglstm's 512 x 128 x 32 ran 28.1 ms per step this way, 32.8 stacked) --
/// else once their stacked rows reach kStackedRows or their bytes kHeldBytes (one GEMM with a
/// large K, for few rows per step or products beyond LIBXSMM: lstm_lm's 1024 x 256 x 32; the
/// bound keeps a long sequence's memory in check), or kSideRows where that fold is small enough
/// to run beside the backward (small_lstm's B = 8). The points depend only on the shapes and the
/// order in which products arrive, never on the threads.
constexpr std::int64_t kChainedEntries = 8192;
constexpr std::int64_t kEfficientRows = 16;
constexpr std::int64_t kEfficientWork = std::int64_t{1} << 22;
constexpr std::int64_t kStackedRows = 1024;
constexpr std::size_t kHeldBytes = std::size_t{16} << 20;
/// A fold of at most this many multiply-adds (about 100 us on one core) runs beside the backward
/// on a worker (SideLane), where the recurrence does not wait for it; a larger one runs in place,
/// split across the pool (lstm_lm's 1024 x 256 x 1024 ran 4.5 % slower beside: the next thing
/// its backward does is wait for that sum).
constexpr std::int64_t kSideWork = std::int64_t{1} << 23;
/// A stack of this many rows whose fold is at most kSideWork is folded at once (beside the
/// backward where a worker is free), not held for kStackedRows or the end of the backward, where
/// the step would wait for it: small_lstm's [8, 256] x [8, 64] products fold 16 steps at a time
/// (2 threads, four rounds of 4-10 alternating `xgrad_bench --quick` runs: fastest step 4.2-5.1 %
/// shorter each time, the medians between 20 % shorter and 3.7 % longer; one thread unchanged).
constexpr std::int64_t kSideRows = 128;

/// A factor of at least this many rows is multiplied on its own: its GEMM is efficient alone, and
/// stacking it would copy more than it saves (bilstm_tagger's input projection: chunks of 256 and
/// 1024 rows by 640 columns, 3.3 MB copied per direction and step to make one GEMM of them).
constexpr std::int64_t kFoldAloneRows = 256;

/// sum += a^T b for one pair of factors a [r, m], b [r, n].
void fold_product(Tensor& sum, const Tensor& a, const Tensor& b) {
  const std::int64_t rows = a.shape()[0], m = a.shape()[1], n = b.shape()[1];
  if (rows == 0) return;
  xgrad::detail::dispatch_floating(a.dtype(), "weight gradient", [&](auto tag) {
    using T = decltype(tag);
    gemm<T>(true, false, m, n, rows, T(1), a.template data<T>(), b.template data<T>(), T(1), sum.template data<T>());
  });
}

/// sum += sum_i a_i^T b_i for the factors a_i [r_i, m], b_i [r_i, n]: each factor of at least
/// kFoldAloneRows rows one GEMM, in order, then the others' rows stacked into one. It lets none of
/// them go: on a side lane, the thread that made them does (their buffers go back to its cache,
/// not to the worker's).
void fold_products(Tensor& sum, const std::vector<std::pair<Tensor, Tensor>>& factors) {
  NoGradGuard no_grad;
  const auto& [a0, b0] = factors.front();
  if (!sum.defined()) sum = zeros({a0.shape()[1], b0.shape()[1]}, a0.dtype());
  std::vector<Tensor> as, bs;  // the factors with fewer rows
  for (const auto& [a, b] : factors) {
    if (a.shape()[0] >= kFoldAloneRows) {
      fold_product(sum, a, b);
    } else {
      as.push_back(a);
      bs.push_back(b);
    }
  }
  if (as.size() == 1) fold_product(sum, as.front(), bs.front());
  else if (as.size() > 1) fold_product(sum, concat(as, 0), concat(bs, 0));
}

}  // namespace

struct Engine {
  static constexpr std::uint32_t kNone = NodeIndex::kNone;

  /// One reachable node's state in one backward call.
  struct Slot {
    std::shared_ptr<Node> node;  // held: releasing edges must not free a node we still visit
    std::uint32_t pending_begin;  // its outputs' gradients: pending[pending_begin + output]
    std::uint32_t edges_begin = 0;  // its inputs' slots: edge_slots[edges_begin + input]
    bool needed = false;
    bool captures = false;  // grad(): some target is an output of this node
    bool done = false;      // a leaf's accumulator already run (as soon as its gradient was complete)
    std::uint32_t producers = 0;  // backward(): edges from other nodes into this leaf's accumulator
    std::uint32_t fan_in = 0;     // edges from other nodes into this node
  };
  /// Weight gradients a^T b that reached pending gradient `pending` and are not summed yet
  /// (weight_gradient).
  struct Products {
    std::size_t pending;
    const char* op;  // the node that sent the last one (anomaly reports)
    Tensor sum;      // of the products folded so far
    std::vector<std::pair<Tensor, Tensor>> factors;  // held, not folded yet
    std::int64_t rows = 0;
    std::size_t bytes = 0;
  };
  /// A product a formula handed over for its input `input` (weight_gradient).
  struct Taken {
    std::size_t input;
    Tensor a, b;
  };
  struct Target {
    std::uint32_t slot, output;
    std::size_t index;  // in grad()'s inputs
  };

  /// The tables of one backward call. A thread keeps its tables between calls (a training step's
  /// backward then allocates nothing here); a backward started inside a backward formula gets
  /// its own.
  struct Scratch {
    std::vector<Slot> slots;
    std::vector<std::uint32_t> edge_slots, order, root_slots;
    std::vector<Tensor> pending, grads_out;
    std::vector<Target> targets;
    std::vector<Products> products;  // one per weight with products held (a few)
    std::vector<Taken> taken;        // from the node running now
    bool listing = false;            // contributions are listed (checkpoint)
    std::vector<std::function<void()>> callbacks;  // queue_callback: run when the backward ends
    NodeIndex index;
    xgrad::detail::SideLane lane;  // folds products beside the backward (add_product)
    void clear() {  // drops every node and gradient reference, keeps the capacity
      try {
        lane.drain();
      } catch (...) {  // only after a backward that failed: its own error is the one reported
      }
      products.clear();
      taken.clear();
      callbacks.clear();
      slots.clear();
      edge_slots.clear();
      order.clear();
      root_slots.clear();
      pending.clear();
      grads_out.clear();
      targets.clear();
      index.clear();
    }
  };

  /// Lends this thread's spare Scratch for one call and takes it back, cleared, however the call
  /// ends. After the thread's cache is destroyed (a static Tensor's backward at exit), a call
  /// gets a fresh one.
  class ScratchLease {
   public:
    ScratchLease() {
      if (!t_cache_destroyed && !t_cache.spare.empty()) {
        scratch_ = std::move(t_cache.spare.back());
        t_cache.spare.pop_back();
      } else {
        scratch_ = std::make_unique<Scratch>();
      }
    }
    ~ScratchLease() {
      scratch_->clear();
      if (!t_cache_destroyed) t_cache.spare.push_back(std::move(scratch_));
    }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
    Scratch& operator*() { return *scratch_; }

   private:
    struct Cache {
      std::vector<std::unique_ptr<Scratch>> spare;
      ~Cache() { t_cache_destroyed = true; }
    };
    static thread_local Cache t_cache;
    static thread_local bool t_cache_destroyed;
    std::unique_ptr<Scratch> scratch_;
  };

  /// Runs the graph from the `roots` edges with `root_grads`. With `targets`, returns the gradient
  /// that reaches each target edge (and runs only the part of the graph leading to them);
  /// without, runs everything and lets AccumulateGrad nodes add into the leaves.
  /// With `stop_at_targets`, the targets are the boundary of the graph: nothing behind them is
  /// collected or run, and each target gets what arrived there (for a FusedNode's output, not what
  /// its own later ops add: the outer backward runs those). With `contributions` (stop_at_targets),
  /// also lists each gradient that reaches a target edge, separately and in the order they arrive
  /// (checkpoint's exact replay of the accumulation).
  static std::vector<Tensor> run(std::span<const Edge> roots, std::span<const Tensor> root_grads,
                                 bool retain_graph, bool create_graph, const std::vector<Edge>* targets,
                                 bool stop_at_targets = false,
                                 std::vector<std::vector<detail::Contribution>>* contributions = nullptr) {
    detail::close_fused_node();
    ScratchLease lease;
    Scratch& s = *lease;
    s.listing = contributions != nullptr;
    // Collect the reachable graph.
    std::uint32_t pending_count = 0;
    auto visit = [&](const std::shared_ptr<Node>& n) -> std::uint32_t {
      if (!n) return kNone;
      std::uint32_t at = s.index.find(n.get());
      if (at != kNone) return at;
      at = static_cast<std::uint32_t>(s.slots.size());
      s.slots.push_back(Slot{n, pending_count, 0, false, false, false, 0});
      pending_count += n->num_outputs_;
      s.index.insert(n.get(), at);
      return at;
    };
    for (const auto& r : roots) s.root_slots.push_back(visit(r.node));
    // Nothing behind a boundary is collected or run.
    auto boundary = [&](const Node* n) {
      return stop_at_targets && std::any_of(targets->begin(), targets->end(), [&](const Edge& t) { return t.node.get() == n; });
    };
    for (std::size_t i = 0; i < s.slots.size(); ++i) {
      s.slots[i].edges_begin = static_cast<std::uint32_t>(s.edge_slots.size());
      const bool stop = boundary(s.slots[i].node.get());
      for (const auto& edge : s.slots[i].node->next_) {
        const std::uint32_t at = stop ? kNone : visit(edge.node);  // may grow `slots`: index again afterwards
        s.edge_slots.push_back(at);
      }
    }
    for (std::uint32_t e : s.edge_slots)
      if (e != kNone) ++s.slots[e].fan_in;
    // Inputs are always created before the ops that use them: decreasing sequence numbers
    // are a topological order.
    s.order.resize(s.slots.size());
    for (std::uint32_t i = 0; i < s.order.size(); ++i) s.order[i] = i;
    std::sort(s.order.begin(), s.order.end(), [&](std::uint32_t a, std::uint32_t b) {
      return s.slots[a].node->sequence_nr_ > s.slots[b].node->sequence_nr_;
    });
    auto child_needed = [&](const Slot& slot, std::size_t input) {
      const std::uint32_t at = s.edge_slots[slot.edges_begin + input];
      return at != kNone && s.slots[at].needed;
    };

    std::vector<Tensor> captured;
    auto by_slot = [](const Target& a, const Target& b) { return a.slot < b.slot; };
    if (targets) {
      captured.resize(targets->size());
      for (std::size_t i = 0; i < targets->size(); ++i) {
        const Edge& t = (*targets)[i];
        const std::uint32_t at = t ? s.index.find(t.node.get()) : kNone;
        if (at == kNone) continue;
        s.targets.push_back({at, t.output_nr, i});
        s.slots[at].captures = true;
      }
      std::sort(s.targets.begin(), s.targets.end(), by_slot);
      for (auto it = s.order.rbegin(); it != s.order.rend(); ++it) {  // inputs first
        Slot& slot = s.slots[*it];
        slot.needed = slot.captures;
        for (std::size_t e = 0; e < slot.node->next_.size() && !slot.needed; ++e) slot.needed = child_needed(slot, e);
      }
    } else {
      for (auto& slot : s.slots) slot.needed = true;
    }

    if (contributions) contributions->assign(targets->size(), {});
    auto note_contribution = [&](std::uint32_t slot, std::uint32_t output, const detail::Contribution& c) {
      if (!contributions || !s.slots[slot].captures) return false;
      bool listed = false;
      auto mine = std::equal_range(s.targets.begin(), s.targets.end(), Target{slot, 0, 0}, by_slot);
      for (auto t = mine.first; t != mine.second; ++t)
        if (t->output == output) {
          (*contributions)[t->index].push_back(c);
          listed = true;
        }
      return listed;
    };
    s.pending.resize(pending_count);
    for (std::size_t i = 0; i < roots.size(); ++i) {
      note_contribution(s.root_slots[i], roots[i].output_nr, {root_grads[i], {}, {}});
      accumulate(s.pending[s.slots[s.root_slots[i]].pending_begin + roots[i].output_nr], root_grads[i]);
    }

    // backward(): a leaf's accumulator runs as soon as the last node feeding it has run, not at
    // the end (its sequence number is 0), so that its post-accumulate hooks can start work on a
    // finished gradient (an allreduce) while the rest of the graph runs.
    // Only where a hook waits for it: otherwise the order makes no difference, and this saves
    // the bookkeeping on small graphs.
    const bool early = !targets && std::any_of(s.slots.begin(), s.slots.end(), [](const Slot& slot) {
      return is_accumulator(*slot.node) && slot.node->has_hooks();
    });
    if (early)
      for (std::uint32_t e : s.edge_slots)
        if (e != kNone && is_accumulator(*s.slots[e].node)) ++s.slots[e].producers;
    CallbackScope callbacks(targets ? nullptr : &s.callbacks);

    GradModeGuard grad_mode(create_graph);
    auto run_node = [&](std::uint32_t at) {
      Slot& slot = s.slots[at];
      Node& n = *slot.node;
      if (!slot.needed) return;
      settle(s, slot);
      auto first = s.pending.begin() + slot.pending_begin, last = first + n.num_outputs_;
      if (std::none_of(first, last, [](const Tensor& g) { return g.defined(); })) return;
      s.grads_out.assign(std::make_move_iterator(first), std::make_move_iterator(last));
      if (slot.captures) {
        auto mine = std::equal_range(s.targets.begin(), s.targets.end(), Target{at, 0, 0}, by_slot);
        // grad() of a node's output: its whole gradient (a FusedNode adds what its own ops read);
        // at a boundary, what arrived (checkpoint takes the gradients one by one instead).
        if (!contributions)
          for (auto t = mine.first; t != mine.second; ++t)
            captured[t->index] = stop_at_targets ? s.grads_out[t->output] : n.output_gradient(s.grads_out, t->output);
        bool feeds_needed = false;
        for (std::size_t e = 0; e < n.next_.size() && !feeds_needed; ++e) feeds_needed = child_needed(slot, e);
        if (!feeds_needed) return;
      }
      if (n.released_) n.fail_released();
      if (targets && n.next_.empty()) return;  // an AccumulateGrad: grad() leaves .grad alone
      n.check_saved_versions();
      Grads grads;
      {
        // The ops inside a backward formula are checked as that formula's result, not one by one.
        AnomalyModeGuard formula_ops(false);
        ProductSink sink(create_graph ? nullptr : &s, at);
        LastApply last_apply(!retain_graph && !create_graph);
        grads = n.apply(s.grads_out);
      }
      s.grads_out.clear();
      if (!n.next_.empty() && grads.size() != n.next_.size())
        fail("backward: '{}' returned {} gradients for {} inputs", n.name_, grads.size(), n.next_.size());
      // Products handed over, in the order of the inputs: the same order as gradients.
      std::stable_sort(s.taken.begin(), s.taken.end(), [](const Taken& x, const Taken& y) { return x.input < y.input; });
      auto taken = s.taken.begin();
      for (std::size_t i = 0; i < n.next_.size(); ++i) {
        for (; taken != s.taken.end() && taken->input == i; ++taken) {
          const std::uint32_t child = s.edge_slots[slot.edges_begin + i];
          const std::uint32_t output = n.next_[i].output_nr;
          if (!note_contribution(child, output, {{}, taken->a, taken->b}))
            add_product(s, s.slots[child].pending_begin + output, n.name_, std::move(taken->a), std::move(taken->b));
        }
        if (!child_needed(slot, i) || !grads[i].defined()) continue;
        const Edge& edge = n.next_[i];
        const Tensor& g = grads[i];
        const Shape& expected = edge.node->output_shape(edge.output_nr);
        if (g.shape() != expected || g.dtype() != edge.node->output_dtype(edge.output_nr))
          fail("backward: '{}' returned a gradient of shape {} {} for its input {}, which has shape {} {} ('{}')",
               n.name_, g.shape(), dtype_name(g.dtype()), i, expected, dtype_name(edge.node->output_dtype(edge.output_nr)),
               edge.node->output_name(edge.output_nr));
        check_anomaly(g, n.name_, "backward");
        const std::uint32_t child = s.edge_slots[slot.edges_begin + i];
        note_contribution(child, edge.output_nr, {g, {}, {}});
        accumulate(s.pending[s.slots[child].pending_begin + edge.output_nr], g);
      }
      s.taken.clear();
      if (!retain_graph) n.release();
    };
    for (std::uint32_t at : s.order) {
      if (s.slots[at].done) continue;
      run_node(at);
      if (!early) continue;
      const Slot& slot = s.slots[at];
      for (std::size_t e = 0; e < slot.node->next_.size(); ++e) {
        const std::uint32_t child = s.edge_slots[slot.edges_begin + e];
        if (child != kNone && s.slots[child].producers > 0 && --s.slots[child].producers == 0) {
          run_node(child);
          s.slots[child].done = true;
        }
      }
    }
    // Callbacks may queue more callbacks.
    for (std::size_t i = 0; i < s.callbacks.size(); ++i) {
      auto callback = std::move(s.callbacks[i]);
      callback();
    }
    return captured;
  }

  static bool is_accumulator(const Node& n) { return n.sequence_nr_ == 0; }

  /// Where detail::weight_gradient hands a product: the node whose backward formula runs now on
  /// this thread, in a first-order backward (none under create_graph: the product is recorded).
  class ProductSink;
  static thread_local ProductSink* t_sink;
  /// Marks the node's apply as its last (the node is released after it), for
  /// reusable_in_backward; a backward run inside the formula marks its own.
  static thread_local bool t_last_apply;
  class LastApply {
   public:
    explicit LastApply(bool last) : previous_(t_last_apply) { t_last_apply = last; }
    ~LastApply() { t_last_apply = previous_; }
    LastApply(const LastApply&) = delete;
    LastApply& operator=(const LastApply&) = delete;

   private:
    bool previous_;
  };
  class ProductSink {
   public:
    ProductSink(Scratch* s, std::uint32_t at) : s_(s), at_(at), previous_(t_sink) { t_sink = this; }
    ~ProductSink() { t_sink = previous_; }
    ProductSink(const ProductSink&) = delete;
    ProductSink& operator=(const ProductSink&) = delete;
    /// Keeps a^T b for the node's input `input` where the engine sums it later: several nodes
    /// send gradients there (or checkpoint lists what reaches it).
    bool take(std::size_t input, const Tensor& a, const Tensor& b) {
      if (!s_) return false;
      const Slot& slot = s_->slots[at_];
      if (input >= slot.node->next_.size()) return false;
      const std::uint32_t child = s_->edge_slots[slot.edges_begin + input];
      if (child == kNone) return false;
      const Slot& target = s_->slots[child];
      if (!target.needed || (target.fan_in < 2 && !(s_->listing && target.captures))) return false;
      const Edge& edge = slot.node->next_[input];
      if (a.dim() != 2 || b.dim() != 2 || a.shape()[0] != b.shape()[0] || a.dtype() != b.dtype() ||
          edge.node->output_dtype(edge.output_nr) != a.dtype() ||
          edge.node->output_shape(edge.output_nr) != Shape{a.shape()[1], b.shape()[1]})
        return false;  // computed now; the usual checks report a mismatch
      s_->taken.push_back({input, a, b});
      return true;
    }

   private:
    Scratch* s_;
    std::uint32_t at_;
    ProductSink* previous_;
  };

  /// Adds a product a^T b to pending gradient p's running sum, or holds it to fold later.
  static void add_product(Scratch& s, std::size_t p, const char* op, Tensor a, Tensor b) {
    auto held = std::find_if(s.products.begin(), s.products.end(), [p](const Products& h) { return h.pending == p; });
    if (held == s.products.end()) held = s.products.insert(held, Products{p, op, {}, {}, 0, 0});
    const std::int64_t rows = a.shape()[0], entries = a.shape()[1] * b.shape()[1];
    const bool chained = entries <= kChainedEntries || (rows >= kEfficientRows && entries * rows <= kEfficientWork);
    held->op = op;
    held->rows += rows;
    held->bytes += static_cast<std::size_t>(a.numel() + b.numel()) * dtype_size(a.dtype());
    held->factors.emplace_back(std::move(a), std::move(b));
    const bool side_sized = held->rows * entries <= kSideWork;  // the fold of all held, beside the backward
    if (chained || held->rows >= kStackedRows || held->bytes >= kHeldBytes || (held->rows >= kSideRows && side_sized)) {
      // Beside the backward, on a worker: the recurrence's next step does not wait for it
      // (gru_imdb's 96 x 32 x 32 sum took 4.1 us a step in place, its operands out of cache).
      const auto& [a0, b0] = held->factors.front();
      if (!held->sum.defined()) held->sum = zeros({a0.shape()[1], b0.shape()[1]}, a0.dtype());
      if (side_sized && xgrad::detail::SideLane::has_worker()) {
        s.lane.post([sum = held->sum, factors = std::move(held->factors)]() mutable { fold_products(sum, factors); });
      } else {
        s.lane.drain();  // after the sums posted before it
        fold_products(held->sum, held->factors);
      }
      held->factors.clear();
      held->rows = 0;
      held->bytes = 0;
    }
  }
  /// Before a node runs: the products that reached its outputs join their gradients.
  static void settle(Scratch& s, const Slot& slot) {
    const std::size_t first = slot.pending_begin, last = first + slot.node->num_outputs_;
    for (auto held = s.products.begin(); held != s.products.end();) {
      if (held->pending < first || held->pending >= last) {
        ++held;
        continue;
      }
      s.lane.drain();  // the sums posted to it are complete
      if (!held->factors.empty()) {
        fold_products(held->sum, held->factors);
        held->factors.clear();
      }
      check_anomaly(held->sum, held->op, "backward");
      accumulate(s.pending[held->pending], held->sum);
      held = s.products.erase(held);
    }
  }

  /// Where queue_callback puts callbacks: the innermost backward() running on this thread.
  static thread_local std::vector<std::function<void()>>* t_callbacks;
  class CallbackScope {
   public:
    explicit CallbackScope(std::vector<std::function<void()>>* callbacks) : previous_(t_callbacks) {
      t_callbacks = callbacks;
    }
    ~CallbackScope() { t_callbacks = previous_; }
    CallbackScope(const CallbackScope&) = delete;
    CallbackScope& operator=(const CallbackScope&) = delete;

   private:
    std::vector<std::function<void()>>* previous_;
  };

  /// Sums the gradients that reach one output. In place when `into` is a buffer nobody else
  /// holds (no allocation); under create_graph, an add the graph records.
  static void accumulate(Tensor& into, const Tensor& g) {
    if (!into.defined()) into = g;
    else if (!grad_enabled() && detail::unshared(into) && into.shape() == g.shape() && into.dtype() == g.dtype())
      detail::add_in_place(into, g);
    else into = into + g;
  }
};

thread_local Engine::ScratchLease::Cache Engine::ScratchLease::t_cache;
thread_local bool Engine::ScratchLease::t_cache_destroyed = false;
thread_local std::vector<std::function<void()>>* Engine::t_callbacks = nullptr;
thread_local Engine::ProductSink* Engine::t_sink = nullptr;
thread_local bool Engine::t_last_apply = false;

bool detail::reusable_in_backward(const Tensor& t) {
  return Engine::t_last_apply && t.defined() && t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1;
}

Tensor detail::weight_gradient(std::size_t input, const Tensor& a, const Tensor& b) {
  if (Engine::t_sink && Engine::t_sink->take(input, a, b)) return {};
  return matmul(a, b, true, false);
}

void queue_callback(std::function<void()> callback) {
  if (!Engine::t_callbacks) fail("queue_callback: no backward() is running on this thread");
  Engine::t_callbacks->push_back(std::move(callback));
}

HookHandle register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook) {
  if (!leaf.defined() || !leaf.requires_grad() || !leaf.is_leaf())
    fail("register_post_accumulate_grad_hook: the tensor must be a leaf that requires grad");
  if (!hook) fail("register_post_accumulate_grad_hook: empty hook");
  auto accumulator = std::static_pointer_cast<AccumulateGrad>(gradient_edge(leaf).node);
  const std::uint64_t id = accumulator->add_hook(std::move(hook));
  return HookHandle(std::move(accumulator), id);
}

HookHandle::HookHandle(std::shared_ptr<AccumulateGrad> accumulator, std::uint64_t id)
    : accumulator_(std::move(accumulator)), id_(id) {}
HookHandle::HookHandle(HookHandle&& other) noexcept
    : accumulator_(std::move(other.accumulator_)), id_(std::exchange(other.id_, 0)) {}
HookHandle& HookHandle::operator=(HookHandle&& other) noexcept {
  if (this != &other) {
    remove();
    accumulator_ = std::move(other.accumulator_);
    id_ = std::exchange(other.id_, 0);
  }
  return *this;
}
HookHandle::~HookHandle() { remove(); }
void HookHandle::remove() {
  if (accumulator_) accumulator_->remove_hook(id_);
  accumulator_.reset();
}

namespace {

/// The gradient that seeds a backward at `root`: `grad` as given, or 1 for a one-element output.
Tensor seed_grad(const Tensor& root, const Tensor& grad, const char* op) {
  if (grad.defined()) {
    if (grad.shape() != root.shape() || grad.dtype() != root.dtype())
      fail("{}: gradient {} {} does not match output {} {}", op, grad.shape(), dtype_name(grad.dtype()), root.shape(),
           dtype_name(root.dtype()));
    return grad;
  }
  if (root.numel() != 1)
    fail("{}: a gradient can be implied only for one-element outputs; pass one for shape {}", op, root.shape());
  return ones(root.shape(), root.dtype());
}

std::vector<Tensor> seed_grads(std::span<const Tensor> roots, std::span<const Tensor> grads, const char* op) {
  if (!grads.empty() && grads.size() != roots.size())
    fail("{}: {} gradients given for {} outputs", op, grads.size(), roots.size());
  std::vector<Tensor> seeds;
  for (std::size_t i = 0; i < roots.size(); ++i) seeds.push_back(seed_grad(roots[i], grads.empty() ? Tensor() : grads[i], op));
  return seeds;
}

/// Where a backward starts at `root`.
Edge root_node(const Tensor& root, const char* op) {
  Edge n = root.defined() ? gradient_edge(root) : Edge{};
  if (!n)
    fail("{}: an output does not require grad and has no grad_fn (shape {})", op,
         root.defined() ? to_string(root.shape()) : "undefined");
  return n;
}

std::vector<Edge> root_nodes(std::span<const Tensor> roots, const char* op) {
  std::vector<Edge> nodes;
  for (const auto& r : roots) nodes.push_back(root_node(r, op));
  return nodes;
}

}  // namespace

void detail::backward(std::span<const Tensor> roots, std::span<const Tensor> grads, bool retain_graph,
                      bool create_graph) {
  const bool retain = retain_graph || create_graph;
  if (roots.size() == 1 && grads.size() <= 1) {  // Tensor::backward: no vectors
    const Edge node = root_node(roots[0], "backward");
    const Tensor seed = seed_grad(roots[0], grads.empty() ? Tensor() : grads[0], "backward");
    Engine::run({&node, 1}, {&seed, 1}, retain, create_graph, nullptr);
    return;
  }
  const std::vector<Edge> nodes = root_nodes(roots, "backward");
  const std::vector<Tensor> seeds = seed_grads(roots, grads, "backward");
  Engine::run(nodes, seeds, retain, create_graph, nullptr);
}

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph) {
  detail::backward(roots, grads, retain_graph, create_graph);
}

std::vector<Tensor> detail::grad_to_boundary(const std::vector<Tensor>& outputs, const std::vector<Edge>& targets,
                                             const std::vector<Tensor>& grad_outputs, bool create_graph,
                                             bool retain_graph, std::vector<std::vector<Contribution>>* contributions) {
  auto nodes = root_nodes(outputs, "backward");
  return Engine::run(nodes, grad_outputs, retain_graph || create_graph, create_graph, &targets, true, contributions);
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool create_graph, std::optional<bool> retain_graph,
                         bool allow_unused) {
  auto nodes = root_nodes(outputs, "grad");
  auto seeds = seed_grads(outputs, grad_outputs, "grad");
  std::vector<Edge> targets;
  for (const auto& t : inputs) {
    if (!t.defined() || !t.requires_grad()) fail("grad: an input does not require grad");
    targets.push_back(gradient_edge(t));
  }
  auto result = Engine::run(nodes, seeds, retain_graph.value_or(create_graph), create_graph, &targets);
  for (std::size_t i = 0; i < result.size(); ++i)
    if (!result[i].defined() && !allow_unused)
      fail("grad: input {} (shape {}) was not used to compute the outputs; pass allow_unused=true", i,
           inputs[i].shape());
  return result;
}

}  // namespace xgrad::autograd

void xgrad::Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::detail::backward(std::span<const Tensor>(this, 1), std::span<const Tensor>(&gradient, 1), retain_graph,
                             create_graph);
}
