// A weight read by many nodes (a recurrent weight at every step): the engine sums its gradient's
// products dY_t^T x_t itself (autograd/engine_detail.hpp). The sums must equal the per-step
// products added up, through every form of product, both ways of summing, the early fold of a
// long sequence, grad(), checkpointing and second order.
#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

/// The three ways a step can read its weight: linear (x W^T + b), matmul(x, W^T) and matmul(x, W).
enum class Form { linear, matmul_transposed, matmul };

/// [rows, in] x weight -> [rows, out], with W stored [out, in] (or [in, out] for Form::matmul).
Tensor step(Form form, const Tensor& x, const Tensor& w, const Tensor& b) {
  switch (form) {
    case Form::linear: return linear(x, w, b);
    case Form::matmul_transposed: return matmul(x, w, false, true);
    case Form::matmul: return matmul(x, w);
  }
  return {};
}

/// sum over steps of sum(tanh(step(x_t)) * c_t); the weight's gradient computed independently:
/// sum_t g_t^T x_t (or x_t^T g_t) with g_t = c_t (1 - tanh^2), each product on its own in float64.
struct Sequence {
  Form form;
  std::vector<Tensor> xs, cs;
  Tensor w, b;

  Sequence(Form f, std::int64_t in, std::int64_t out, const std::vector<std::int64_t>& rows, std::uint64_t seed)
      : form(f) {
    Generator gen(seed);
    for (std::int64_t r : rows) {
      xs.push_back(uniform({r, in}, -1, 1, f64, &gen));
      cs.push_back(uniform({r, out}, -1, 1, f64, &gen));
    }
    w = uniform(form == Form::matmul ? Shape{in, out} : Shape{out, in}, -0.5, 0.5, f64, &gen).requires_grad_();
    b = uniform({out}, -0.5, 0.5, f64, &gen).requires_grad_();
  }
  Tensor loss() const {
    Tensor total = scalar(0.0, f64);
    for (std::size_t t = 0; t < xs.size(); ++t) total = total + sum(tanh(step(form, xs[t], w, b)) * cs[t]);
    return total;
  }
  Tensor expected_weight_gradient() const {
    autograd::NoGradGuard no_grad;
    Tensor total = zeros(w.shape(), f64);
    for (std::size_t t = 0; t < xs.size(); ++t) {
      Tensor y = tanh(step(form, xs[t], w, b));
      Tensor g = cs[t] * (1.0 - y * y);
      total = total + (form == Form::matmul ? matmul(xs[t], g, true, false) : matmul(g, xs[t], true, false));
    }
    return total;
  }
};

}  // namespace

TEST_CASE("weight gradients over many steps: equal to the per-step products added up") {
  // 12 x 9 = 108 entries: one running sum; 130 x 90 at 12 rows a step: stacked rows, folded 132
  // at a time (at least 128, and small enough to fold beside the backward); 256 x 300 at 12 rows
  // a step: too wide for that, 1032 rows at a time (the steps' rows cross those points inside the
  // sequence); at 40 rows a step: a running sum (LIBXSMM's range); steps of 256 rows and more
  // among small ones (each of those its own product, the small ones' rows stacked). Steps of 0
  // and 1 rows too, and weights with no entries.
  struct Case {
    std::int64_t in, out;
    std::vector<std::int64_t> rows;
  };
  const std::vector<Case> cases{{9, 12, {4, 4, 3, 1, 0, 2}}, {90, 130, std::vector<std::int64_t>(100, 12)},
                                {300, 256, std::vector<std::int64_t>(100, 12)},
                                {90, 130, std::vector<std::int64_t>(30, 40)},
                                {90, 130, {400, 12, 12, 700, 5, 300, 256, 3}},
                                {90, 130, {5, 0, 1, 7}},
                                {0, 6, {3, 2}},
                                {5, 0, {3, 2}}};
  for (Form form : {Form::linear, Form::matmul_transposed, Form::matmul}) {
    for (const auto& c : cases) {
      INFO("form ", static_cast<int>(form), ", weight ", c.out, " x ", c.in, ", ", c.rows.size(), " steps");
      Sequence seq(form, c.in, c.out, c.rows, 7);
      seq.loss().backward();
      const Tensor expected = seq.expected_weight_gradient();
      check_close(seq.w.grad(), expected, 1e-12 * (1 + max_abs_diff(expected, zeros_like(expected))));
      // grad() sums them the same way; create_graph records every product as an op.
      const Tensor by_grad = autograd::grad({seq.loss()}, {seq.w})[0];
      CHECK(same_bits(by_grad, seq.w.grad()));
      const Tensor recorded = autograd::grad({seq.loss()}, {seq.w}, {}, true)[0];
      check_close(recorded, expected, 1e-12 * (1 + max_abs_diff(expected, zeros_like(expected))));
    }
  }
}

TEST_CASE("weight gradients over many steps: wide products fold at 16 MiB, with the same sum") {
  // 64 rows x (8000 + 192) float64 = 4 MiB of factors per step: the fourth step reaches the bound
  // (at 256 rows, below the 1024-row one), the last two are folded when the gradient is complete.
  Sequence seq(Form::linear, 192, 8000, std::vector<std::int64_t>(6, 64), 3);
  seq.loss().backward();
  const Tensor expected = seq.expected_weight_gradient();
  check_close(seq.w.grad(), expected, 1e-12 * (1 + max_abs_diff(expected, zeros_like(expected))));
}

TEST_CASE("weight gradients over many steps: a weight also read another way, in a recurrence, gradcheck") {
  // h_t = tanh(x_t W_ih^T + b + h_{t-1} W_hh^T) + sum of W_hh's first row: W_hh gets products
  // from every step and a plain gradient from the sum; W_ih products from every step.
  for (std::int64_t hidden : {3, 100}) {
    INFO("hidden ", hidden);
    Generator gen(11);
    std::vector<Tensor> xs;
    for (int t = 0; t < 5; ++t) xs.push_back(uniform({2, 4}, -1, 1, f64, &gen));
    auto f = [&](const std::vector<Tensor>& in) {
      const Tensor &w_ih = in[0], &w_hh = in[1], &b = in[2];
      Tensor h = zeros({2, hidden}, f64), total = scalar(0.0, f64);
      for (const auto& x : xs) {
        h = tanh(linear(x, w_ih, b) + matmul(h, w_hh, false, true));
        total = total + sum(h * h) + sum(slice(w_hh, 0, 0, 1));
      }
      return total;
    };
    const std::vector<Tensor> inputs{uniform({hidden, 4}, -0.5, 0.5, f64, &gen).requires_grad_(),
                                     uniform({hidden, hidden}, -0.3, 0.3, f64, &gen).requires_grad_(),
                                     uniform({hidden}, -0.5, 0.5, f64, &gen).requires_grad_()};
    if (hidden == 3) {
      check_gradients(f, inputs);
    } else {
      // 10 000 entries: the first-order check of every entry costs too much here; compare with
      // the gradients that create_graph computes product by product instead.
      const auto taken = autograd::grad({f(inputs)}, inputs);
      const auto recorded = autograd::grad({f(inputs)}, inputs, {}, true);
      for (std::size_t i = 0; i < inputs.size(); ++i) check_close(taken[i], recorded[i], 1e-12);
    }
  }
}

TEST_CASE("weight gradients over many steps: with checkpointing, bit for bit") {
  // Pieces of one, two and three steps; a 12 x 9 weight (running sum) and a 130 x 90 one (400 rows
  // a step, beyond LIBXSMM's range: stacked).
  for (std::int64_t out : {12, 130}) {
    for (int piece_steps : {1, 2, 3}) {
      INFO(out, " outputs, pieces of ", piece_steps);
      Generator gen(5);
      const std::int64_t in = out == 12 ? 9 : 90;
      std::vector<Tensor> xs;
      for (int t = 0; t < 6; ++t) xs.push_back(uniform({400, in}, -1, 1, f64, &gen));
      Tensor w = uniform({out, in}, -0.2, 0.2, f64, &gen).requires_grad_();
      auto piece = [&](int first) {
        return [&, first](const std::vector<Tensor>& acc) -> std::vector<Tensor> {
          Tensor total = acc[0];
          for (int t = first; t < first + piece_steps && t < 6; ++t) total = total + sum(tanh(linear(xs[t], w)));
          return {total};
        };
      };
      auto run = [&](bool checkpointed) {
        w.zero_grad();
        Tensor total = scalar(0.0, f64);
        for (int first = 0; first < 6; first += piece_steps)
          total = checkpointed ? autograd::checkpoint(piece(first), {total})[0] : piece(first)({total})[0];
        total.backward();
        return w.grad();
      };
      const Tensor plain = run(false), checkpointed = run(true);
      CHECK(same_bits(plain, checkpointed));
    }
  }
}

TEST_CASE("weight gradients over many steps: summed beside the backward on a worker, one thread's bits; a failed backward leaves the next right") {
  // On two threads a running sum's products go to a worker (core/parallel.hpp's SideLane) while
  // the backward goes on; stacked ones too. Against one thread, where they run in place.
  struct Case {
    std::int64_t in, out;
    std::vector<std::int64_t> rows;
  };
  const std::vector<Case> cases{{32, 96, std::vector<std::int64_t>(40, 32)},    // a GRU's W_hh: a running sum
                                {90, 130, std::vector<std::int64_t>(100, 12)},  // stacked, 132 rows at a time
                                {90, 130, std::vector<std::int64_t>(30, 40)}};
  const int saved = num_threads();
  for (const auto& c : cases) {
    INFO("weight ", c.out, " x ", c.in, ", ", c.rows.size(), " steps");
    std::vector<Tensor> grads;
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      Sequence seq(Form::linear, c.in, c.out, c.rows, 17);
      seq.loss().backward();
      grads.push_back(seq.w.grad());
    }
    CHECK(same_bits(grads[0], grads[1]));
  }
  // The first step's term fails in backward (anomaly: sqrt's derivative at 0), after the later
  // steps' products went to the worker. The next backward gets the same gradient as before.
  set_num_threads(2);
  Sequence seq(Form::linear, 32, 96, std::vector<std::int64_t>(40, 32), 17);
  seq.loss().backward();
  const Tensor expected = seq.w.grad();
  seq.w.zero_grad();
  {
    autograd::AnomalyModeGuard anomaly;
    Tensor early = sum(sqrt(zeros({1}, f64) * slice(seq.w, 0, 0, 1)));  // made first: its backward runs last
    Tensor failing = early + seq.loss();
    CHECK(matches(error_of([&] { failing.backward(); }), "anomaly: the backward of 'sqrt'"));
  }
  seq.w.zero_grad();
  seq.loss().backward();
  CHECK(same_bits(seq.w.grad(), expected));
  set_num_threads(saved);
}
