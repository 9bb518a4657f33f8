#include "autograd/engine.hpp"

#include <algorithm>
#include <cstdint>
#include <iterator>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"

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
    if (2 * (size_ + 1) > table_.size()) grow();
    place(node, value);
    ++size_;
  }

 private:
  std::size_t hash(const Node* node) const {
    return static_cast<std::size_t>((reinterpret_cast<std::uintptr_t>(node) >> 4) * 0x9E3779B97F4A7C15ull >> 20) &
           (table_.size() - 1);
  }
  void place(const Node* node, std::uint32_t value) {
    std::size_t i = hash(node);
    while (table_[i].first) i = (i + 1) & (table_.size() - 1);
    table_[i] = {node, value};
  }
  void grow() {
    auto old = std::move(table_);
    table_.assign(old.size() * 2, {nullptr, kNone});
    for (const auto& [node, value] : old)
      if (node) place(node, value);
  }
  std::vector<std::pair<const Node*, std::uint32_t>> table_;
  std::size_t size_ = 0;
};

}  // namespace

struct Engine {
  static constexpr std::uint32_t kNone = NodeIndex::kNone;

  /// One reachable node's state in one backward call.
  struct Slot {
    std::shared_ptr<Node> node;  // held: releasing edges must not free a node we still visit
    std::uint32_t pending_begin;  // its outputs' gradients: pending[pending_begin + output]
    std::uint32_t edges_begin = 0;  // its inputs' slots: edge_slots[edges_begin + input]
    bool needed = false;
    std::vector<std::pair<std::uint32_t, int>> targets;  // (output, index in grad()'s inputs)
  };

  /// Runs the graph from the `roots` edges with `root_grads`. With `targets`, returns the gradient
  /// that reaches each target edge (and runs only the part of the graph leading to them);
  /// without, runs everything and lets AccumulateGrad nodes add into the leaves.
  static std::vector<Tensor> run(const std::vector<Edge>& roots, const std::vector<Tensor>& root_grads,
                                 bool retain_graph, bool create_graph, const std::vector<Edge>* targets) {
    // Collect the reachable graph.
    std::vector<Slot> slots;
    std::vector<std::uint32_t> edge_slots;
    std::uint32_t pending_count = 0;
    NodeIndex index;
    auto visit = [&](const std::shared_ptr<Node>& n) -> std::uint32_t {
      if (!n) return kNone;
      std::uint32_t at = index.find(n.get());
      if (at != kNone) return at;
      at = static_cast<std::uint32_t>(slots.size());
      slots.push_back(Slot{n, pending_count, 0, false, {}});
      pending_count += n->num_outputs_;
      index.insert(n.get(), at);
      return at;
    };
    std::vector<std::uint32_t> root_slots;
    for (const auto& r : roots) root_slots.push_back(visit(r.node));
    for (std::size_t i = 0; i < slots.size(); ++i) {
      slots[i].edges_begin = static_cast<std::uint32_t>(edge_slots.size());
      for (const auto& edge : slots[i].node->next_) {
        const std::uint32_t at = visit(edge.node);  // may grow `slots`: index again afterwards
        edge_slots.push_back(at);
      }
    }
    // Inputs are always created before the ops that use them: decreasing sequence numbers
    // are a topological order.
    std::vector<std::uint32_t> order(slots.size());
    for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) {
      return slots[a].node->sequence_nr_ > slots[b].node->sequence_nr_;
    });

    std::vector<Tensor> captured;
    if (targets) {
      captured.resize(targets->size());
      for (std::size_t i = 0; i < targets->size(); ++i) {
        const Edge& t = (*targets)[i];
        const std::uint32_t at = t ? index.find(t.node.get()) : kNone;
        if (at != kNone) slots[at].targets.emplace_back(t.output_nr, static_cast<int>(i));
      }
      for (auto it = order.rbegin(); it != order.rend(); ++it) {  // inputs first
        Slot& s = slots[*it];
        s.needed = !s.targets.empty();
        for (std::size_t e = 0; e < s.node->next_.size() && !s.needed; ++e) {
          const std::uint32_t at = edge_slots[s.edges_begin + e];
          s.needed = at != kNone && slots[at].needed;
        }
      }
    } else {
      for (auto& s : slots) s.needed = true;
    }

    std::vector<Tensor> pending(pending_count);
    for (std::size_t i = 0; i < roots.size(); ++i)
      accumulate(pending[slots[root_slots[i]].pending_begin + roots[i].output_nr], root_grads[i]);

    GradModeGuard grad_mode(create_graph);
    for (std::uint32_t at : order) {
      Slot& s = slots[at];
      Node& n = *s.node;
      auto first = pending.begin() + s.pending_begin, last = first + n.num_outputs_;
      if (!s.needed || std::none_of(first, last, [](const Tensor& g) { return g.defined(); })) continue;
      std::vector<Tensor> grads_out(std::make_move_iterator(first), std::make_move_iterator(last));
      if (targets && !s.targets.empty()) {
        for (const auto& [output, i] : s.targets) captured[i] = grads_out[output];
        if (std::none_of(n.next_.begin(), n.next_.end(), [&](const Edge& e) {
              const std::uint32_t child = e ? index.find(e.node.get()) : kNone;
              return child != kNone && slots[child].needed;
            }))
          continue;
      }
      if (n.released_)
        fail("backward: trying to backward through the graph a second time (the saved values of '{}' were "
             "freed by the first backward); pass retain_graph=true to the first backward if you need to",
             n.name_);
      if (targets && n.next_.empty()) continue;  // an AccumulateGrad: grad() leaves .grad alone
      n.check_saved_versions();
      Grads grads;
      {
        // The ops inside a backward formula are checked as that formula's result, not one by one.
        AnomalyModeGuard formula_ops(false);
        grads = n.apply(grads_out);
      }
      grads_out.clear();
      if (!n.next_.empty() && grads.size() != n.next_.size())
        fail("backward: '{}' returned {} gradients for {} inputs", n.name_, grads.size(), n.next_.size());
      for (std::size_t i = 0; i < n.next_.size(); ++i) {
        const Edge& edge = n.next_[i];
        const std::uint32_t child = edge_slots[s.edges_begin + i];
        if (child == kNone || !slots[child].needed || !grads[i].defined()) continue;
        const Tensor& g = grads[i];
        const Shape& expected = edge.node->output_shape(edge.output_nr);
        if (g.shape() != expected || g.dtype() != edge.node->output_dtype(edge.output_nr))
          fail("backward: '{}' returned a gradient of shape {} {} for its input {}, which has shape {} {} ('{}')",
               n.name_, g.shape(), dtype_name(g.dtype()), i, expected, dtype_name(edge.node->output_dtype(edge.output_nr)),
               edge.node->name_);
        check_anomaly(g, n.name_, "backward");
        accumulate(pending[slots[child].pending_begin + edge.output_nr], g);
      }
      if (!retain_graph) n.release();
    }
    return captured;
  }

  /// Sums the gradients that reach one output. In place when `into` is a buffer nobody else
  /// holds (no allocation); under create_graph, an add the graph records.
  static void accumulate(Tensor& into, const Tensor& g) {
    if (!into.defined()) into = g;
    else if (!grad_enabled() && detail::unshared(into) && into.shape() == g.shape() && into.dtype() == g.dtype())
      detail::add_in_place(into, g);
    else into = into + g;
  }
};

namespace {

/// The gradients that seed a backward: as given, or 1 for a one-element output.
std::vector<Tensor> seed_grads(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, const char* op) {
  if (!grads.empty() && grads.size() != roots.size())
    fail("{}: {} gradients given for {} outputs", op, grads.size(), roots.size());
  std::vector<Tensor> seeds;
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    Tensor g = grads.empty() ? Tensor() : grads[i];
    if (!g.defined()) {
      if (r.numel() != 1)
        fail("{}: a gradient can be implied only for one-element outputs; pass one for shape {}", op, r.shape());
      g = ones(r.shape(), r.dtype());
    } else if (g.shape() != r.shape() || g.dtype() != r.dtype()) {
      fail("{}: gradient {} {} does not match output {} {}", op, g.shape(), dtype_name(g.dtype()), r.shape(),
           dtype_name(r.dtype()));
    }
    seeds.push_back(g);
  }
  return seeds;
}

std::vector<Edge> root_nodes(const std::vector<Tensor>& roots, const char* op) {
  std::vector<Edge> nodes;
  for (const auto& r : roots) {
    Edge n = r.defined() ? gradient_edge(r) : Edge{};
    if (!n) fail("{}: an output does not require grad and has no grad_fn (shape {})", op, r.defined() ? to_string(r.shape()) : "undefined");
    nodes.push_back(std::move(n));
  }
  return nodes;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, bool retain_graph,
              bool create_graph) {
  auto nodes = root_nodes(roots, "backward");
  auto seeds = seed_grads(roots, grads, "backward");
  Engine::run(nodes, seeds, retain_graph || create_graph, create_graph, nullptr);
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
  autograd::backward({*this}, {gradient}, retain_graph, create_graph);
}
