#include "nn/recurrent.hpp"

#include <algorithm>

#include "autograd/ops.hpp"
#include "nn/dropout.hpp"

namespace xgrad::nn {

namespace {

/// 1 where step t of sequence b is real, 0 where it is padding: [B, T] in `dtype`.
Tensor valid_steps(const Tensor& lengths, std::int64_t batch, std::int64_t steps, PadSide padding, Dtype dtype,
                   const std::string& who) {
  if (lengths.dtype() != i64 || lengths.shape() != Shape{batch})
    fail("{}: lengths must be i64 [{}], got {} {}", who, batch, dtype_name(lengths.dtype()), lengths.shape());
  for (auto n : lengths.to_vector<std::int64_t>())
    if (n < 0 || n > steps) fail("{}: a length of {} is outside [0, {}] for sequences of {} steps", who, n, steps, steps);
  Tensor t = arange(static_cast<double>(steps), i64);  // [T]
  Tensor n = reshape(lengths, {batch, 1});
  Tensor valid = padding == PadSide::post ? lt(t, n) : ge(t, steps - n);
  return valid.to(dtype);
}

/// Keeps the sequence in the order it was processed, for go_backwards.
std::vector<Tensor> reversed(std::vector<Tensor> v) {
  std::reverse(v.begin(), v.end());
  return v;
}

Tensor merge(const Tensor& forward, const Tensor& backward, Merge how) {
  switch (how) {
    case Merge::sum: return forward + backward;
    case Merge::mul: return forward * backward;
    case Merge::ave: return (forward + backward) * 0.5;
    case Merge::concat: break;
  }
  return concat({forward, backward}, -1);
}

/// Clears a cell's recurrent-dropout mask however the run ends.
struct RecurrentMaskScope {
  Cell& cell;
  RecurrentMaskScope(Cell& c, const Tensor& mask) : cell(c) { cell.set_recurrent_mask(mask); }
  ~RecurrentMaskScope() { cell.set_recurrent_mask({}); }
};

}  // namespace

Unrolled unroll(Cell& cell, const Tensor& x, const State& initial, const UnrollOptions& options) {
  const std::string who = cell.type_name();
  if (x.dim() != 3 || x.shape()[2] != cell.input_size())
    fail("{}: expects input [B, T, {}], got {}", who, cell.input_size(), x.shape());
  const std::int64_t B = x.shape()[0], T = x.shape()[1], H = cell.hidden_size();
  if (initial.size() != cell.state_count())
    fail("{}: the initial state has {} tensors, the cell keeps {}", who, initial.size(), cell.state_count());
  for (const auto& s : initial) {
    if (!s.defined()) fail("{}: an initial state tensor is undefined, expected [{}, {}]", who, B, H);
    if (s.shape() != Shape{B, H}) fail("{}: an initial state tensor is {}, expected [{}, {}]", who, s.shape(), B, H);
    if (s.dtype() != x.dtype())
      fail("{}: an initial state tensor is {} {}, expected {} like the input {}", who, dtype_name(s.dtype()), s.shape(),
           dtype_name(x.dtype()), x.shape());
  }
  if (!options.below.empty() && static_cast<std::int64_t>(options.below.size()) != T)
    fail("{}: {} states of the layer beneath for {} steps", who, options.below.size(), T);

  Tensor valid = options.lengths.defined() ? valid_steps(options.lengths, B, T, options.padding, x.dtype(), who) : Tensor();
  // [B, T, G]: one GEMM for the whole sequence, then one view per step
  std::vector<Tensor> inputs = T > 0 ? unbind(cell.project_input(x), 1) : std::vector<Tensor>{};
  Unrolled out;
  out.outputs.resize(T);
  out.states.resize(T);
  State state = initial;
  for (std::int64_t k = 0; k < T; ++k) {
    const std::int64_t t = options.reverse ? T - 1 - k : k;
    const Tensor& x_t = inputs[t];
    State next = options.below.empty() ? cell.step(x_t, state) : cell.step_stacked(x_t, state, options.below[t]);
    if (next.size() != state.size()) fail("{}: step returned {} state tensors, expected {}", who, next.size(), state.size());
    if (valid.defined()) {  // padded steps carry the state unchanged and output zeros
      Tensor m = slice(valid, 1, t, t + 1);  // [B, 1]
      for (std::size_t i = 0; i < next.size(); ++i) next[i] = where(m, next[i], state[i]);
      out.outputs[t] = next[0] * m;
    } else {
      out.outputs[t] = next[0];
    }
    state = std::move(next);
    out.states[t] = state;
  }
  out.final_state = state;
  return out;
}

// --- Recurrent ------------------------------------------------------------------------------------

Recurrent::Recurrent(const CellFactory& make_cell, std::int64_t input_size, RecurrentOptions options)
    : options_(options), input_size_(input_size) {
  if (options.num_layers < 1) fail("Recurrent: num_layers must be at least 1, got {}", options.num_layers);
  for (double p : {options.dropout, options.recurrent_dropout, options.layer_dropout})
    if (!(p >= 0 && p < 1)) fail("Recurrent: dropout probabilities must be in [0, 1), got {}", p);
  std::int64_t in = input_size;
  for (std::int64_t layer = 0; layer < options.num_layers; ++layer) {
    for (std::int64_t direction = 0; direction < directions(); ++direction) {
      auto cell = make_cell(layer, in);
      if (!cell || cell->input_size() != in)
        fail("Recurrent: the cell of layer {} must take {} input features", layer, in);
      const std::string suffix = fmt::format("_l{}{}", layer, direction == 1 ? "_reverse" : "");
      for (const auto& [name, p] : cell->named_parameters()) register_parameter(name + suffix, p);
      cells_.push_back(std::move(cell));
    }
    in = cells_.back()->hidden_size() * directions();
  }
}

RecurrentResult Recurrent::run(const Tensor& x, const Tensor& lengths, const std::vector<State>& initial,
                               PadSide padding) {
  if (x.dim() != 3 || x.shape()[2] != input_size_)
    fail("{}: expects input [B, T, {}], got {}", type_name(), input_size_, x.shape());
  if (x.shape()[1] == 0) fail("{}: input {} has no time steps (a sequence needs at least one)", type_name(), x.shape());
  const auto parameters = cells_.front()->parameters();
  if (!parameters.empty() && x.dtype() != parameters.front().dtype())
    fail("{}: input is {} {}, but the parameters are {}", type_name(), dtype_name(x.dtype()), x.shape(),
         dtype_name(parameters.front().dtype()));
  const std::int64_t B = x.shape()[0], D = directions(), L = options_.num_layers;
  std::vector<State> start = initial;
  if (start.empty() && options_.stateful) start = carried_;
  if (!start.empty() && static_cast<std::int64_t>(start.size()) != L * D)
    fail("{}: {} initial states given, expected one per layer and direction ({})", type_name(), start.size(), L * D);
  const bool training = is_training();

  RecurrentResult result;
  Tensor layer_input = x;
  std::vector<std::vector<State>> below(D);  // the states of the layer beneath, per direction
  std::vector<Tensor> sequences(D), finals(D);
  for (std::int64_t layer = 0; layer < L; ++layer) {
    if (layer > 0 && training) layer_input = dropout(layer_input, options_.layer_dropout, true);
    Tensor input = layer_input;
    if (training && options_.dropout > 0)  // one mask per sequence, shared by every step
      input = input * dropout_mask({B, 1, input.shape()[2]}, options_.dropout, input.dtype());
    for (std::int64_t d = 0; d < D; ++d) {
      Cell& c = *cells_[layer * D + d];
      Tensor mask = training && options_.recurrent_dropout > 0
                        ? dropout_mask({B, c.hidden_size()}, options_.recurrent_dropout, x.dtype())
                        : Tensor();
      RecurrentMaskScope scope(c, mask);
      UnrollOptions unroll_options{(d == 1) != options_.go_backwards, lengths, padding,
                                   c.reads_below() && layer > 0 ? below[d] : std::vector<State>{}};
      Unrolled u = unroll(c, input, start.empty() ? c.initial_state(B, x.dtype()) : start[layer * D + d],
                          unroll_options);
      // go_backwards returns the last layer's outputs in the order they were computed (Keras)
      const bool processing_order = layer == L - 1 && options_.go_backwards && D == 1;
      sequences[d] = stack(processing_order ? reversed(u.outputs) : u.outputs, 1);
      finals[d] = u.final_state[0];
      below[d] = std::move(u.states);
      result.states.push_back(std::move(u.final_state));
    }
    layer_input = D == 2 ? concat({sequences[0], sequences[1]}, -1) : sequences[0];
  }
  const auto& last = options_.return_sequences ? sequences : finals;
  result.output = D == 2 ? merge(last[0], last[1], options_.merge) : last[0];
  if (options_.stateful) {
    carried_.clear();
    for (const auto& s : result.states) {
      State detached;
      for (const auto& t : s) detached.push_back(t.detach());
      carried_.push_back(std::move(detached));
    }
  }
  traced(result.output);
  return result;
}

// --- the familiar layers ---------------------------------------------------------------------------

namespace {
RecurrentOptions from(const RNNOptions& o) {
  RecurrentOptions r;
  r.num_layers = o.num_layers;
  r.bidirectional = o.bidirectional;
  r.layer_dropout = o.dropout;
  return r;
}
}  // namespace

RNN::RNN(std::int64_t input_size, std::int64_t hidden_size, RNNOptions o, Nonlinearity nonlinearity)
    : Recurrent([=](std::int64_t, std::int64_t in) { return std::make_shared<SimpleRNNCell>(in, hidden_size, nonlinearity, o.bias); },
                input_size, from(o)) {
  type_name_ = "RNN";
}

GRU::GRU(std::int64_t input_size, std::int64_t hidden_size, RNNOptions o)
    : Recurrent([=](std::int64_t, std::int64_t in) { return std::make_shared<GRUCell>(in, hidden_size, o.bias); },
                input_size, from(o)) {
  type_name_ = "GRU";
}

LSTM::LSTM(std::int64_t input_size, std::int64_t hidden_size, RNNOptions o)
    : Recurrent([=](std::int64_t, std::int64_t in) { return std::make_shared<LSTMCell>(in, hidden_size, o.bias); },
                input_size, from(o)) {
  type_name_ = "LSTM";
}

DepthGatedLSTM::DepthGatedLSTM(std::int64_t input_size, std::int64_t hidden_size, RecurrentOptions options)
    : Recurrent(
          [=](std::int64_t layer, std::int64_t in) -> std::shared_ptr<Cell> {
            if (layer == 0) return std::make_shared<LSTMCell>(in, hidden_size);
            return std::make_shared<DepthGatedLSTMCell>(in, hidden_size);
          },
          input_size, options) {
  type_name_ = "DepthGatedLSTM";
}

Tensor stack_states(const std::vector<State>& states, std::size_t component) {
  std::vector<Tensor> parts;
  for (const auto& s : states) {
    if (component >= s.size())
      fail("stack_states: component {} of a state of {} tensors (0 = h, 1 = c)", component, s.size());
    parts.push_back(s[component]);
  }
  return stack(parts, 0);
}

}  // namespace xgrad::nn
