#include "xgrad/nn/dilated.hpp"

#include <fmt/ranges.h>

#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace {

/// [B, T', ...] <-> [B * d, T' / d, ...], either way: the time axis is split into blocks of d and
/// the block axis swapped with the step-in-block axis; row b * d + j holds steps j, j + d, ... of b.
Tensor to_chains(const Tensor& x, std::int64_t d) {
  const Shape& s = x.shape();
  Shape blocks{s[0], s[1] / d, d}, chains{s[0] * d, s[1] / d};
  blocks.insert(blocks.end(), s.begin() + 2, s.end());
  chains.insert(chains.end(), s.begin() + 2, s.end());
  return reshape(transpose(reshape(x, blocks), 1, 2), chains);
}

Tensor from_chains(const Tensor& x, std::int64_t d) {
  const Shape& s = x.shape();
  Shape chains{s[0] / d, d, s[1]}, steps{s[0] / d, s[1] * d};
  chains.insert(chains.end(), s.begin() + 2, s.end());
  steps.insert(steps.end(), s.begin() + 2, s.end());
  return reshape(transpose(reshape(x, chains), 1, 2), steps);
}

/// x [B, T, ...] with `pad` zero steps before it (pre padding) or after it (post).
Tensor pad_steps(const Tensor& x, std::int64_t pad, PadSide side) {
  return pad == 0 ? x : xgrad::pad(x, 1, side == PadSide::pre ? pad : 0, side == PadSide::pre ? 0 : pad);
}

/// [B, ...] -> [B * d, ...]: every chain of an example starts from the example's tensor.
Tensor repeat_rows(const Tensor& x, std::int64_t d) {
  Shape expanded = x.shape(), rows = x.shape();
  expanded.insert(expanded.begin() + 1, d);
  rows[0] *= d;
  return reshape(expand(unsqueeze(x, 1), expanded), rows);
}

/// [B, T', ...] -> the T steps [B, ...] left after dropping the padding.
std::vector<Tensor> unstacked(const Tensor& all, std::int64_t T, std::int64_t pad, PadSide side) {
  const std::int64_t begin = side == PadSide::pre ? pad : 0;
  return unbind(slice(all, 1, begin, begin + T), 1);
}

}  // namespace

Unrolled dilated_unroll(Cell& cell, const Tensor& x, const State& initial, std::int64_t d, const UnrollOptions& options) {
  if (d < 1) fail("{}: a dilation must be at least 1, got {}", cell.type_name(), d);
  if (d == 1 || x.dim() != 3 || x.size(1) == 0) return unroll(cell, x, initial, options);  // unroll() checks the shapes
  const std::int64_t B = x.size(0), T = x.size(1), steps = (T + d - 1) / d, padded = steps * d, pad = padded - T;
  const PadSide side = options.padding;
  // lengths of the d chains of each example, and the chain whose state is the sequence's final one
  std::vector<std::int64_t> n(B, T);
  if (options.lengths.defined()) {
    if (options.lengths.dtype() != i64 || options.lengths.shape() != Shape{B})
      fail("{}: lengths must be i64 [{}], got {} {}", cell.type_name(), B, dtype_name(options.lengths.dtype()),
           options.lengths.shape());
    n = options.lengths.to_vector<std::int64_t>();
  }
  xt::xarray<std::int64_t> chain_lengths(std::vector<std::size_t>{static_cast<std::size_t>(B * d)});
  xt::xarray<std::int64_t> last_chain(std::vector<std::size_t>{static_cast<std::size_t>(B)});
  for (std::int64_t b = 0; b < B; ++b) {
    if (n[b] < 0 || n[b] > T)
      fail("{}: a length of {} is outside [0, {}] for sequences of {} steps", cell.type_name(), n[b], T, T);
    // the valid padded positions: [0, n) after post padding, [padded - n, padded) after pre padding
    const std::int64_t first = side == PadSide::pre ? padded - n[b] : 0, end = side == PadSide::pre ? padded : n[b];
    for (std::int64_t j = 0; j < d; ++j) {
      auto count_below = [&](std::int64_t limit) { return limit > j ? (limit - j + d - 1) / d : 0; };  // j + k d < limit
      chain_lengths(b * d + j) = count_below(end) - count_below(first);
    }
    const std::int64_t final_position = n[b] == 0 ? 0 : options.reverse ? first : end - 1;
    last_chain(b) = b * d + final_position % d;
  }

  UnrollOptions chained;
  chained.reverse = options.reverse;
  chained.padding = side;
  if (options.lengths.defined() || pad > 0) chained.lengths = from_xarray(chain_lengths);
  if (!options.below.empty()) {
    if (static_cast<std::int64_t>(options.below.size()) != T)
      fail("{}: {} states of the layer beneath for {} steps", cell.type_name(), options.below.size(), T);
    std::vector<std::vector<Tensor>> parts(options.below.front().size());
    for (const State& s : options.below)
      for (std::size_t i = 0; i < s.size() && i < parts.size(); ++i) parts[i].push_back(s[i]);
    std::vector<std::vector<Tensor>> per_step;
    for (const auto& part : parts) per_step.push_back(unbind(to_chains(pad_steps(stack(part, 1), pad, side), d), 1));
    chained.below.resize(steps);
    for (std::int64_t k = 0; k < steps; ++k)
      for (const auto& component : per_step) chained.below[k].push_back(component[k]);
  }
  State start;
  for (const auto& s : initial) start.push_back(s.defined() ? repeat_rows(s, d) : s);
  const Tensor mask = cell.recurrent_mask();  // one mask per example, shared by its chains
  if (mask.defined()) cell.set_recurrent_mask(repeat_rows(mask, d));
  Unrolled chains;
  try {
    chains = unroll(cell, to_chains(pad_steps(x, pad, side), d), start, chained);
  } catch (...) {
    cell.set_recurrent_mask(mask);
    throw;
  }
  cell.set_recurrent_mask(mask);

  Unrolled out;
  out.outputs = unstacked(from_chains(stack(chains.outputs, 1), d), T, pad, side);
  std::vector<std::vector<Tensor>> components(chains.final_state.size());
  for (const State& s : chains.states)
    for (std::size_t i = 0; i < s.size(); ++i) components[i].push_back(s[i]);
  out.states.resize(T);
  for (const auto& component : components) {
    std::vector<Tensor> per_step = unstacked(from_chains(stack(component, 1), d), T, pad, side);
    for (std::int64_t t = 0; t < T; ++t) out.states[t].push_back(per_step[t]);
  }
  const Tensor pick = from_xarray(last_chain);
  for (const auto& s : chains.final_state) out.final_state.push_back(index_select(s, 0, pick));
  return out;
}

namespace {

std::vector<std::int64_t> dilations_for(std::vector<std::int64_t> dilations, const RecurrentOptions& options) {
  if (dilations.empty())
    for (std::int64_t l = 0; l < options.num_layers; ++l) dilations.push_back(std::int64_t{1} << std::min<std::int64_t>(l, 62));
  if (options.num_layers != 1 && options.num_layers != static_cast<std::int64_t>(dilations.size()))
    fail("DilatedRNN: {} dilations for num_layers {}", dilations.size(), options.num_layers);
  for (auto d : dilations)
    if (d < 1) fail("DilatedRNN: dilations must be at least 1, got [{}]", fmt::join(dilations, ", "));
  return dilations;
}

RecurrentOptions with_layers(RecurrentOptions options, std::size_t layers) {
  options.num_layers = static_cast<std::int64_t>(layers);
  return options;
}

}  // namespace

DilatedRNN::DilatedRNN(const CellFactory& make_cell, std::int64_t input_size, std::vector<std::int64_t> dilations,
                       RecurrentOptions options)
    : Recurrent(make_cell, input_size, with_layers(options, dilations_for(dilations, options).size())),
      dilations_(dilations_for(std::move(dilations), options)) {
  type_name_ = "DilatedRNN";
}

Unrolled DilatedRNN::unroll_layer(std::int64_t layer, Cell& cell, const Tensor& x, const State& initial,
                                  const UnrollOptions& options) {
  return dilated_unroll(cell, x, initial, dilations_[layer], options);
}

}  // namespace xgrad::nn
