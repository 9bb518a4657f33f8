#include "autograd/engine.hpp"

#include <algorithm>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"

namespace xgrad::autograd {

namespace {
std::atomic<std::uint64_t> g_next_run{1};
}

struct Engine {
  /// Runs the graph from the `roots` edges with `root_grads`. With `targets`, returns the gradient
  /// that reaches each target edge (and runs only the part of the graph leading to them);
  /// without, runs everything and lets AccumulateGrad nodes add into the leaves.
  static std::vector<Tensor> run(const std::vector<Edge>& roots, const std::vector<Tensor>& root_grads,
                                 bool retain_graph, bool create_graph, const std::vector<Edge>* targets) {
    const std::uint64_t mark = g_next_run.fetch_add(1, std::memory_order_relaxed);
    // Collect the reachable graph (held by shared_ptr: releasing edges must not free a node we still visit).
    std::vector<std::shared_ptr<Node>> nodes;
    auto visit = [&](const std::shared_ptr<Node>& n) {
      if (n && n->visit_mark_ != mark) {
        n->visit_mark_ = mark;
        n->pending_grads_.assign(n->num_outputs_, Tensor());
        nodes.push_back(n);
      }
    };
    for (const auto& r : roots) visit(r.node);
    for (std::size_t i = 0; i < nodes.size(); ++i)
      for (const auto& edge : nodes[i]->next_) visit(edge.node);
    // Inputs are always created before the ops that use them: decreasing sequence numbers
    // are a topological order.
    std::sort(nodes.begin(), nodes.end(),
              [](const auto& a, const auto& b) { return a->sequence_nr_ > b->sequence_nr_; });

    struct Scratch {  // clears the per-run fields however the run ends
      std::vector<std::shared_ptr<Node>>& nodes;
      ~Scratch() {
        for (auto& n : nodes) {
          n->pending_grads_.clear();
          n->needed_ = false;
          n->targets_.clear();
        }
      }
    } scratch{nodes};

    std::vector<Tensor> captured;
    if (targets) {
      captured.resize(targets->size());
      for (std::size_t i = 0; i < targets->size(); ++i) {
        const Edge& t = (*targets)[i];
        if (t && t.node->visit_mark_ == mark) t.node->targets_.emplace_back(t.output_nr, static_cast<int>(i));
      }
      for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) {  // inputs first
        Node& n = **it;
        n.needed_ = !n.targets_.empty();
        for (const auto& edge : n.next_) n.needed_ = n.needed_ || (edge && edge.node->needed_);
      }
    } else {
      for (auto& n : nodes) n->needed_ = true;
    }

    for (std::size_t i = 0; i < roots.size(); ++i) accumulate(roots[i].node->pending_grads_[roots[i].output_nr], root_grads[i]);

    GradModeGuard grad_mode(create_graph);
    for (auto& node : nodes) {
      Node& n = *node;
      if (!n.needed_ || std::none_of(n.pending_grads_.begin(), n.pending_grads_.end(), [](const Tensor& g) { return g.defined(); }))
        continue;
      std::vector<Tensor> grads_out = std::move(n.pending_grads_);
      n.pending_grads_.clear();
      if (targets && !n.targets_.empty()) {
        for (const auto& [output, index] : n.targets_) captured[index] = grads_out[output];
        if (std::none_of(n.next_.begin(), n.next_.end(), [](const Edge& e) { return e && e.node->needed_; })) continue;
      }
      if (n.released_)
        fail("backward: trying to backward through the graph a second time (the saved values of '{}' were "
             "freed by the first backward); pass retain_graph=true to the first backward if you need to",
             n.name_);
      if (targets && n.next_.empty()) continue;  // an AccumulateGrad: grad() leaves .grad alone
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
        if (!edge || !edge.node->needed_ || !grads[i].defined()) continue;
        check_anomaly(grads[i], n.name_, "backward");
        accumulate(edge.node->pending_grads_[edge.output_nr], grads[i]);
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
