#include "xgrad/nn/check.hpp"

#include <algorithm>
#include <cmath>
#include <set>

#include "xgrad/autograd/gradcheck.hpp"
#include "xgrad/autograd/node.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/random.hpp"
#include "xgrad/nn/recurrent.hpp"

namespace xgrad::nn {

namespace {

/// The checks shared by cells and modules. `run(inputs)` evaluates the module on inputs whose
/// first `data_count` entries are data (the rest are the module's parameters, which gradcheck
/// perturbs in place).
void check_function(Module& module, const TensorFunction& run, std::vector<Tensor> data, const CheckOptions& options) {
  const std::string who = module.type_name();
  std::vector<Tensor> inputs = data;
  for (const auto& p : module.parameters())
    if (p.requires_grad()) inputs.push_back(p);
  try {
    gradcheck(run, inputs);
  } catch (const Error& e) {
    fail("check {}: first derivatives: {}", who, e.what());
  }
  if (options.second_order) try {
      gradgradcheck(run, inputs);
    } catch (const Error& e) {
      fail("check {}: second derivatives: {}", who, e.what());
    }
  const Tensor first = run(inputs), again = run(inputs);
  if (first.to_vector<double>() != again.to_vector<double>()) fail("check {}: two runs on the same input differ", who);

  // state_dict round trip: perturb every parameter, load the saved values back, same output
  StateDict saved;
  for (const auto& [name, t] : module.state_dict()) saved.emplace_back(name, t.clone());
  Generator gen(options.seed + 1);
  for (auto& p : module.parameters()) p.copy_(uniform(p.shape(), -1, 1, p.dtype(), &gen));
  if (!module.parameters().empty() && run(inputs).to_vector<double>() == first.to_vector<double>())
    fail("check {}: the output does not depend on the parameters", who);
  module.load_state_dict(saved);
  if (run(inputs).to_vector<double>() != first.to_vector<double>())
    fail("check {}: the output differs after a state_dict round trip", who);
}

/// The leaves of the graph behind `root` that receive gradients (their accumulators).
std::set<const TensorImpl*> graph_leaves(const Tensor& root) {
  std::set<const TensorImpl*> leaves;
  std::set<const autograd::Node*> seen;
  std::vector<const autograd::Node*> todo;
  if (root.grad_fn()) todo.push_back(root.grad_fn().get());
  while (!todo.empty()) {
    const autograd::Node* node = todo.back();
    todo.pop_back();
    if (!seen.insert(node).second) continue;
    if (auto* acc = dynamic_cast<const autograd::AccumulateGrad*>(node)) leaves.insert(acc->leaf().get());
    for (const auto& edge : node->next())
      if (edge) todo.push_back(edge.node.get());
  }
  return leaves;
}

/// Fails unless every tensor that requires grad behind `out` is one of `known`.
void check_registered(const std::string& who, const Tensor& out, const std::vector<Tensor>& known) {
  std::set<const TensorImpl*> registered;
  for (const auto& t : known) registered.insert(&t.impl());
  for (const TensorImpl* leaf : graph_leaves(out))
    if (!registered.count(leaf))
      fail("check {}: the step uses a tensor {} that requires grad but is not registered: register it with "
           "register_parameter, or the module that holds it with register_module",
           who, leaf->shape);
}

std::vector<Tensor> flat_outputs(const Unrolled& r) {
  std::vector<Tensor> parts;
  for (const auto& y : r.outputs) parts.push_back(flatten(y));
  for (const auto& s : r.final_state) parts.push_back(flatten(s));
  return parts;
}

/// Runs f, turning an error into one that names the check.
template <class F>
auto checked(const std::string& who, const char* what, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    fail("check {}: {}: {}", who, what, e.what());
  }
}

}  // namespace

std::string check_cell(Cell& cell, const CheckOptions& options) {
  const std::string who = cell.type_name();
  cell.to(f64);
  const std::int64_t B = options.batch, T = options.steps, H = cell.hidden_size();
  const State zero = cell.initial_state(B, f64);
  const std::size_t k = zero.size();
  Generator gen(options.seed);
  std::vector<Tensor> data{uniform({B, T, cell.input_size()}, -1, 1, f64, &gen).requires_grad_()};
  for (const auto& s : zero) data.push_back(uniform(s.shape(), -1, 1, f64, &gen).requires_grad_());
  UnrollOptions unroll_options;
  if (cell.reads_below())
    for (std::int64_t t = 0; t < T; ++t) {
      State below;
      for (const auto& s : zero) below.push_back(uniform(s.shape(), -1, 1, f64, &gen));
      unroll_options.below.push_back(below);
    }

  auto unrolled = [&](const std::vector<Tensor>& in) {
    return unroll(cell, in[0], State(in.begin() + 1, in.begin() + 1 + k), unroll_options);
  };
  Unrolled u = checked(who, "a float64 run after to(f64) (is every tensor it uses registered?)", [&] { return unrolled(data); });
  if (u.final_state.size() != k || static_cast<std::int64_t>(u.outputs.size()) != T)
    fail("check {}: {} state tensors and {} outputs, expected {} and {}", who, u.final_state.size(), u.outputs.size(), k, T);
  for (std::size_t i = 0; i < k; ++i)
    if (u.final_state[i].shape() != zero[i].shape())
      fail("check {}: a state tensor is {}, expected {}", who, u.final_state[i].shape(), zero[i].shape());
  for (const auto& y : u.outputs)
    if (y.shape() != Shape{B, H}) fail("check {}: an output is {}, expected [{}, {}]", who, y.shape(), B, H);
  std::vector<Tensor> known = data;
  for (const auto& p : cell.parameters()) known.push_back(p);
  check_registered(who, concat(flat_outputs(u), 0), known);

  // The recurrent-dropout mask must reach h: an all-zero mask changes the output, all ones does not.
  const bool was_training = cell.is_training();
  cell.eval();
  auto with_mask = [&](const Tensor& mask) {
    autograd::NoGradGuard no_grad;
    cell.set_recurrent_mask(mask);
    std::vector<double> out;
    try {
      out = concat(flat_outputs(unrolled(data)), 0).to_vector<double>();
    } catch (...) {
      cell.set_recurrent_mask({});
      throw;
    }
    cell.set_recurrent_mask({});
    return out;
  };
  // eval mode is deterministic, whatever the global generator holds
  manual_seed(options.seed + 11);
  const std::vector<double> unmasked = with_mask({});
  manual_seed(options.seed + 12);
  if (with_mask({}) != unmasked) fail("check {}: two runs in eval mode differ (randomness must stop in eval())", who);
  if (T > 1 && with_mask(zeros({B, H}, f64)) == unmasked)
    fail("check {}: the step ignores the recurrent-dropout mask: pass every h that multiplies a recurrent weight "
         "through recurrent(h)",
         who);
  const std::vector<double> all_ones = with_mask(ones({B, H}, f64));
  for (std::size_t i = 0; i < all_ones.size(); ++i)
    if (std::abs(all_ones[i] - unmasked[i]) > 1e-12)
    fail("check {}: an all-ones recurrent-dropout mask changes the output", who);
  cell.train(was_training);

  auto run = [&](const std::vector<Tensor>& in) {
    manual_seed(options.seed + 13);  // a cell that is random in training draws the same numbers each run
    return concat(flat_outputs(unrolled(in)), 0);
  };
  check_function(cell, run, data, options);
  return fmt::format("{}: gradcheck{} over {} steps (x [{}, {}, {}], {} state tensors, {} parameters), state shapes, "
                     "registration, recurrent-dropout mask, eval determinism and state_dict round trip passed",
                     who, options.second_order ? " and gradgradcheck" : "", T, B, T, cell.input_size(), k,
                     cell.parameters().size());
}

std::string check_cell(const CellFactory& make_cell, const CheckOptions& options) {
  std::shared_ptr<Cell> probe = make_cell(0, 3);
  if (!probe) fail("check_cell: the factory returned no cell");
  const std::string who = probe->type_name();
  const std::string single = check_cell(*probe, options);

  const std::int64_t B = std::max<std::int64_t>(options.batch, 2), T = std::max<std::int64_t>(options.steps, 3);
  Recurrent layer(make_cell, 3,
                  {.num_layers = 2, .bidirectional = true, .input_dropout = 0.25, .recurrent_dropout = 0.3});
  const std::string in_layer = fmt::format("{} in a 2-layer bidirectional Recurrent", who);
  layer.to(f64);
  // everything a cell registers is reachable from the layer, and was converted with it
  std::set<const TensorImpl*> reachable;
  for (const auto& [name, t] : layer.named_parameters()) reachable.insert(&t.impl());
  for (const auto& [name, t] : layer.named_buffers()) reachable.insert(&t.impl());
  for (std::int64_t l = 0; l < 2; ++l)
    for (std::int64_t d = 0; d < 2; ++d) {
      Cell& c = layer.cell(l, d);
      for (const auto& list : {c.named_parameters(), c.named_buffers()})
        for (const auto& [name, t] : list) {
          if (!reachable.count(&t.impl()))
            fail("check {}: the cell's '{}' (layer {}, direction {}) is not reachable from the layer", in_layer, name, l, d);
          if (is_floating(t.dtype()) && t.dtype() != f64)
            fail("check {}: the cell's '{}' is {} after the layer's to(f64)", in_layer, name, dtype_name(t.dtype()));
        }
      for (const auto& [name, m] : c.named_modules())
        if (m->is_training() != layer.is_training())
          fail("check {}: the cell's submodule '{}' did not follow the layer's train/eval", in_layer, name);
    }

  Generator gen(options.seed + 3);
  const Tensor x = uniform({B, T, 3}, -1, 1, f64, &gen).requires_grad_();
  xt::xarray<std::int64_t> n(std::vector<std::size_t>{static_cast<std::size_t>(B)}, T);
  n(1) = T - 1;  // one shorter sequence: padded steps are masked
  const Tensor lengths = from_xarray(n);
  auto output = [&](const Tensor& input) {
    RecurrentResult r = layer.run(input, lengths);
    std::vector<Tensor> parts{flatten(r.output)};
    for (const auto& s : r.states)
      for (const auto& t : s) parts.push_back(flatten(t));
    return concat(parts, 0);
  };
  // eval: deterministic and untouched by the dropout options
  layer.eval();
  for (const auto& [name, m] : layer.named_modules())
    if (m->is_training()) fail("check {}: '{}' is still training after the layer's eval()", in_layer, name);
  manual_seed(options.seed + 21);
  const Tensor eval_a = checked(in_layer, "eval run", [&] { return output(x); });
  manual_seed(options.seed + 22);
  if (output(x).to_vector<double>() != eval_a.to_vector<double>())
    fail("check {}: two runs in eval mode differ (randomness must stop in eval())", in_layer);
  // train: seeded masks reproduce, change the output, and differentiate correctly
  layer.train();
  auto seeded = [&](std::uint64_t seed) {
    manual_seed(seed);
    return output(x).to_vector<double>();
  };
  const std::vector<double> train_a = seeded(options.seed + 31);
  if (seeded(options.seed + 31) != train_a) fail("check {}: two seeded runs in training mode differ", in_layer);
  if (seeded(options.seed + 32) == train_a)
    fail("check {}: the dropout masks do not change the output in training mode", in_layer);
  std::vector<Tensor> inputs{x};
  for (const auto& p : layer.parameters())
    if (p.requires_grad()) inputs.push_back(p);
  checked(in_layer, "first derivatives in training mode (seeded masks, lengths)", [&] {
    gradcheck(
        [&](const std::vector<Tensor>& in) {
          manual_seed(options.seed + 31);
          return output(in[0]);
        },
        inputs);
    return 0;
  });
  // state_dict round trip through the layer
  layer.eval();
  StateDict saved;
  for (const auto& [name, t] : layer.state_dict()) saved.emplace_back(name, t.clone());
  Generator perturb(options.seed + 4);
  for (auto& p : layer.parameters()) p.copy_(uniform(p.shape(), -1, 1, p.dtype(), &perturb));
  layer.load_state_dict(saved);
  if (output(x).to_vector<double>() != eval_a.to_vector<double>())
    fail("check {}: the output differs after a state_dict round trip", in_layer);
  return fmt::format("{};\nin a 2-layer bidirectional layer with lengths and dropout: reachability, to(f64), train/eval, "
                     "eval determinism, seeded training gradcheck and state_dict round trip passed",
                     single);
}

std::string check_module(UnaryModule& module, const Shape& input_shape, const CheckOptions& options) {
  module.to(f64);
  Generator gen(options.seed);
  std::vector<Tensor> data{uniform(input_shape, -1, 1, f64, &gen).requires_grad_()};
  auto run = [&](const std::vector<Tensor>& in) { return flatten(module.forward(in[0])); };
  check_function(module, run, data, options);
  return fmt::format("{}: gradcheck{} (input {}, {} parameters), determinism and state_dict round trip passed",
                     module.type_name(), options.second_order ? " and gradgradcheck" : "", input_shape,
                     module.parameters().size());
}

}  // namespace xgrad::nn
