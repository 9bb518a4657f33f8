#include "xgrad/nn/recurrent.hpp"

#include <algorithm>
#include <set>

#include "xgrad/autograd/branches.hpp"
#include "xgrad/autograd/checkpoint.hpp"
#include "xgrad/autograd/ops.hpp"
#include "xgrad/core/transposed.hpp"
#include "xgrad/nn/dropout.hpp"

namespace xgrad::nn {

namespace {

/// Steps per GEMM of the input projection in unroll (32 steps of a batch of 32: 1024 rows).
constexpr std::int64_t kProjectionChunk = 32;

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

/// [B, 1, ..., 1] of x's rank: a per-example mask that broadcasts over a state tensor x [B, ...].
Shape broadcastable_mask(const Tensor& x) {
  Shape shape(x.dim(), 1);
  shape[0] = x.size(0);
  return shape;
}

/// One dropout probability from a framework's alias and xgrad's own name (set one of the two).
double one_of(double alias, double own, const char* alias_name, const char* own_name) {
  if (alias != 0 && own != 0 && alias != own)
    fail("Recurrent: {} (another name of {}) and {} are both set, to {} and {}: set one", alias_name, own_name,
         own_name, alias, own);
  return own != 0 ? own : alias;
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

/// What a layer's run in one direction leaves: its output sequence (when kept), its final state,
/// and every step's state (when the layer above reads them).
struct DirectionRun {
  Tensor sequence;
  State final_state;
  std::vector<State> states;
  /// As a branch's outputs: the sequence (when kept), the final state, each step's state.
  std::vector<Tensor> flatten() const {
    std::vector<Tensor> out;
    if (sequence.defined()) out.push_back(sequence);
    out.insert(out.end(), final_state.begin(), final_state.end());
    for (const auto& s : states) out.insert(out.end(), s.begin(), s.end());
    return out;
  }
  /// The same parts taken from `flat` (the same tensors, recorded by the branches' node).
  DirectionRun unflatten(const std::vector<Tensor>& flat) const {
    auto at = flat.begin();
    auto take = [&](std::size_t n) {
      State part(at, at + static_cast<std::ptrdiff_t>(n));
      at += static_cast<std::ptrdiff_t>(n);
      return part;
    };
    DirectionRun run;
    if (sequence.defined()) run.sequence = *at++;
    run.final_state = take(final_state.size());
    for (const auto& s : states) run.states.push_back(take(s.size()));
    return run;
  }
};

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
  const std::int64_t B = x.shape()[0], T = x.shape()[1];
  const std::vector<Shape> shapes = cell.state_shapes();
  if (initial.size() != shapes.size())
    fail("{}: the initial state has {} tensors, the cell keeps {}", who, initial.size(), shapes.size());
  for (std::size_t i = 0; i < initial.size(); ++i) {
    const Tensor& s = initial[i];
    const Shape want = batched(B, shapes[i]);
    if (!s.defined()) fail("{}: an initial state tensor is undefined, expected {}", who, want);
    if (s.shape() != want) fail("{}: an initial state tensor is {}, expected {}", who, s.shape(), want);
    if (s.dtype() != x.dtype())
      fail("{}: an initial state tensor is {} {}, expected {} like the input {}", who, dtype_name(s.dtype()), s.shape(),
           dtype_name(x.dtype()), x.shape());
  }
  if (!options.below.empty() && static_cast<std::int64_t>(options.below.size()) != T)
    fail("{}: {} states of the layer beneath for {} steps", who, options.below.size(), T);

  Tensor valid = options.lengths.defined() ? valid_steps(options.lengths, B, T, options.padding, x.dtype(), who) : Tensor();
  // Padded steps are inert: their input is replaced (not multiplied) by 0 before it meets a weight, so
  // NaN or Inf there reaches no gradient (0 * NaN would).
  const Tensor input = valid.defined() ? where(unsqueeze(valid, 2), x, scalar(0, x.dtype())) : x;
  // The input projection (the part of a step that reads the input alone) runs in chunks of
  // kProjectionChunk steps in the order they run, one GEMM each, not step by step. The chunks are
  // the same with and without checkpointing, so both sum the projection weights' gradients in one
  // order (bit-identical), and a checkpointed piece holds only its own chunks' [k, B, G].
  // Steps first: a chunk is then a contiguous range of the input, and each step's projected input
  // [B, G] a contiguous range of its chunk's projection (views, no copies; backward joins whole
  // runs), where batch first would copy every step's B rows out and back.
  const std::int64_t chunks = ceil_div(T, kProjectionChunk);
  std::vector<Tensor> x_chunks;  // input [steps of chunk c, B, I], c in the order the steps run
  if (T > 0) {
    std::vector<std::int64_t> sizes(static_cast<std::size_t>(chunks), kProjectionChunk);
    sizes.back() = T - (chunks - 1) * kProjectionChunk;
    if (options.reverse) std::reverse(sizes.begin(), sizes.end());  // the last chunk to run is the first in time
    x_chunks = split(permute(input, {1, 0, 2}), sizes, 0);
    if (options.reverse) std::reverse(x_chunks.begin(), x_chunks.end());
  }
  const std::shared_ptr<Cell> cell_ptr(std::shared_ptr<Cell>{}, &cell);  // non-owning, for the closures below
  // A chunk's projected inputs [B, G], one per step in the order they run.
  auto project = [cell_ptr, reverse = options.reverse](const Tensor& x_chunk) {
    std::vector<Tensor> g = unbind(cell_ptr->project_input(x_chunk), 0);
    if (reverse) std::reverse(g.begin(), g.end());
    return g;
  };
  // One step: the cell's next state, and the output (0 at padded steps, where the state is kept).
  auto advance = [cell_ptr, valid, who, dtype = x.dtype()](std::int64_t t, const Tensor& x_t, const State& state,
                                                          const State* below) -> std::pair<State, Tensor> {
    Cell& c = *cell_ptr;
    State next = below ? c.step_stacked(x_t, state, *below) : c.step(x_t, state);
    if (next.size() != state.size()) fail("{}: step returned {} state tensors, expected {}", who, next.size(), state.size());
    if (!valid.defined()) return {next, next[0]};
    Tensor m = slice(valid, 1, t, t + 1);  // [B, 1]: padded steps carry the state unchanged and output zeros
    for (std::size_t i = 0; i < next.size(); ++i)
      next[i] = where(next[i].dim() == 2 ? m : reshape(m, broadcastable_mask(next[i])), next[i], state[i]);
    Tensor output = where(m, next[0], scalar(0, dtype));
    return {next, output};
  };
  std::vector<std::int64_t> order(static_cast<std::size_t>(T));  // step k runs time order[k]
  for (std::int64_t k = 0; k < T; ++k) order[k] = options.reverse ? T - 1 - k : k;
  const bool stacked = !options.below.empty();

  // The weights a step multiplies by (h W_hh^T) are transposed once for all steps, not per step.
  detail::TransposedCopies transposed_weights;
  Unrolled out;
  if (options.keep_outputs) out.outputs.resize(T);
  if (options.keep_states) out.states.resize(T);
  State state = initial;
  if (options.checkpoint_every <= 0) {
    std::vector<Tensor> projected;
    for (std::int64_t k = 0; k < T; ++k) {
      if (k % kProjectionChunk == 0) projected = project(x_chunks[k / kProjectionChunk]);
      const std::int64_t t = order[k];
      auto [next, output] = advance(t, projected[k % kProjectionChunk], state, stacked ? &options.below[t] : nullptr);
      if (options.keep_outputs) out.outputs[t] = std::move(output);
      state = std::move(next);
      if (options.keep_states) out.states[t] = state;
    }
    out.final_state = state;
    return out;
  }
  // Checkpointed: each piece of k steps is recomputed in backward. A piece projects the chunks that
  // start in it; the projected inputs of a chunk's steps past the piece's end leave it as outputs
  // ("carried") and enter the next piece as inputs.
  const std::int64_t every = options.checkpoint_every;
  const std::size_t S = state.size(), S_below = stacked ? options.below.front().size() : 0;
  const Tensor mask = cell.recurrent_mask();  // set again when backward runs the steps again
  const bool keep_states = options.keep_states;
  const bool own_output = options.keep_outputs && (valid.defined() || !keep_states);  // else it is h
  std::vector<Tensor> carried;
  for (std::int64_t begin = 0; begin < T; begin += every) {
    const std::int64_t end = std::min(T, begin + every);
    const std::vector<std::int64_t> steps(order.begin() + begin, order.begin() + end);
    const std::int64_t first_chunk = ceil_div(begin, kProjectionChunk);
    const std::int64_t last_chunk = ceil_div(end, kProjectionChunk);  // exclusive
    // In: the state, the carried projected inputs, the input chunks to project, then the state
    // beneath each step. Out: per step its state (keep_states) and its output (keep_outputs,
    // unless it is the state's h); the last state when the steps' are not kept; the carried inputs.
    std::vector<Tensor> in(state.begin(), state.end());
    in.insert(in.end(), carried.begin(), carried.end());
    in.insert(in.end(), x_chunks.begin() + first_chunk, x_chunks.begin() + last_chunk);
    if (stacked)
      for (std::int64_t t : steps) in.insert(in.end(), options.below[t].begin(), options.below[t].end());
    auto run_steps = [advance, project, steps, S, S_below, stacked, cell_ptr, mask, keep_states, own_output,
                      n_carried = carried.size(),
                      n_chunks = static_cast<std::size_t>(last_chunk - first_chunk)](const std::vector<Tensor>& in) {
      detail::TransposedCopies transposed_weights;  // (also when backward runs the steps again)
      const Tensor previous_mask = cell_ptr->recurrent_mask();
      cell_ptr->set_recurrent_mask(mask);
      State st(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(S));
      std::vector<Tensor> projected(in.begin() + static_cast<std::ptrdiff_t>(S),
                                    in.begin() + static_cast<std::ptrdiff_t>(S + n_carried));
      for (std::size_t c = 0; c < n_chunks; ++c) {
        std::vector<Tensor> g = project(in[S + n_carried + c]);
        projected.insert(projected.end(), g.begin(), g.end());
      }
      std::size_t below_at = S + n_carried + n_chunks;
      std::vector<Tensor> result;
      for (std::size_t j = 0; j < steps.size(); ++j) {
        const State below(in.begin() + static_cast<std::ptrdiff_t>(below_at),
                          in.begin() + static_cast<std::ptrdiff_t>(below_at + S_below));
        below_at += S_below;
        auto [next, output] = advance(steps[j], projected[j], st, stacked ? &below : nullptr);
        if (keep_states) result.insert(result.end(), next.begin(), next.end());
        if (own_output) result.push_back(output);
        st = std::move(next);
      }
      if (!keep_states) result.insert(result.end(), st.begin(), st.end());
      result.insert(result.end(), projected.begin() + static_cast<std::ptrdiff_t>(steps.size()), projected.end());
      cell_ptr->set_recurrent_mask(previous_mask);
      return result;
    };
    const std::vector<Tensor> result = autograd::checkpoint(run_steps, in);
    auto at = result.begin();
    for (std::int64_t t : steps) {
      if (keep_states) {
        state.assign(at, at + static_cast<std::ptrdiff_t>(S));
        at += static_cast<std::ptrdiff_t>(S);
        out.states[t] = state;
      }
      if (own_output) out.outputs[t] = *at++;
      else if (options.keep_outputs) out.outputs[t] = state[0];
    }
    if (!keep_states) {
      state.assign(at, at + static_cast<std::ptrdiff_t>(S));
      at += static_cast<std::ptrdiff_t>(S);
    }
    carried.assign(at, result.end());
  }
  out.final_state = state;
  return out;
}

// --- Recurrent ------------------------------------------------------------------------------------

Recurrent::Recurrent(const CellFactory& make_cell, std::int64_t input_size, RecurrentOptions options)
    : options_(options), input_size_(input_size) {
  if (options.num_layers < 1) fail("Recurrent: num_layers must be at least 1, got {}", options.num_layers);
  if (options.checkpoint_every < 0)
    fail("Recurrent: checkpoint_every must be 0 (off) or a number of steps, got {}", options.checkpoint_every);
  options_.input_dropout = one_of(options.dropout, options.input_dropout, "dropout", "input_dropout");
  options_.dropout = 0;
  for (double p : {options_.input_dropout, options.recurrent_dropout, options.layer_dropout})
    if (!(p >= 0 && p <= 1)) fail("Recurrent: dropout probabilities must be in [0, 1], got {}", p);
  std::int64_t in = input_size;
  for (std::int64_t layer = 0; layer < options.num_layers; ++layer) {
    for (std::int64_t direction = 0; direction < directions(); ++direction) {
      auto cell = make_cell(layer, in);
      if (!cell || cell->input_size() != in)
        fail("Recurrent: the cell of layer {} must take {} input features", layer, in);
      cells_.push_back(register_module(fmt::format("cell_l{}{}", layer, direction == 1 ? "_reverse" : ""), cell));
    }
    in = cells_.back()->hidden_size() * directions();
  }
  std::set<std::string> names;  // the flat names must stay apart (a cell's "w_l1" beside "w")
  for (const auto& [name, t] : state_dict())
    if (!names.insert(name).second) fail("Recurrent: two tensors of its cells are both named '{}'", name);
}

std::string Recurrent::tensor_name(const std::string& child, const std::string& path) const {
  if (child.rfind("cell_l", 0) == 0) return path + child.substr(4);  // "cell_l0_reverse" -> "_l0_reverse"
  return Module::tensor_name(child, path);
}

Unrolled Recurrent::unroll_layer(std::int64_t, Cell& cell, const Tensor& x, const State& initial,
                                 const UnrollOptions& options) {
  return unroll(cell, x, initial, options);
}

RecurrentResult Recurrent::run(const Tensor& x, const Tensor& lengths, const std::vector<State>& initial,
                               PadSide padding) {
  if (x.dim() != 3 || x.shape()[2] != input_size_)
    fail("{}: expects input [B, T, {}], got {}", type_name(), input_size_, x.shape());
  if (x.shape()[1] == 0) fail("{}: input {} has no time steps (a sequence needs at least one)", type_name(), x.shape());
  const auto params = cells_.front()->parameters();
  if (!params.empty() && x.dtype() != params.front().dtype())
    fail("{}: input is {} {}, but the parameters are {}", type_name(), dtype_name(x.dtype()), x.shape(),
         dtype_name(params.front().dtype()));
  const std::int64_t B = x.shape()[0], D = directions(), L = options_.num_layers;
  std::vector<State> start = initial;
  if (start.empty() && options_.stateful) {
    start = carried_;
    if (!start.empty() && start.front().front().size(0) != B)
      fail("{}: this stateful layer carries the state of a batch of {} from its last call, got a batch of {}; "
           "call reset_states() before sequences of another batch",
           type_name(), start.front().front().size(0), B);
  }
  if (!start.empty() && static_cast<std::int64_t>(start.size()) != L * D)
    fail("{}: {} initial states given, expected one per layer and direction ({})", type_name(), start.size(), L * D);
  const bool training = is_training();

  RecurrentResult result;
  result.directions = D;
  Tensor layer_input = x;
  std::vector<std::vector<State>> below(D);  // the states of the layer beneath, per direction
  std::vector<Tensor> sequences(D), finals(D);
  for (std::int64_t layer = 0; layer < L; ++layer) {
    if (layer > 0 && training) layer_input = dropout(layer_input, options_.layer_dropout, true);
    Tensor input = layer_input;
    if (training && options_.input_dropout > 0)  // one mask per sequence, shared by every step
      input = input * dropout_mask({B, 1, input.shape()[2]}, options_.input_dropout, input.dtype());
    std::vector<Tensor> masks(D);  // drawn here, in order: the directions may run side by side
    for (std::int64_t d = 0; d < D; ++d)
      if (training && options_.recurrent_dropout > 0)
        masks[d] = dropout_mask({B, cells_[layer * D + d]->hidden_size()}, options_.recurrent_dropout, x.dtype());
    auto run_direction = [&](std::int64_t d) {
      Cell& c = *cells_[layer * D + d];
      RecurrentMaskScope scope(c, masks[d]);
      // the states of every step live on only for a next layer that reads them, and the last
      // layer's outputs only when the sequence is returned
      const bool read_above = layer + 1 < L && cells_[(layer + 1) * D + d]->reads_below();
      UnrollOptions unroll_options{(d == 1) != options_.go_backwards,
                                   lengths,
                                   padding,
                                   c.reads_below() && layer > 0 ? below[d] : std::vector<State>{},
                                   options_.checkpoint_every,
                                   layer < L - 1 || options_.return_sequences,
                                   read_above};
      Unrolled u = unroll_layer(layer, c, input, start.empty() ? c.initial_state(B, x.dtype()) : start[layer * D + d],
                                unroll_options);
      // go_backwards returns the last layer's outputs in the order they were computed (Keras)
      const bool processing_order = layer == L - 1 && options_.go_backwards && D == 1;
      DirectionRun run{Tensor(), std::move(u.final_state), std::move(u.states)};
      if (unroll_options.keep_outputs) run.sequence = stack(processing_order ? reversed(u.outputs) : u.outputs, 1);
      return run;
    };
    std::vector<DirectionRun> runs;
    if (D == 1) {
      runs.push_back(run_direction(0));
    } else {  // two chains of small ops: a core each (autograd/branches.hpp)
      const bool side_by_side = cells_[layer * D]->thread_safe() && cells_[layer * D + 1]->thread_safe() && !tracing();
      std::vector<DirectionRun> shapes(D);  // each branch notes what it flattened
      auto branch = [&](std::int64_t d) {
        return [&, d] {
          DirectionRun run = run_direction(d);
          shapes[d] = run;
          return run.flatten();
        };
      };
      const auto outputs = autograd::parallel_branches({branch(0), branch(1)}, side_by_side);
      for (std::int64_t d = 0; d < D; ++d) runs.push_back(shapes[d].unflatten(outputs[d]));
    }
    for (std::int64_t d = 0; d < D; ++d) {
      sequences[d] = runs[d].sequence;
      finals[d] = runs[d].final_state[0];
      below[d] = std::move(runs[d].states);
      result.states.push_back(std::move(runs[d].final_state));
    }
    if (layer < L - 1) layer_input = D == 2 ? concat({sequences[0], sequences[1]}, -1) : sequences[0];
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

const State& RecurrentResult::final_state(std::int64_t layer, std::int64_t direction) const {
  const std::int64_t layers = directions > 0 ? static_cast<std::int64_t>(states.size()) / directions : 0;
  const std::int64_t l = layer < 0 ? layer + layers : layer;
  if (l < 0 || l >= layers || direction < 0 || direction >= directions)
    fail("RecurrentResult: no final state for layer {}, direction {} ({} layers, {} directions)", layer, direction,
         layers, directions);
  return states[l * directions + direction];
}

Tensor RecurrentResult::h(std::int64_t layer, std::int64_t direction) const { return final_state(layer, direction)[0]; }

Tensor RecurrentResult::c(std::int64_t layer, std::int64_t direction) const {
  const State& s = final_state(layer, direction);
  if (s.size() < 2) fail("RecurrentResult: c() of a state of {} tensor(s) (only LSTM-like cells keep c)", s.size());
  return s[1];
}

// --- the familiar layers ---------------------------------------------------------------------------

namespace {
RecurrentOptions from(const RNNOptions& o) {
  return {.num_layers = o.num_layers,
          .bidirectional = o.bidirectional,
          .merge = o.merge,
          .return_sequences = o.return_sequences,
          .go_backwards = o.go_backwards,
          .input_dropout = o.input_dropout,
          .recurrent_dropout = o.recurrent_dropout,
          .layer_dropout = one_of(o.dropout, o.layer_dropout, "dropout", "layer_dropout"),
          .stateful = o.stateful,
          .checkpoint_every = o.checkpoint_every};
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
