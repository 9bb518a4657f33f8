#include "nn/check.hpp"

#include "autograd/gradcheck.hpp"
#include "autograd/ops.hpp"
#include "core/random.hpp"
#include "nn/recurrent.hpp"

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

}  // namespace

std::string check_cell(Cell& cell, const CheckOptions& options) {
  const std::string who = cell.type_name();
  cell.to(f64);
  const std::int64_t B = options.batch, T = options.steps, H = cell.hidden_size();
  const std::size_t k = cell.state_count();
  Generator gen(options.seed);
  std::vector<Tensor> data{uniform({B, T, cell.input_size()}, -1, 1, f64, &gen).requires_grad_()};
  for (std::size_t i = 0; i < k; ++i) data.push_back(uniform({B, H}, -1, 1, f64, &gen).requires_grad_());
  UnrollOptions unroll_options;
  if (cell.reads_below())
    for (std::int64_t t = 0; t < T; ++t) {
      State below;
      for (std::size_t i = 0; i < k; ++i) below.push_back(uniform({B, H}, -1, 1, f64, &gen));
      unroll_options.below.push_back(below);
    }

  auto unrolled = [&](const std::vector<Tensor>& in) {
    return unroll(cell, in[0], State(in.begin() + 1, in.begin() + 1 + k), unroll_options);
  };
  Unrolled u = unrolled(data);
  if (u.final_state.size() != k || static_cast<std::int64_t>(u.outputs.size()) != T)
    fail("check {}: {} state tensors and {} outputs, expected {} and {}", who, u.final_state.size(), u.outputs.size(), k, T);
  for (const auto& s : u.final_state)
    if (s.shape() != Shape{B, H}) fail("check {}: a state tensor is {}, expected [{}, {}]", who, s.shape(), B, H);
  for (const auto& y : u.outputs)
    if (y.shape() != Shape{B, H}) fail("check {}: an output is {}, expected [{}, {}]", who, y.shape(), B, H);

  auto run = [&](const std::vector<Tensor>& in) {
    Unrolled r = unrolled(in);
    std::vector<Tensor> parts;
    for (const auto& y : r.outputs) parts.push_back(flatten(y));
    for (const auto& s : r.final_state) parts.push_back(flatten(s));
    return concat(parts, 0);
  };
  check_function(cell, run, data, options);
  return fmt::format("{}: gradcheck{} over {} steps (x [{}, {}, {}], {} state tensors, {} parameters), state shapes, "
                     "determinism and state_dict round trip passed",
                     who, options.second_order ? " and gradgradcheck" : "", T, B, T, cell.input_size(), k,
                     cell.parameters().size());
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
