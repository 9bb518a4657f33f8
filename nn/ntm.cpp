// Neural Turing Machine: the addressing equations, the cell and the layer (see nn/ntm.hpp).
#include "xgrad/nn/ntm.hpp"

#include <cmath>

#include "xgrad/autograd/ops.hpp"

namespace xgrad::nn {

namespace ntm {

namespace {
bool is_per_head(const Tensor& t, const Tensor& like, std::int64_t last) {  // [B, R, last] of like's B, R
  return t.dim() == 3 && like.dim() == 3 && t.size(0) == like.size(0) && t.size(1) == like.size(1) && t.size(2) == last;
}
}  // namespace

Tensor content_addressing(const Tensor& memory, const Tensor& key, const Tensor& beta) {
  if (memory.dim() != 3 || key.dim() != 3 || key.size(0) != memory.size(0) || key.size(2) != memory.size(2) ||
      !is_per_head(beta, key, 1))
    fail("ntm::content_addressing: expects memory [B, N, W], key [B, R, W] and beta [B, R, 1], got memory {}, "
         "key {} and beta {}",
         memory.shape(), key.shape(), beta.shape());
  // K(k, M_i) for every head and location: [B, R, 1, W] against [B, 1, N, W] -> [B, R, N]
  Tensor similarity = cosine_similarity(unsqueeze(key, 2), unsqueeze(memory, 1), -1);
  return softmax(beta * similarity, -1);  // w^c_i = exp(beta K_i) / sum_j exp(beta K_j)
}

Tensor interpolate(const Tensor& content, const Tensor& previous, const Tensor& gate) {
  if (content.dim() != 3 || previous.shape() != content.shape() || !is_per_head(gate, content, 1))
    fail("ntm::interpolate: expects w^c [B, R, N], w_prev of the same shape and g [B, R, 1], got w^c {}, "
         "w_prev {} and g {}",
         content.shape(), previous.shape(), gate.shape());
  return gate * content + (1.0 - gate) * previous;  // w^g = g w^c + (1 - g) w_prev
}

Tensor shift(const Tensor& w, const Tensor& s) {
  const std::int64_t K = s.dim() == 3 ? s.size(2) : 0, S = (K - 1) / 2;
  if (w.dim() != 3 || !is_per_head(s, w, K) || K % 2 == 0 || K > w.size(2))
    fail("ntm::shift: expects w [B, R, N] and s [B, R, 2S+1] over the shifts -S..S with 2S+1 <= N, got w {} and s {}",
         w.shape(), s.shape());
  // w~ = sum_k s_k roll(w, k): roll(w, k)_i = w_((i - k) mod N), so this is sum_j w_j s_((i - j) mod N)
  Tensor out;
  for (std::int64_t k = -S; k <= S; ++k) {
    Tensor term = slice(s, -1, k + S, k + S + 1) * roll(w, k, -1);
    out = out.defined() ? out + term : term;
  }
  return out;
}

Tensor sharpen(const Tensor& w, const Tensor& gamma, double eps) {
  if (w.dim() != 3 || !is_per_head(gamma, w, 1))
    fail("ntm::sharpen: expects w~ [B, R, N] and gamma [B, R, 1], got w~ {} and gamma {}", w.shape(), gamma.shape());
  // (w~ + eps)^gamma / sum (w~ + eps)^gamma = softmax(gamma log(w~ + eps)): no underflow to 0 / 0.
  // relu is the identity on a weighting; it only keeps log defined on states that are not one.
  return softmax(gamma * log(relu(w) + eps), -1);
}

Tensor address(const Tensor& memory, const Tensor& previous, const Tensor& key, const Tensor& beta,
               const Tensor& gate, const Tensor& s, const Tensor& gamma) {
  Tensor content = content_addressing(memory, key, beta);  // where the key matches
  Tensor gated = interpolate(content, previous, gate);      // or where the head was
  return sharpen(shift(gated, s), gamma);                   // moved by -S..S, then refocused
}

Tensor read(const Tensor& memory, const Tensor& w) {
  if (memory.dim() != 3 || w.dim() != 3 || w.size(0) != memory.size(0) || w.size(2) != memory.size(1))
    fail("ntm::read: expects memory [B, N, W] and w [B, R, N], got memory {} and w {}", memory.shape(), w.shape());
  return matmul(w, memory);  // r_j = sum_i w_i M_ij, every head at once: [B, R, N] x [B, N, W]
}

Tensor write(const Tensor& memory, const Tensor& w, const Tensor& erase, const Tensor& add) {
  const bool ok = memory.dim() == 3 && w.shape() == Shape{memory.size(0), memory.size(1)} &&
                  erase.shape() == Shape{memory.size(0), memory.size(2)} && add.shape() == erase.shape();
  if (!ok)
    fail("ntm::write: expects memory [B, N, W], w [B, N], e and a [B, W], got memory {}, w {}, e {} and a {}",
         memory.shape(), w.shape(), erase.shape(), add.shape());
  Tensor wi = unsqueeze(w, 2);                                              // [B, N, 1]
  return memory * (1.0 - wi * unsqueeze(erase, 1)) + wi * unsqueeze(add, 1);  // M (1 - w e^T) + w a^T
}

}  // namespace ntm

// --- NTMCell ---------------------------------------------------------------------------------------

namespace {

NTMOptions validated(std::int64_t input_size, std::int64_t output_size, const NTMOptions& o) {
  if (input_size <= 0 || output_size <= 0 || o.memory_size <= 0 || o.word_size <= 0 || o.read_heads <= 0 ||
      o.controller_size <= 0)
    fail("NTMCell: input_size {}, output_size {}, memory_size {}, word_size {}, read_heads {} and controller_size {} "
         "must all be positive",
         input_size, output_size, o.memory_size, o.word_size, o.read_heads, o.controller_size);
  if (o.shift_range < 0 || 2 * o.shift_range + 1 > o.memory_size)
    fail("NTMCell: shift_range {} needs 2 * {} + 1 <= memory_size, got memory_size {}", o.shift_range, o.shift_range,
         o.memory_size);
  if (!std::isfinite(o.memory_init)) fail("NTMCell: memory_init must be finite, got {}", o.memory_init);
  return o;
}

/// What a head emits each step, constrained: k as is, beta >= 0, g in (0, 1), s a distribution
/// over -S..S, gamma >= 1; a write head also e in (0, 1) and a in (-1, 1).
struct Head {
  Tensor key, beta, gate, shift, gamma, erase, add;
};

/// Cuts a head's rows of Linear(h), [B, R, width], into its parameters.
Head head(const Tensor& raw, std::int64_t W, std::int64_t S, bool writes) {
  std::vector<std::int64_t> sizes{W, 1, 1, 2 * S + 1, 1};
  if (writes) sizes.insert(sizes.end(), {W, W});
  auto p = split(raw, sizes, -1);
  Head h{p[0], softplus(p[1]), sigmoid(p[2]), softmax(p[3], -1), 1.0 + softplus(p[4]), {}, {}};
  if (writes) {
    h.erase = squeeze(sigmoid(p[5]), 1);
    h.add = squeeze(tanh(p[6]), 1);
  }
  return h;
}

}  // namespace

NTMCell::NTMCell(std::int64_t input_size, std::int64_t output_size, NTMOptions options)
    : Cell(input_size, output_size, 7),
      options_(validated(input_size, output_size, options)),
      controller_(this, "controller", input_size + options.read_heads * options.word_size, options.controller_size),
      read_heads_(this, "read_heads", options.controller_size,
                  options.read_heads * (options.word_size + 2 * options.shift_range + 4)),
      write_head_(this, "write_head", options.controller_size, 3 * options.word_size + 2 * options.shift_range + 4),
      output_(this, "output", options.controller_size + options.read_heads * options.word_size, output_size) {}

std::vector<Shape> NTMCell::state_shapes() const {
  const std::int64_t N = options_.memory_size, W = options_.word_size, R = options_.read_heads,
                     C = options_.controller_size;
  return {{hidden_size()}, {C}, {C}, {N, W}, {R * W}, {R, N}, {N}};
}

State NTMCell::initial_state(std::int64_t batch, Dtype dtype) const {
  const std::int64_t N = options_.memory_size, W = options_.word_size, R = options_.read_heads;
  State s = Cell::initial_state(batch, dtype);                             // y, h, c = 0
  s[memory] = full({batch, N, W}, options_.memory_init, dtype);           // small, not 0: K needs |M_i| > 0
  s[read_weightings] = pad(ones({batch, R, 1}, dtype), -1, 0, N - 1);    // every head on location 0
  s[write_weighting] = pad(ones({batch, 1}, dtype), -1, 0, N - 1);
  s[reads] = reshape(ntm::read(s[memory], s[read_weightings]), {batch, R * W});
  return s;
}

void NTMCell::set_recurrent_mask(const Tensor& mask) {
  Cell::set_recurrent_mask(mask);
  const std::int64_t H = hidden_size(), C = options_.controller_size;
  if (!mask.defined() || C == H) return controller_->set_recurrent_mask(mask);
  if (mask.dim() != 2 || mask.size(1) != H)
    fail("NTMCell: a recurrent-dropout mask must be [B, {}] (the output's width), got {}", H, mask.shape());
  xt::xarray<std::int64_t> columns(std::vector<std::size_t>{static_cast<std::size_t>(C)});
  for (std::int64_t j = 0; j < C; ++j) columns(j) = j % H;
  controller_->set_recurrent_mask(index_select(mask, 1, from_xarray(columns)));
}

State NTMCell::step(const Tensor& x, const State& state) {
  check_step(x, state);
  const std::int64_t B = x.size(0), W = options_.word_size, R = options_.read_heads, S = options_.shift_range;
  // the controller sees the input and what the heads read last step
  State controller = (*controller_)(concat({x, state[reads]}, -1), {state[controller_h], state[controller_c]});
  const Tensor& h = controller[0];

  // write: w^w = address(M, w^w_prev, ...);  M' = M * (1 - w^w e^T) + w^w a^T
  Head wh = head(unsqueeze(write_head_(h), 1), W, S, true);
  Tensor w_write = ntm::address(state[memory], unsqueeze(state[write_weighting], 1), wh.key, wh.beta, wh.gate,
                                wh.shift, wh.gamma);  // [B, 1, N]
  Tensor M = ntm::write(state[memory], squeeze(w_write, 1), wh.erase, wh.add);

  // read: w^r = address(M', w^r_prev, ...);  r = w^r M'
  Head rh = head(reshape(read_heads_(h), {B, R, -1}), W, S, false);
  Tensor w_read = ntm::address(M, state[read_weightings], rh.key, rh.beta, rh.gate, rh.shift, rh.gamma);
  Tensor r = reshape(ntm::read(M, w_read), {B, R * W});

  Tensor y = output_(concat({h, r}, -1));  // y = Linear([h, r])
  return {y, h, controller[1], M, r, w_read, squeeze(w_write, 1)};
}

// --- NTM --------------------------------------------------------------------------------------------

NTM::NTM(std::int64_t input_size, std::int64_t output_size, NTMOptions options, RecurrentOptions layer)
    : Recurrent([=](std::int64_t, std::int64_t in) { return std::make_shared<NTMCell>(in, output_size, options); },
                input_size, layer) {
  type_name_ = "NTM";
}

NTMCell& NTM::ntm_cell(std::int64_t layer, std::int64_t direction) {
  return static_cast<NTMCell&>(cell(layer, direction));  // the factory makes nothing else
}

Unrolled NTM::unroll_layer(std::int64_t layer, Cell& cell, const Tensor& x, const State& initial,
                           const UnrollOptions& options) {
  UnrollOptions keep = options;
  keep.keep_states |= recording_ != nullptr;  // trace() reads the weightings of every step
  Unrolled u = Recurrent::unroll_layer(layer, cell, x, initial, keep);
  if (recording_)
    for (std::int64_t d = 0; d < directions(); ++d) {
      if (&this->cell(layer, d) != &cell) continue;
      std::vector<Tensor> read, write;
      for (const State& s : u.states) {
        read.push_back(s[NTMCell::read_weightings]);
        write.push_back(s[NTMCell::write_weighting]);
      }
      (*recording_)[layer * directions() + d] = {stack(read, 1), stack(write, 1)};
    }
  return u;
}

NTMTrace NTM::trace(const Tensor& x, const Tensor& lengths, const std::vector<State>& initial, PadSide padding) {
  NTMTrace out;
  out.weightings.resize(options().num_layers * directions());
  recording_ = &out.weightings;
  try {
    out.result = run(x, lengths, initial, padding);
  } catch (...) {
    recording_ = nullptr;
    throw;
  }
  recording_ = nullptr;
  return out;
}

}  // namespace xgrad::nn
