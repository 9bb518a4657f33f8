// The Neural Turing Machine: each addressing equation against a hand-written scalar loop, its
// gradients (edge cases included), the cell through the one-call checker and against an explicit
// formulation, and the layer in the driver (lengths, both directions, stacking, save/load).
#include <cmath>
#include <map>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::nn;

namespace {

// --- references: plain loops over std::vector<double>, one example and one head at a time ------

using Vec = std::vector<double>;

double softplus_of(double x) { return std::log1p(std::exp(x)); }
double sigmoid_of(double x) { return 1 / (1 + std::exp(-x)); }

Vec softmax_of(const Vec& z) {
  double top = z[0], total = 0;
  for (double v : z) top = std::max(top, v);
  Vec out(z.size());
  for (std::size_t i = 0; i < z.size(); ++i) total += out[i] = std::exp(z[i] - top);
  for (double& v : out) v /= total;
  return out;
}

/// w^c_i = softmax(beta K(k, M_i)), K(u, v) = (u / max(|u|, eps)) . (v / max(|v|, eps)); M is N x W.
Vec ref_content(const Vec& M, const Vec& k, double beta) {
  const std::size_t W = k.size(), N = M.size() / W;
  auto norm = [&](const double* v) {
    double s = 0;
    for (std::size_t j = 0; j < W; ++j) s += v[j] * v[j];
    return std::max(std::sqrt(s), 1e-8);
  };
  Vec z(N);
  for (std::size_t i = 0; i < N; ++i) {
    double dot = 0;
    for (std::size_t j = 0; j < W; ++j) dot += k[j] * M[i * W + j];
    z[i] = beta * dot / (norm(k.data()) * norm(&M[i * W]));
  }
  return softmax_of(z);
}

Vec ref_interpolate(const Vec& wc, const Vec& prev, double g) {
  Vec out(wc.size());
  for (std::size_t i = 0; i < wc.size(); ++i) out[i] = g * wc[i] + (1 - g) * prev[i];
  return out;
}

/// w~_i = sum_j w_j s((i - j) mod N), s given over the shifts -S..S (0 for other offsets).
Vec ref_shift(const Vec& w, const Vec& s) {
  const auto N = static_cast<long>(w.size()), S = static_cast<long>(s.size() - 1) / 2;
  auto s_at = [&](long d) { return d <= S ? s[S + d] : d >= N - S ? s[S + d - N] : 0.0; };
  Vec out(N, 0.0);
  for (long i = 0; i < N; ++i)
    for (long j = 0; j < N; ++j) out[i] += w[j] * s_at(((i - j) % N + N) % N);
  return out;
}

Vec ref_sharpen(const Vec& w, double gamma, double eps = 1e-16) {
  Vec out(w.size());
  double total = 0;
  for (std::size_t i = 0; i < w.size(); ++i) total += out[i] = std::pow(w[i] + eps, gamma);
  for (double& v : out) v /= total;
  return out;
}

Vec ref_read(const Vec& M, const Vec& w) {
  const std::size_t N = w.size(), W = M.size() / N;
  Vec r(W, 0.0);
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < W; ++j) r[j] += w[i] * M[i * W + j];
  return r;
}

Vec ref_write(const Vec& M, const Vec& w, const Vec& e, const Vec& a) {
  const std::size_t N = w.size(), W = e.size();
  Vec out(M.size());
  for (std::size_t i = 0; i < N; ++i)
    for (std::size_t j = 0; j < W; ++j) out[i * W + j] = M[i * W + j] * (1 - w[i] * e[j]) + w[i] * a[j];
  return out;
}

/// Row `index` of a tensor's values seen as rows of `width`.
Vec row(const Tensor& t, std::size_t index, std::size_t width) {
  auto v = t.to_vector<double>();
  return Vec(v.begin() + static_cast<long>(index * width), v.begin() + static_cast<long>((index + 1) * width));
}

double max_diff(const Vec& a, const Vec& b) {
  REQUIRE(a.size() == b.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

Tensor from_values(const Vec& v, const Shape& shape) {
  xt::xarray<double> a(std::vector<std::size_t>{v.size()});
  for (std::size_t i = 0; i < v.size(); ++i) a(i) = v[i];
  return reshape(from_xarray(a), shape);
}

Tensor values(const Shape& shape, double low, double high, std::uint64_t seed) {
  Generator gen(seed);
  return uniform(shape, low, high, f64, &gen);
}

/// A batch of weightings (rows summing to 1) [B, R, N].
Tensor weighting(const Shape& shape, std::uint64_t seed) { return softmax(values(shape, -2, 2, seed), -1); }

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

NTMOptions small() { return {.memory_size = 6, .word_size = 3, .read_heads = 2, .controller_size = 5, .shift_range = 1}; }

}  // namespace

TEST_CASE("NTM addressing equals hand-written loops: content, interpolation, shift, sharpening") {
  const std::int64_t B = 2, R = 2, N = 7, W = 4;
  Tensor M = values({B, N, W}, -1, 1, 1);
  M = M * reshape(tensor({1, 1, 1, 0, 1, 1, 1}, f64), {1, N, 1});  // a zero memory row: K = 0 there
  Tensor k = values({B, R, W}, -1, 1, 2), beta = values({B, R, 1}, 0.5, 4, 3), g = values({B, R, 1}, 0, 1, 4);
  Tensor prev = weighting({B, R, N}, 5), gamma = values({B, R, 1}, 1, 6, 6);
  Tensor s1 = weighting({B, R, 3}, 7), s2 = weighting({B, R, 5}, 8);

  Tensor wc = ntm::content_addressing(M, k, beta), wg = ntm::interpolate(wc, prev, g);
  Tensor shifted1 = ntm::shift(wg, s1), shifted2 = ntm::shift(wg, s2), sharp = ntm::sharpen(shifted1, gamma);
  Tensor full = ntm::address(M, prev, k, beta, g, s1, gamma);
  CHECK(full.shape() == Shape{B, R, N});
  for (std::size_t b = 0; b < B; ++b)
    for (std::size_t r = 0; r < R; ++r) {
      const std::size_t head = b * R + r;
      CAPTURE(head);
      const Vec content = ref_content(row(M, b, N * W), row(k, head, W), row(beta, head, 1)[0]);
      const Vec gated = ref_interpolate(content, row(prev, head, N), row(g, head, 1)[0]);
      const Vec moved = ref_shift(gated, row(s1, head, 3));
      const Vec sharpened = ref_sharpen(moved, row(gamma, head, 1)[0]);
      CHECK(max_diff(row(wc, head, N), content) < 1e-14);
      CHECK(max_diff(row(wg, head, N), gated) < 1e-14);
      CHECK(max_diff(row(shifted1, head, N), moved) < 1e-14);
      CHECK(max_diff(row(shifted2, head, N), ref_shift(gated, row(s2, head, 5))) < 1e-14);
      CHECK(max_diff(row(sharp, head, N), sharpened) < 1e-13);
      CHECK(max_diff(row(full, head, N), sharpened) < 1e-13);
    }
  // the zero row has similarity 0: its content weight is exp(0) / sum exp(beta K)
  const Vec z = row(wc, 0, N);
  CHECK(z[3] == doctest::Approx(ref_content(row(M, 0, N * W), row(k, 0, W), row(beta, 0, 1)[0])[3]).epsilon(1e-14));
  // a shift of one location moves a one-hot weighting by one, circularly
  Tensor one_hot = reshape(tensor({0, 0, 0, 0, 0, 0, 1}, f64), {1, 1, N});
  check_values(ntm::shift(one_hot, reshape(tensor({0, 0, 1}, f64), {1, 1, 3})), {1, 1, N}, {1, 0, 0, 0, 0, 0, 0});
  check_values(ntm::shift(one_hot, reshape(tensor({1, 0, 0}, f64), {1, 1, 3})), {1, 1, N}, {0, 0, 0, 0, 0, 1, 0});
}

TEST_CASE("NTM memory: read and write equal hand-written loops") {
  const std::int64_t B = 2, R = 3, N = 5, W = 4;
  Tensor M = values({B, N, W}, -1, 1, 11), w = weighting({B, R, N}, 12), ww = squeeze(weighting({B, 1, N}, 13), 1);
  Tensor e = values({B, W}, 0, 1, 14), a = values({B, W}, -1, 1, 15);
  Tensor r = ntm::read(M, w), written = ntm::write(M, ww, e, a);
  REQUIRE(r.shape() == Shape{B, R, W});
  REQUIRE(written.shape() == Shape{B, N, W});
  for (std::size_t b = 0; b < B; ++b) {
    for (std::size_t h = 0; h < R; ++h) CHECK(max_diff(row(r, b * R + h, W), ref_read(row(M, b, N * W), row(w, b * R + h, N))) < 1e-15);
    const Vec want = ref_write(row(M, b, N * W), row(ww, b, N), row(e, b, W), row(a, b, W));
    CHECK(max_diff(row(written, b, N * W), want) < 1e-15);
  }
  // erase 1 and add 0 through a one-hot weighting clears exactly that row
  Tensor clear = ntm::write(M, reshape(tensor({0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, f64), {B, N}), ones({B, W}, f64), zeros({B, W}, f64));
  check_values(slice(slice(clear, 0, 0, 1), 1, 1, 2), {1, 1, W}, Vec(W, 0.0));
  check_close(slice(clear, 0, 1, 2), slice(M, 0, 1, 2), 0);
}

TEST_CASE("NTM addressing gradients: gradcheck and gradgradcheck, zero memory rows, large gamma") {
  const std::int64_t B = 2, R = 2, N = 5, W = 3;
  Tensor M = input({B, N, W}, -1, 1, 21), k = input({B, R, W}, -1, 1, 22), beta = input({B, R, 1}, 0.5, 3, 23);
  check_gradients([](const Inputs& in) { return ntm::content_addressing(in[0], in[1], in[2]); }, {M, k, beta});

  // two zero rows (constants) beside rows that vary: finite gradients, and they check
  Tensor zero_rows = zeros({B, 2, W}, f64), rest = input({B, N - 2, W}, -1, 1, 24);
  check_gradients([&](const Inputs& in) { return ntm::content_addressing(concat({zero_rows, in[0]}, 1), in[1], in[2]); },
                  {rest, k, beta});
  // with the zero rows themselves differentiated (K is clamped there: a large but finite gradient)
  Tensor with_zeros = concat({zero_rows, rest.detach()}, 1).requires_grad_();
  sum(ntm::content_addressing(with_zeros, k, beta) * values({B, R, N}, -1, 1, 25)).backward();
  CHECK(all_finite(with_zeros.grad()));
  // a zero key gives a uniform content weighting
  check_close(ntm::content_addressing(M.detach(), zeros({B, R, W}, f64), beta.detach()), full({B, R, N}, 1.0 / N, f64),
              1e-15);

  Tensor wc = input({B, R, N}, 0, 1, 26), prev = input({B, R, N}, 0, 1, 27), g = input({B, R, 1}, 0, 1, 28);
  check_gradients([](const Inputs& in) { return ntm::interpolate(in[0], in[1], in[2]); }, {wc, prev, g});
  Tensor s = input({B, R, 3}, 0, 1, 29);
  check_gradients([](const Inputs& in) { return ntm::shift(in[0], in[1]); }, {wc, s});

  Tensor w = input({B, R, N}, 0.05, 1, 30), gamma = input({B, R, 1}, 1, 4, 31);
  check_gradients([](const Inputs& in) { return ntm::sharpen(in[0], in[1]); }, {w, gamma});
  Tensor large = input({B, R, 1}, 20, 30, 32);  // gamma large: nearly one-hot, still exact
  check_gradients([](const Inputs& in) { return ntm::sharpen(in[0], in[1]); }, {w, large});
  // exact zeros in w~ (weights that underflowed): gamma's gradient checks, w's stays finite
  Tensor holes = (w * reshape(tensor({1, 0, 1, 0, 1}, f64), {1, 1, N})).detach();
  check_gradients([&](const Inputs& in) { return ntm::sharpen(holes, in[0]); }, {gamma});
  Tensor holes_leaf = holes.clone().detach().requires_grad_();
  sum(ntm::sharpen(holes_leaf, gamma) * values({B, R, N}, -1, 1, 33)).backward();
  CHECK(all_finite(holes_leaf.grad()));

  Tensor ww = input({B, N}, 0, 1, 34), e = input({B, W}, 0, 1, 35), a = input({B, W}, -1, 1, 36);
  check_gradients([](const Inputs& in) { return ntm::read(in[0], in[1]); }, {M, wc});
  check_gradients([](const Inputs& in) { return ntm::write(in[0], in[1], in[2], in[3]); }, {M, ww, e, a});
}

TEST_CASE("NTM sharpening stays normalised in float32 where w~^gamma underflows") {
  // (1/4)^200 is 0 in float32: w~^gamma / sum would be 0 / 0; the log-domain form is a one-hot
  Tensor w = reshape(tensor({0.25f, 0.0f, 0.2f, 0.45f}), {1, 1, 4}).requires_grad_();
  Tensor gamma = full({1, 1, 1}, 200.0);
  Tensor sharp = ntm::sharpen(w, gamma);
  CHECK(sharp.dtype() == f32);
  check_values(sharp, {1, 1, 4}, {0, 0, 0, 1});
  sum(sharp * reshape(tensor({1.0f, 2.0f, 3.0f, 4.0f}), {1, 1, 4})).backward();
  CHECK(all_finite(w.grad()));
}

TEST_CASE("NTMCell passes the one-call check alone and in a 2-layer bidirectional Recurrent") {
  // output 3 and controller 4: the driver's recurrent-dropout mask [B, 3] must still reach the controller
  const NTMOptions options{.memory_size = 5, .word_size = 2, .read_heads = 2, .controller_size = 4, .shift_range = 1};
  std::string report;
  CHECK_NOTHROW(report = check_cell([&](std::int64_t, std::int64_t in) { return std::make_shared<NTMCell>(in, 3, options); }));
  CHECK(matches(report, "NTMCell: gradcheck and gradgradcheck over 3 steps .* 7 state tensors"));
  CHECK(matches(report, "2-layer bidirectional layer with lengths and dropout"));
  NTMCell same_width(3, 4, {.memory_size = 4, .word_size = 2, .read_heads = 1, .controller_size = 4, .shift_range = 1});
  CHECK_NOTHROW(check_cell(same_width, {.second_order = false}));
}

TEST_CASE("NTMCell: the initial state, and steps equal an explicit formulation") {
  manual_seed(41);
  const NTMOptions o = small();
  const std::int64_t B = 2, I = 3, H = 4, N = o.memory_size, W = o.word_size, R = o.read_heads, C = o.controller_size;
  NTMCell cell(I, H, o);
  cell.to(f64);
  State state = cell.initial_state(B, f64);
  REQUIRE(state.size() == 7);
  check_values(state[NTMCell::memory], {B, N, W}, Vec(B * N * W, 1e-6));
  check_values(state[NTMCell::reads], {B, R * W}, Vec(B * R * W, 1e-6));
  check_values(state[NTMCell::write_weighting], {B, N}, {1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0});
  check_values(slice(state[NTMCell::read_weightings], 1, 1, 2), {B, 1, N}, {1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0});
  for (auto slot : {NTMCell::output, NTMCell::controller_h, NTMCell::controller_c})
    check_values(state[slot], state[slot].shape(), Vec(state[slot].numel(), 0.0));

  std::map<std::string, Tensor> p;
  for (const auto& [name, t] : cell.named_parameters()) p[name] = t.detach();
  // the reference state: tensors for the controller, vectors per example for memory and weightings
  Tensor h = zeros({B, C}, f64), c = h, r = state[NTMCell::reads];
  std::vector<Vec> M(B), ww(B), wr(B * R);
  for (std::size_t b = 0; b < B; ++b) {
    M[b] = row(state[NTMCell::memory], b, N * W);
    ww[b] = row(state[NTMCell::write_weighting], b, N);
    for (std::size_t q = 0; q < R; ++q) wr[b * R + q] = row(state[NTMCell::read_weightings], b * R + q, N);
  }
  const std::size_t head_width = W + 6;  // k, beta, g, s (3), gamma
  auto addressed = [&](const Vec& memory, const Vec& prev, const Vec& raw) {
    const Vec key(raw.begin(), raw.begin() + W), s = softmax_of(Vec(raw.begin() + W + 2, raw.begin() + W + 5));
    const double beta = softplus_of(raw[W]), g = sigmoid_of(raw[W + 1]), gamma = 1 + softplus_of(raw[W + 5]);
    return ref_sharpen(ref_shift(ref_interpolate(ref_content(memory, key, beta), prev, g), s), gamma);
  };

  Tensor x = values({B, 4, I}, -1, 1, 42);
  for (std::int64_t t = 0; t < 4; ++t) {
    CAPTURE(t);
    Tensor xt = squeeze(slice(x, 1, t, t + 1), 1);
    state = cell(xt, state);
    // controller: an LSTM on [x, r]
    auto gates = chunk(linear(concat({xt, r}, -1), p["controller.weight_ih"], p["controller.bias_ih"]) +
                           linear(h, p["controller.weight_hh"], p["controller.bias_hh"]),
                       4, -1);
    c = sigmoid(gates[1]) * c + sigmoid(gates[0]) * tanh(gates[2]);
    h = sigmoid(gates[3]) * tanh(c);
    const Tensor write_raw = linear(h, p["write_head.weight"], p["write_head.bias"]);
    const Tensor read_raw = linear(h, p["read_heads.weight"], p["read_heads.bias"]);
    Vec reads;
    for (std::size_t b = 0; b < B; ++b) {
      const Vec raw = row(write_raw, b, head_width + 2 * W);
      ww[b] = addressed(M[b], ww[b], Vec(raw.begin(), raw.begin() + head_width));
      Vec e(W), a(W);
      for (std::size_t j = 0; j < W; ++j) {
        e[j] = sigmoid_of(raw[head_width + j]);
        a[j] = std::tanh(raw[head_width + W + j]);
      }
      M[b] = ref_write(M[b], ww[b], e, a);
      for (std::size_t q = 0; q < R; ++q) {
        const Vec rr = row(read_raw, b * R + q, head_width);
        wr[b * R + q] = addressed(M[b], wr[b * R + q], rr);
        for (double v : ref_read(M[b], wr[b * R + q])) reads.push_back(v);
      }
    }
    r = from_values(reads, {B, R * W});
    Tensor y = linear(concat({h, r}, -1), p["output.weight"], p["output.bias"]);

    check_close(state[NTMCell::output], y, 1e-12);
    check_close(state[NTMCell::controller_h], h, 1e-12);
    check_close(state[NTMCell::controller_c], c, 1e-12);
    check_close(state[NTMCell::reads], r, 1e-12);
    for (std::size_t b = 0; b < B; ++b) {
      CHECK(max_diff(row(state[NTMCell::memory], b, N * W), M[b]) < 1e-12);
      CHECK(max_diff(row(state[NTMCell::write_weighting], b, N), ww[b]) < 1e-12);
      for (std::size_t q = 0; q < R; ++q)
        CHECK(max_diff(row(state[NTMCell::read_weightings], b * R + q, N), wr[b * R + q]) < 1e-12);
    }
  }
}

TEST_CASE("NTM layer: check_module, PyTorch-style names, float32 against float64, stacking") {
  manual_seed(51);
  NTM ntm(3, 2, small());
  std::vector<std::string> names;
  for (const auto& [name, t] : ntm.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"controller.weight_ih_l0", "controller.weight_hh_l0", "controller.bias_ih_l0",
                                          "controller.bias_hh_l0", "read_heads.weight_l0", "read_heads.bias_l0",
                                          "write_head.weight_l0", "write_head.bias_l0", "output.weight_l0",
                                          "output.bias_l0"});
  CHECK(ntm.type_name() == "NTM");
  CHECK(ntm.ntm_cell().controller().input_size() == 3 + 2 * 3);
  std::string report;
  CHECK_NOTHROW(report = check_module(ntm, {2, 3, 3}));
  CHECK(matches(report, "NTM: gradcheck and gradgradcheck"));

  // the same weights in float32 and float64, two layers
  NTM narrow(3, 2, small(), {.num_layers = 2}), wide(3, 2, small(), {.num_layers = 2});
  wide.to(f64);
  wide.load_state_dict(narrow.state_dict());
  Generator gen(52);
  Tensor x = uniform({3, 6, 3}, -1, 1, f32, &gen);
  RecurrentResult a = narrow.run(x), b = wide.run(x.to(f64));
  CHECK(a.output.dtype() == f32);
  CHECK(a.output.shape() == Shape{3, 6, 2});
  CHECK(max_abs_diff(a.output.to(f64), b.output) < 1e-5);
  CHECK(max_abs_diff(a.final_state(-1)[NTMCell::memory].to(f64), b.final_state(-1)[NTMCell::memory]) < 1e-5);
  // layer 2 reads layer 1's outputs
  CHECK(wide.ntm_cell(1).input_size() == 2);
}

TEST_CASE("NTM in a bidirectional Recurrent with lengths: padded steps carry the memory; trace") {
  manual_seed(61);
  NTM bi(3, 2, small(), {.bidirectional = true});
  bi.to(f64);
  const std::int64_t T = 5, N = small().memory_size, R = small().read_heads;
  Tensor x = values({3, T, 3}, -1, 1, 62), lengths = tensor({5, 2, 0}, i64);
  NTMTrace traced = bi.trace(x, lengths);
  const RecurrentResult& out = traced.result;
  REQUIRE(out.output.shape() == Shape{3, T, 4});
  for (std::int64_t d = 0; d < 2; ++d) {
    CAPTURE(d);
    NTMCell& cell = bi.ntm_cell(0, d);
    // sequence 1 is x[1, :2]: its final state equals running those two steps alone
    Unrolled alone = unroll(cell, slice(slice(x, 0, 1, 2), 1, 0, 2), cell.initial_state(1, f64), {.reverse = d == 1});
    for (std::size_t i = 0; i < 7; ++i) check_close(slice(out.final_state(0, d)[i], 0, 1, 2), alone.final_state[i], 1e-14);
    // length 0: the initial state, memory and all
    for (std::size_t i = 0; i < 7; ++i)
      check_close(slice(out.final_state(0, d)[i], 0, 2, 3), cell.initial_state(1, f64)[i], 0);
    // the trace holds the states' weightings, each a distribution over the N locations
    const NTMWeightings& w = traced.weightings[d];
    REQUIRE(w.read.shape() == Shape{3, T, R, N});
    REQUIRE(w.write.shape() == Shape{3, T, N});
    check_close(sum(slice(w.read, 0, 0, 1), -1), ones({1, T, R}, f64), 1e-12);
    Unrolled full = unroll(cell, slice(x, 0, 0, 1), cell.initial_state(1, f64), {.reverse = d == 1});
    for (std::int64_t t = 0; t < T; ++t) {
      check_close(squeeze(slice(slice(w.write, 0, 0, 1), 1, t, t + 1), 1), full.states[t][NTMCell::write_weighting], 1e-14);
      check_close(squeeze(slice(slice(w.read, 0, 0, 1), 1, t, t + 1), 1), full.states[t][NTMCell::read_weightings], 1e-14);
    }
  }
  // padded steps output zeros
  check_values(slice(slice(out.output, 0, 1, 2), 1, 2, T), {1, T - 2, 4}, Vec((T - 2) * 4, 0.0));
  check_close(traced.result.output, bi.run(x, lengths).output, 0);
}

TEST_CASE("NTM save and load round trip") {
  TempDir dir("ntm");
  manual_seed(71);
  NTM a(3, 2, small(), {.bidirectional = true});
  manual_seed(72);
  NTM b(3, 2, small(), {.bidirectional = true});
  Generator gen(73);
  Tensor x = uniform({2, 4, 3}, -1, 1, f32, &gen);
  const Tensor want = a.run(x).output;
  CHECK(max_abs_diff(b.run(x).output, want) > 1e-3);
  a.save(dir.file("ntm.safetensors"));
  b.load(dir.file("ntm.safetensors"));
  check_close(b.run(x).output, want, 0);
}

TEST_CASE("NTM errors name the cell or function and the shapes") {
  NTMCell cell(3, 4, small());
  State state = cell.initial_state(2, f32);
  state[NTMCell::memory] = zeros({2, 5, 3});  // 5 locations, the cell has 6
  CHECK(matches(error_of([&] { cell.step(zeros({2, 3}), state); }), R"(NTMCell: .*\[B, 6, 3\].*got .*\[2, 5, 3\])"));
  CHECK(matches(error_of([&] { cell(zeros({2, 4}), cell.initial_state(2, f32)); }), R"(NTMCell: .*\[2, 4\])"));
  CHECK(matches(error_of([] { NTMCell(3, 4, {.memory_size = 0}); }), R"(NTMCell: .*memory_size 0)"));
  CHECK(matches(error_of([] { NTMCell(3, 4, {.memory_size = 6, .shift_range = 3}); }), R"(NTMCell: shift_range 3 .*memory_size 6)"));
  CHECK(matches(error_of([] { NTM(3, 4, {.word_size = -1}); }), R"(NTMCell: .*word_size -1)"));
  Tensor w = full({2, 1, 6}, 1.0 / 6);
  CHECK(matches(error_of([&] { ntm::shift(w, ones({2, 1, 2})); }), R"(ntm::shift: .*got w \[2, 1, 6\] and s \[2, 1, 2\])"));
  CHECK(matches(error_of([&] { ntm::content_addressing(zeros({2, 6, 3}), zeros({2, 1, 4}), ones({2, 1, 1})); }),
                R"(ntm::content_addressing: .*memory \[2, 6, 3\], key \[2, 1, 4\])"));
  CHECK(matches(error_of([&] { ntm::write(zeros({2, 6, 3}), zeros({2, 5}), zeros({2, 3}), zeros({2, 3})); }),
                R"(ntm::write: .*w \[2, 5\])"));
  CHECK(matches(error_of([&] { cell.set_recurrent_mask(ones({2, 5})); }), R"(NTMCell: .*\[B, 4\].*\[2, 5\])"));
}
