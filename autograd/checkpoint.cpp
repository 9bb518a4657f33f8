#include "xgrad/autograd/checkpoint.hpp"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <unordered_map>

#include "xgrad/autograd/engine_detail.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/core/error.hpp"
#include "xgrad/core/random.hpp"

namespace xgrad::autograd {

namespace {

/// The tensors requiring grad that fn reads from outside, in the order first seen, and how
/// often ops read each (one possible gradient contribution per read).
struct Reads final : detail::InputObserver {
  std::vector<Tensor> tensors;
  std::vector<std::size_t> counts;
  std::unordered_map<const TensorImpl*, std::size_t> index;
  void seen(const Tensor& t) override {
    auto [it, added] = index.emplace(&t.impl(), tensors.size());
    if (added) {
      tensors.push_back(t);
      counts.push_back(0);
    }
    ++counts[it->second];
  }
};

}  // namespace

std::vector<Tensor> checkpoint(const CheckpointFunction& fn, const std::vector<Tensor>& inputs) {
  if (!fn) fail("checkpoint: no function");
  if (!grad_enabled()) return fn(inputs);
  // Forward without a graph, noting what fn reads from outside (inputs, parameters, ...).
  const Generator rng_before = default_generator();
  Reads reads;
  std::vector<Tensor> outputs;
  {
    NoGradGuard no_grad;
    detail::ObserveInputs observe(reads);
    outputs = fn(inputs);
  }
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].defined()) fail("checkpoint: output {} of the function is undefined", i);
    // An output that is a tensor from outside (fn returned it unchanged) is one more read (its
    // gradient passes straight through) and gets a handle of its own: the node must not become
    // that tensor's grad_fn.
    const bool outside = reads.index.count(&outputs[i].impl()) ||
                         std::any_of(inputs.begin(), inputs.end(), [&](const Tensor& x) { return x.is_same(outputs[i]); });
    if (!outside) continue;
    if (outputs[i].requires_grad()) reads.seen(outputs[i]);
    outputs[i] = outputs[i].detach();
  }
  if (reads.tensors.empty()) return outputs;
  // One node input per read: the outer backward then receives each contribution on its own edge.
  std::vector<Tensor> edges;
  for (std::size_t k = 0; k < reads.tensors.size(); ++k) edges.insert(edges.end(), reads.counts[k], reads.tensors[k]);
  std::vector<std::uint32_t> versions;
  for (const auto& t : reads.tensors) versions.push_back(t.version());
  auto backward = [fn, inputs, read = reads.tensors, counts = reads.counts, rng_before, versions,
                   n_edges = edges.size()](const std::vector<Tensor>& output_grads) -> Grads {
    for (std::size_t k = 0; k < read.size(); ++k)
      if (read[k].version() != versions[k])
        fail("checkpoint: a tensor {} {} that the function reads was modified in place after the forward (version "
             "{}, expected {}); running the function again would not give the same values",
             dtype_name(read[k].dtype()), read[k].shape(), read[k].version(), versions[k]);
    // The same forward again, with grad, from the same random state.
    std::vector<Tensor> again;
    {
      Generator rng = rng_before;  // this thread draws what the first run drew; the stream moves on elsewhere
      DefaultGeneratorScope replay(rng);
      GradModeGuard grad_on(true);
      again = fn(inputs);
    }
    if (again.size() != output_grads.size())
      fail("checkpoint: the function returned {} outputs when run again, {} the first time", again.size(),
           output_grads.size());
    std::vector<Tensor> roots, seeds;
    for (std::size_t i = 0; i < again.size(); ++i) {
      if (!output_grads[i].defined() || !again[i].defined() || !again[i].requires_grad()) continue;
      if (again[i].shape() != output_grads[i].shape())
        fail("checkpoint: output {} is {} when run again, {} the first time", i, again[i].shape(),
             output_grads[i].shape());
      roots.push_back(again[i]);
      seeds.push_back(output_grads[i]);
    }
    Grads grads(n_edges);
    if (roots.empty()) return grads;
    std::vector<Edge> targets;
    for (const auto& t : read) targets.push_back(gradient_edge(t));
    std::vector<std::vector<detail::Contribution>> contributions;
    detail::grad_to_boundary(roots, targets, seeds, grad_enabled(), false, &contributions);
    std::size_t first_edge = 0;  // the node's edges: counts[0] to read[0], then counts[1] to read[1], ...
    for (std::size_t k = 0; k < read.size(); ++k) {
      const auto& c = contributions[k];
      if (c.size() > counts[k])
        fail("checkpoint: {} gradients reached a tensor that the function read {} times", c.size(), counts[k]);
      // A weight's product goes on unsummed, to be summed with the others as without checkpointing.
      for (std::size_t j = 0; j < c.size(); ++j)
        grads[first_edge + j] = c[j].grad.defined() ? c[j].grad : detail::weight_gradient(first_edge + j, c[j].a, c[j].b);
      first_edge += counts[k];
    }
    return grads;
  };
  return record_outputs("checkpoint", std::move(outputs), std::span<const Tensor>(edges), std::move(backward));
}

}  // namespace xgrad::autograd
