// Numerical stability of the log-sum-exp family for float32 logits far from zero, clipping of
// non-finite gradients, and a long recurrent training run that stays finite.
#include <cfloat>
#include <cmath>
#include <cstring>
#include <limits>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Row = std::vector<float>;

/// Seeded float32 logits over [-2000, 900], `cols` per row: rows drawn over the whole range (one
/// entry takes nearly all the probability), rows bunched within a few units of a random centre
/// (the probability is shared, and the shift by the row maximum must lose nothing), then the
/// extreme rows: all -2000, one 900 and the rest -2000, two 900s, all 900, and mixtures.
std::vector<Row> wide_logits(std::int64_t cols, int random_rows, std::uint64_t seed) {
  Generator gen(seed);
  std::vector<Row> rows;
  for (int r = 0; r < random_rows; ++r) rows.push_back(uniform({cols}, -2000, 900, f32, &gen).to_vector<float>());
  for (int r = 0; r < random_rows; ++r) {
    // half of the centres near 0, where logsumexp has no large maximum to hide its error behind
    const double centre = r % 2 ? uniform({1}, -1980, 880, f64, &gen).item() : uniform({1}, -5, 5, f64, &gen).item();
    const double spread = uniform({1}, 0.01, 20, f64, &gen).item();
    rows.push_back(uniform({cols}, centre - spread, centre + spread, f32, &gen).to_vector<float>());
  }
  const auto n = static_cast<std::size_t>(cols);
  Row all_low(n, -2000), one_high(n, -2000), two_high(n, -2000), all_high(n, 900), halves(n), near_tie(n, -2000),
      low_steps(n), high_steps(n);
  one_high[n / 3] = 900;
  two_high.front() = two_high.back() = 900;
  near_tie[0] = 900;
  near_tie[1] = 899.99994f;  // the float just below 900
  for (std::size_t c = 0; c < n; ++c) {
    halves[c] = c % 2 ? -2000.0f : 900.0f;
    low_steps[c] = -2000.0f + 0.25f * static_cast<float>(c);
    high_steps[c] = 900.0f - 0.5f * static_cast<float>(c);
  }
  for (const Row& row : {all_low, one_high, two_high, all_high, halves, near_tie, low_steps, high_steps})
    rows.push_back(row);
  return rows;
}

/// rows as a float32 [R, C] tensor, or transposed as [C, R] (the reduced axis then has stride R).
Tensor matrix(const std::vector<Row>& rows, bool transposed = false) {
  const auto R = static_cast<std::int64_t>(rows.size()), C = static_cast<std::int64_t>(rows[0].size());
  Tensor t = empty(transposed ? Shape{C, R} : Shape{R, C}, f32);
  float* p = t.data<float>();
  for (std::int64_t r = 0; r < R; ++r)
    for (std::int64_t c = 0; c < C; ++c) p[transposed ? c * R + r : r * C + c] = rows[r][c];
  return t.requires_grad_();
}

/// Value of row r, column c of a result laid out like matrix(rows, transposed).
double at(const std::vector<double>& values, std::size_t R, std::size_t C, std::size_t r, std::size_t c,
          bool transposed) {
  return values[transposed ? c * R + r : r * C + c];
}

/// One row's log-sum-exp, log-softmax and softmax in long double (64-bit significand): the
/// shift by the maximum and the differences of floats are exact there, the rest 2^-64 relative.
struct Reference {
  long double lse;
  std::vector<long double> log_softmax, softmax;
};
Reference reference(const Row& row) {
  const long double m = *std::max_element(row.begin(), row.end());
  long double s = 0;
  for (float v : row) s += std::exp(static_cast<long double>(v) - m);
  Reference ref{m + std::log(s), {}, {}};
  for (float v : row) {
    ref.log_softmax.push_back((static_cast<long double>(v) - m) - std::log(s));
    ref.softmax.push_back(std::exp(ref.log_softmax.back()));
  }
  return ref;
}

/// Error of a log-domain value (logsumexp, log_softmax, a loss, a gradient): relative to |want|,
/// and absolute below 1, where no float format has relative accuracy to offer (the
/// log-probability of a certain class is -log(1 + 1e-30), which float32 rounds to 0).
double log_error(double got, long double want) {
  return static_cast<double>(std::abs(got - want) / std::max(std::abs(want), 1.0L));
}

/// Error of a probability: relative to want, where float32 holds it with all 24 bits (want >=
/// FLT_MIN); a probability below that (subnormal, or 0 in float32) may round to 0, and counts
/// as exact when it is within FLT_MIN.
double probability_error(double got, long double want) {
  if (want >= FLT_MIN) return static_cast<double>(std::abs(got - want) / want);
  return std::abs(got - want) <= FLT_MIN ? 0.0 : 1.0;
}

/// The worst error and where it occurred.
struct Worst {
  double error = 0;
  std::string where;
  void add(double e, const char* what, std::size_t r, std::size_t c) {
    if (e > error || std::isnan(e)) error = std::isnan(e) ? INFINITY : e, where = fmt::format("{} row {} col {}", what, r, c);
  }
};

bool all_finite(const std::vector<double>& values) {
  return std::all_of(values.begin(), values.end(), [](double v) { return std::isfinite(v); });
}

}  // namespace

TEST_CASE("softmax, log_softmax and logsumexp: float32 logits in [-2000, 900] give finite values within 1e-6 of long double") {
  // 48 columns (a tagger's classes), 2 000 and 30 000 (vocabularies: long rows accumulate error);
  // the class axis last (contiguous rows) and first (rows at a stride)
  for (std::int64_t cols : {48, 2000, 30000}) {
    const auto rows = wide_logits(cols, cols == 48 ? 200 : 8, 21 + cols);
    const std::size_t R = rows.size(), C = static_cast<std::size_t>(cols);
    std::vector<Reference> refs;
    for (const Row& row : rows) refs.push_back(reference(row));
    for (bool transposed : {false, true}) {
      CAPTURE(cols);
      CAPTURE(transposed);
      const std::int64_t axis = transposed ? 0 : 1;
      Tensor x = matrix(rows, transposed);
      auto lse = logsumexp(x, axis).to_vector<double>();
      auto lsm = log_softmax(x, axis).to_vector<double>();
      auto sm = softmax(x, axis).to_vector<double>();
      CHECK(all_finite(lse));
      CHECK(all_finite(lsm));
      CHECK(all_finite(sm));
      Worst w_lse, w_lsm, w_sm;
      for (std::size_t r = 0; r < R; ++r) {
        w_lse.add(log_error(lse[r], refs[r].lse), "logsumexp", r, 0);
        for (std::size_t c = 0; c < C; ++c) {
          w_lsm.add(log_error(at(lsm, R, C, r, c, transposed), refs[r].log_softmax[c]), "log_softmax", r, c);
          w_sm.add(probability_error(at(sm, R, C, r, c, transposed), refs[r].softmax[c]), "softmax", r, c);
        }
      }
      MESSAGE(fmt::format("{} columns{}: worst error logsumexp {:.2e}, log_softmax {:.2e}, softmax {:.2e}", cols,
                          transposed ? " (strided)" : "", w_lse.error, w_lsm.error, w_sm.error));
      for (const Worst* w : {&w_lse, &w_lsm, &w_sm}) {
        INFO(w->where, ": error ", w->error);
        CHECK(w->error <= 1e-6);
      }
    }
  }
}

TEST_CASE("softmax, log_softmax and logsumexp: gradients at float32 logits in [-2000, 900] are finite and within 1e-6 of long double") {
  const auto rows = wide_logits(48, 100, 5);
  const std::size_t R = rows.size(), C = rows[0].size();
  std::vector<Reference> refs;
  for (const Row& row : rows) refs.push_back(reference(row));
  Generator gen(9);
  for (bool transposed : {false, true}) {
    CAPTURE(transposed);
    const std::int64_t axis = transposed ? 0 : 1;
    Tensor x = matrix(rows, transposed);
    Tensor u = uniform({static_cast<std::int64_t>(R)}, -1, 1, f32, &gen);  // upstream of logsumexp
    Tensor g = uniform(x.shape(), -1, 1, f32, &gen);                       // upstream of the others
    logsumexp(x, axis).backward(u);
    auto d_lse = x.grad().to_vector<double>();
    x.zero_grad();
    log_softmax(x, axis).backward(g);
    auto d_lsm = x.grad().to_vector<double>();
    x.zero_grad();
    softmax(x, axis).backward(g);
    auto d_sm = x.grad().to_vector<double>();
    CHECK(all_finite(d_lse));
    CHECK(all_finite(d_lsm));
    CHECK(all_finite(d_sm));
    // d logsumexp = u p;  d log_softmax = g - p sum(g);  d softmax = p (g - sum(g p))
    auto uv = u.to_vector<double>(), gv = g.to_vector<double>();
    Worst w_lse, w_lsm, w_sm;
    for (std::size_t r = 0; r < R; ++r) {
      const auto& p = refs[r].softmax;
      long double sum_g = 0, sum_gp = 0;
      for (std::size_t c = 0; c < C; ++c) {
        sum_g += at(gv, R, C, r, c, transposed);
        sum_gp += at(gv, R, C, r, c, transposed) * p[c];
      }
      for (std::size_t c = 0; c < C; ++c) {
        const long double gc = at(gv, R, C, r, c, transposed);
        w_lse.add(log_error(at(d_lse, R, C, r, c, transposed), uv[r] * p[c]), "d logsumexp", r, c);
        w_lsm.add(log_error(at(d_lsm, R, C, r, c, transposed), gc - p[c] * sum_g), "d log_softmax", r, c);
        w_sm.add(log_error(at(d_sm, R, C, r, c, transposed), p[c] * (gc - sum_gp)), "d softmax", r, c);
      }
    }
    MESSAGE(fmt::format("gradients{}: worst error logsumexp {:.2e}, log_softmax {:.2e}, softmax {:.2e}",
                        transposed ? " (strided)" : "", w_lse.error, w_lsm.error, w_sm.error));
    // Held to 1e-6 too: a backward that exponentiates the rounded float32 output (exp(x - lse),
    // as PyTorch's does) is off by up to half an ulp of lse, 2^-14 = 6.1e-5 near 2 000.
    for (const Worst* w : {&w_lse, &w_lsm, &w_sm}) {
      INFO(w->where, ": error ", w->error);
      CHECK(w->error <= 1e-6);
    }
  }
}

TEST_CASE("cross_entropy: float32 logits in [-2000, 900] give finite losses within 1e-6 of long double, and finite gradients") {
  for (std::int64_t cols : {48, 30000}) {
    CAPTURE(cols);
    const auto rows = wide_logits(cols, cols == 48 ? 100 : 8, 33 + cols);
    const std::size_t R = rows.size(), C = rows[0].size();
    Generator gen(12);
    // targets anywhere: on the winning logit (loss near 0), or 2 900 below it (loss 2 900)
    Tensor target = randint(0, cols, {static_cast<std::int64_t>(R)}, &gen);
    auto t = target.to_vector<std::int64_t>();
    std::vector<Reference> refs;
    std::vector<long double> want;
    long double want_sum = 0;
    for (std::size_t r = 0; r < R; ++r) {
      refs.push_back(reference(rows[r]));
      want.push_back(refs[r].lse - static_cast<long double>(rows[r][t[r]]));
      want_sum += want.back();
    }
    Tensor logits = matrix(rows);
    auto none = nn::cross_entropy(logits, target, -100, nn::Reduction::none).to_vector<double>();
    REQUIRE(none.size() == R);
    CHECK(all_finite(none));
    Worst w_none;
    for (std::size_t r = 0; r < R; ++r) w_none.add(log_error(none[r], want[r]), "cross_entropy", r, t[r]);
    const double sum = nn::cross_entropy(logits, target, -100, nn::Reduction::sum).item();
    Tensor mean = nn::cross_entropy(logits, target);
    const double mean_error = log_error(mean.item(), want_sum / R), sum_error = log_error(sum, want_sum);
    // d mean / d logits = (softmax - one_hot(target)) / R; compared at the scale of one row, R times that
    mean.backward();
    auto d = logits.grad().to_vector<double>();
    CHECK(all_finite(d));
    Worst w_grad;
    for (std::size_t r = 0; r < R; ++r)
      for (std::size_t c = 0; c < C; ++c) {
        const long double one_hot = static_cast<std::int64_t>(c) == t[r] ? 1 : 0;
        w_grad.add(log_error(d[r * C + c] * R, refs[r].softmax[c] - one_hot), "d cross_entropy", r, c);
      }
    MESSAGE(fmt::format("cross_entropy, {} classes: worst error per row {:.2e}, mean {:.2e}, sum {:.2e}, gradient {:.2e}",
                        cols, w_none.error, mean_error, sum_error, w_grad.error));
    INFO(w_none.where, "; ", w_grad.where);
    CHECK(w_none.error <= 1e-6);
    CHECK(mean_error <= 1e-6);
    CHECK(sum_error <= 1e-6);
    CHECK(w_grad.error <= 1e-6);
  }
}

TEST_CASE("logsumexp of all -inf is -inf with a zero, non-NaN gradient") {
  const double inf = std::numeric_limits<double>::infinity();
  Tensor x = tensor({{-inf, -inf, -inf}, {0.0, -inf, 1.0}}, f64).requires_grad_();
  Tensor y = logsumexp(x, 1);
  auto v = y.to_vector<double>();
  CHECK(v[0] == -inf);
  CHECK(v[1] == doctest::Approx(std::log(1 + std::exp(1.0))).epsilon(1e-14));
  y.backward(tensor({1.0, 1.0}, f64));
  auto g = x.grad().to_vector<double>();
  for (double gi : g) CHECK_FALSE(std::isnan(gi));
  CHECK(g[0] == 0.0);
  CHECK(g[1] == 0.0);
  CHECK(g[2] == 0.0);
  CHECK(g[4] == 0.0);  // exp(-inf - lse)
  CHECK(g[3] + g[5] == doctest::Approx(1.0).epsilon(1e-14));
}

TEST_CASE("softmax gradients stay finite for float32 logits of large magnitude") {
  Tensor x = tensor({{800, -1500, 10}, {-2000, -1999, -1998}}).requires_grad_();
  Tensor y = sum(log_softmax(x, 1) * tensor({{1, 0, 0}, {0, 0, 1}}));
  y.backward();
  auto g = x.grad().to_vector<double>();
  for (double gi : g) CHECK(std::isfinite(gi));
  CHECK(g[0] == doctest::Approx(0).scale(1));
  CHECK(g[5] == doctest::Approx(1 - 1 / (1 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-5));
}

TEST_CASE("clip_grad_norm with an inf or NaN gradient: error_if_nonfinite throws and leaves every gradient as it was") {
  for (Dtype dtype : {f32, f64})
    for (double bad : {INFINITY, NAN})
      for (double norm_type : {2.0, 1.0, optim::kInfinityNorm}) {
        CAPTURE(dtype_name(dtype));
        CAPTURE(bad);
        CAPTURE(norm_type);
        Tensor a = zeros({3}, dtype).requires_grad_(), b = zeros({2}, dtype).requires_grad_();
        a.set_grad(tensor({bad, -2.0, 0.5}, dtype));
        b.set_grad(tensor({3.0, -0.0}, dtype));
        const auto a_before = a.grad().to_vector<double>(), b_before = b.grad().to_vector<double>();
        const std::string message = error_of([&] { optim::clip_grad_norm({a, b}, 1.0, norm_type, true); });
        CHECK(matches(message, fmt::format(R"(clip_grad_norm: the total norm of order {} of the gradients is {}; the gradients are left unchanged)",
                                           norm_type, std::isnan(bad) ? "nan" : "inf")));
        // bit for bit, NaN included
        const auto a_after = a.grad().to_vector<double>(), b_after = b.grad().to_vector<double>();
        CHECK(std::memcmp(a_after.data(), a_before.data(), 3 * sizeof(double)) == 0);
        CHECK(std::memcmp(b_after.data(), b_before.data(), 2 * sizeof(double)) == 0);
      }
}

TEST_CASE("clip_grad_norm with an inf or NaN gradient and no error: scales by max_norm / (norm + 1e-6), as PyTorch") {
  for (Dtype dtype : {f32, f64})
    for (double norm_type : {2.0, 1.0, optim::kInfinityNorm}) {
      CAPTURE(dtype_name(dtype));
      CAPTURE(norm_type);
      // an infinite norm: the factor is 0, finite gradients become 0 (keeping their sign), inf * 0 = NaN
      Tensor a = zeros({3}, dtype).requires_grad_(), b = zeros({2}, dtype).requires_grad_();
      a.set_grad(tensor({INFINITY, -2.0, 0.5}, dtype));
      b.set_grad(tensor({3.0, -0.0}, dtype));
      CHECK(optim::clip_grad_norm({a, b}, 1.0, norm_type) == INFINITY);
      auto ga = a.grad().to_vector<double>(), gb = b.grad().to_vector<double>();
      CHECK(std::isnan(ga[0]));
      CHECK((ga[1] == 0 && std::signbit(ga[1])));
      CHECK((ga[2] == 0 && !std::signbit(ga[2])));
      CHECK((gb[0] == 0 && !std::signbit(gb[0])));
      CHECK((gb[1] == 0 && std::signbit(gb[1])));
      // a NaN norm: the factor is NaN, and so is every gradient
      a.set_grad(tensor({NAN, -2.0, 0.5}, dtype));
      b.set_grad(tensor({3.0, -0.0}, dtype));
      CHECK(std::isnan(optim::clip_grad_norm({a, b}, 1.0, norm_type)));
      for (double g : a.grad().to_vector<double>()) CHECK(std::isnan(g));
      for (double g : b.grad().to_vector<double>()) CHECK(std::isnan(g));
    }
}

TEST_CASE("a SimpleRNN (tanh) over T = 100 trained 1 000 steps with clip_grad_norm stays finite and learns") {
  manual_seed(3);
  nn::RNN rnn(1, 8);
  nn::Linear head(8, 1);
  std::vector<Tensor> params = rnn.parameters();
  for (auto& p : head.parameters()) params.push_back(p);
  optim::Adam adam(params, {.lr = 1e-2});
  // a tenth of the sum of 100 inputs in [-1, 1]: the answer needs every step, so the gradient
  // flows back 100 steps
  const std::int64_t B = 16, T = 100;
  Generator gen(4);
  Tensor x = uniform({B, T, 1}, -1, 1, f32, &gen);
  Tensor y = sum(x, 1) / 10.0;  // [B, 1]
  double first = 0, last = 0, largest_norm = 0;
  int clipped = 0;
  for (int step = 1; step <= 1000; ++step) {
    Tensor h = reshape(slice(rnn(x), 1, T - 1, T), {B, 8});
    Tensor loss = nn::mse_loss(head(h), y);
    adam.zero_grad();
    loss.backward();
    const double norm = optim::clip_grad_norm(params, 0.5);
    clipped += norm > 0.5;
    largest_norm = std::max(largest_norm, norm);
    adam.step();
    (step == 1 ? first : last) = loss.item();
  }
  MESSAGE(fmt::format("SimpleRNN, T = 100: loss {:.4g} -> {:.4g}; {} of 1 000 steps clipped (largest norm {:.3g})", first,
                      last, clipped, largest_norm));
  CHECK(std::isfinite(last));
  for (auto& p : params) CHECK(all_finite(p.to_vector<double>()));
  CHECK(clipped > 0);       // the clipping was exercised
  CHECK(last < first / 4);  // and the model learned
}
