#include "xgrad/autograd/branches.hpp"

#include <cstdint>
#include <iterator>
#include <memory>
#include <set>
#include <unordered_set>
#include <utility>

#include "xgrad/autograd/engine_detail.hpp"
#include "xgrad/autograd/fusion.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/core/error.hpp"
#include "xgrad/core/parallel.hpp"
#include "xgrad/core/random.hpp"

namespace xgrad::autograd {

namespace {

/// One branch's graph as the outer graph sees it: its outputs that require grad (the roots of its
/// backward), and where it meets the graph outside: the outputs of older nodes (or leaves) that
/// nodes made in the branch read, in the order first met.
struct Piece {
  std::vector<Tensor> roots;
  std::vector<std::size_t> outputs;  // roots[i] is the node's output outputs[i]
  std::vector<Edge> targets;
};

/// Walks the branch's graph from its roots: nodes numbered `start` or later were made in it.
void find_boundary(Piece& piece, std::uint64_t start) {
  std::set<std::pair<const Node*, std::uint32_t>> crossed;
  std::unordered_set<const Node*> seen;
  std::vector<const Node*> stack;
  auto follow = [&](const Edge& e) {
    if (!e) return;
    if (e.node->sequence_nr() < start) {  // a leaf's accumulator is number 0
      if (crossed.emplace(e.node.get(), e.output_nr).second) piece.targets.push_back(e);
    } else if (seen.insert(e.node.get()).second) {
      stack.push_back(e.node.get());
    }
  };
  // An output from outside, returned as it is, is a target too: its gradient passes straight through.
  for (const auto& root : piece.roots) follow(gradient_edge(root));
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next()) follow(e);
  }
}

/// The branches as one node: its backward runs each branch's graph, side by side, down to where
/// it meets the outer graph, and hands on what reached each target there.
class BranchesNode final : public Node {
 public:
  BranchesNode(std::vector<Piece> pieces, std::uint32_t num_outputs, bool anomaly)
      : Node("parallel_branches", 0, num_outputs), pieces_(std::move(pieces)), anomaly_(anomaly) {
    // The last branch's edges first: the order in which the engine, running the branches one
    // after another, would have summed gradients into a tensor that several of them read.
    for (const auto& piece : pieces_)
      for (auto e = piece.targets.rbegin(); e != piece.targets.rend(); ++e) add_edge_front(*e);
  }

  Grads apply(const std::vector<Tensor>& output_grads) override {
    const bool create_graph = grad_enabled();
    std::vector<std::vector<Tensor>> reached(pieces_.size());
    parallel_for(static_cast<std::int64_t>(pieces_.size()), 1, [&](std::int64_t begin, std::int64_t end) {
      for (auto b = static_cast<std::size_t>(begin); b < static_cast<std::size_t>(end); ++b) {
        const Piece& piece = pieces_[b];
        std::vector<Tensor> roots, seeds;
        for (std::size_t i = 0; i < piece.roots.size(); ++i)
          if (output_grads[piece.outputs[i]].defined()) {
            roots.push_back(piece.roots[i]);
            seeds.push_back(output_grads[piece.outputs[i]]);
          }
        if (roots.empty()) continue;
        AnomalyModeGuard anomaly_mode(anomaly_);  // the branch's ops checked one by one, as in its forward
        // The branch's graph is kept (retain_graph) until this node is released: a tensor of the
        // branch kept elsewhere may still lead the outer backward into it.
        reached[b] = detail::grad_to_boundary(roots, piece.targets, seeds, create_graph, true);
        detail::close_fused_node();  // a create_graph backward's ops on a worker: no later op joins them
      }
    });
    Grads grads;
    grads.reserve(next().size());
    for (std::size_t b = pieces_.size(); b-- > 0;) {
      if (reached[b].empty()) reached[b].resize(pieces_[b].targets.size());
      grads.insert(grads.end(), std::make_move_iterator(reached[b].begin()), std::make_move_iterator(reached[b].end()));
    }
    return grads;
  }

  void release() override {
    pieces_.clear();  // the branches' graphs
    Node::release();
  }

 private:
  std::vector<Piece> pieces_;
  bool anomaly_;  // anomaly mode was on when the branches ran
};

}  // namespace

std::vector<std::vector<Tensor>> parallel_branches(const std::vector<Branch>& branches, bool concurrent_forward) {
  for (std::size_t b = 0; b < branches.size(); ++b)
    if (!branches[b]) fail("parallel_branches: branch {} is empty", b);
  std::vector<std::vector<Tensor>> outputs(branches.size());
  // Each branch's graph is the nodes numbered from `start` on that its outputs reach.
  const std::uint64_t start = detail::next_sequence_nr();
  const bool grad = grad_enabled(), anomaly = anomaly_enabled(), fusion = fusion_enabled();
  Generator& rng = default_generator();
  auto run = [&](std::size_t b) {
    GradModeGuard grad_mode(grad);  // a worker's modes are its own: give it the caller's
    AnomalyModeGuard anomaly_mode(anomaly);
    FusionGuard fusion_mode(fusion);
    DefaultGeneratorScope same_generator(rng);
    detail::close_fused_node();  // no op of the branch joins an elementwise chain begun before it on this thread
    outputs[b] = branches[b]();
    detail::close_fused_node();  // nor does an op after it join one begun inside
  };
  // An observer (checkpoint's forward) watches this thread only.
  const auto n = static_cast<std::int64_t>(branches.size());
  const std::int64_t grain = concurrent_forward && !detail::observing_inputs() ? 1 : n;
  parallel_for(n, grain, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t b = begin; b < end; ++b) run(static_cast<std::size_t>(b));
  });
  if (!grad) return outputs;

  // The node's outputs: every branch output that requires grad, as a handle of its own.
  std::vector<Piece> pieces(branches.size());
  std::vector<Tensor> recorded;
  for (std::size_t b = 0; b < branches.size(); ++b)
    for (std::size_t i = 0; i < outputs[b].size(); ++i) {
      Tensor& out = outputs[b][i];
      if (!out.defined()) fail("parallel_branches: output {} of branch {} is undefined", i, b);
      if (!out.requires_grad()) continue;
      pieces[b].roots.push_back(out);
      pieces[b].outputs.push_back(recorded.size());
      recorded.push_back(out.detach());
    }
  if (recorded.empty()) return outputs;
  for (auto& piece : pieces) find_boundary(piece, start);
  auto node = std::make_shared<BranchesNode>(std::move(pieces), static_cast<std::uint32_t>(recorded.size()), anomaly);
  connect(*node, {}, std::span<Tensor>(recorded), false);
  std::size_t k = 0;
  for (auto& branch : outputs)
    for (auto& out : branch)
      if (out.requires_grad()) out = recorded[k++];
  return outputs;
}

}  // namespace xgrad::autograd
