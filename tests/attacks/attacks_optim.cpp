// Attacks (attacks.hpp) on: optim (optimizers, clipping; learning-rate schedules).
#include <cmath>
#include <cstdint>
#include <limits>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

using namespace xgrad::optim;

const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

/// A parameter [1, 2] (f64) whose gradient is set to `grad`.
Tensor param_with_grad(std::vector<double> grad = {2, 4}) {
  Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
  p.set_grad(tensor({grad[0], grad[1]}, f64));
  return p;
}

/// A plain SGD over one f64 parameter.
std::vector<Tensor> one_param() { return {tensor({1.0, 2.0}, f64).requires_grad_()}; }

/// Everything in a state dict as (name, values), to compare states.
std::vector<std::pair<std::string, std::vector<double>>> flat(const NamedTensors& state) {
  std::vector<std::pair<std::string, std::vector<double>>> out;
  for (const auto& [name, t] : state) out.emplace_back(name, t.to(f64).to_vector<double>());
  return out;
}

/// A momentum SGD over p that has taken one step (so it has a momentum buffer).
void step_once(SGD& sgd, const Tensor& p) {
  p.set_grad(tensor({2.0, 4.0}, f64));
  sgd.step();
}

/// A state dict of `base` with `key` replaced by `value` (added when absent).
NamedTensors with_entry(NamedTensors state, const std::string& key, const Tensor& value) {
  for (auto& [name, t] : state)
    if (name == key) {
      t = value;
      return state;
    }
  state.emplace_back(key, value);
  return state;
}

/// The optimizer refuses `state` and is left exactly as it was.
void refuses_state(Optimizer& opt, const NamedTensors& state, const std::string& pattern) {
  const auto before = flat(opt.state_dict());
  expect_error([&] { opt.load_state_dict(state); }, pattern);
  expect(flat(opt.state_dict()) == before, "the optimizer state unchanged after a refused load");
}

// clang-format off
Register optimizers{"optimizers", {
  {"SGD: lr NaN, negative, infinite", [] {
    expect_error([] { SGD sgd(one_param(), {.lr = kNaN}); }, "learning rate must be non-negative, got nan \\(SGD, lr\\)");
    expect_error([] { SGD sgd(one_param(), {.lr = -0.1}); }, "learning rate must be non-negative, got -0.1 \\(SGD, lr\\)");
    expect_error([] { SGD sgd(one_param(), {.lr = kInf}); }, "learning rate must be finite, got inf \\(SGD, lr\\)");
  }},
  {"SGD: momentum and weight_decay out of range", [] {
    expect_error([] { SGD sgd(one_param(), {.momentum = -0.5}); }, "SGD: momentum must be non-negative, got -0.5");
    expect_error([] { SGD sgd(one_param(), {.momentum = kNaN}); }, "SGD: momentum must be non-negative, got nan");
    expect_error([] { SGD sgd(one_param(), {.weight_decay = kInf}); }, "SGD: weight_decay must be finite, got inf");
    expect_error([] { SGD sgd(one_param(), {.nesterov = true}); }, "SGD: Nesterov momentum needs momentum > 0");
  }},
  {"Adam: betas out of [0, 1)", [] {
    expect_error([] { Adam a(one_param(), {.beta1 = 1.0}); }, "Adam: betas must be in \\[0, 1\\), got \\(1, 0.999\\)");
    expect_error([] { Adam a(one_param(), {.beta2 = kNaN}); }, "Adam: betas.*\\(0.9, nan\\)");
    expect_error([] { Adam a(one_param(), {.beta1 = -0.1}); }, "Adam: betas.*-0.1");
  }},
  {"Adam/AdamW: eps and weight_decay out of range", [] {
    expect_error([] { Adam a(one_param(), {.eps = -1e-8}); }, "Adam: eps must be non-negative, got -1e-08");
    expect_error([] { Adam a(one_param(), {.eps = kNaN}); }, "Adam: eps.*nan");
    expect_error([] { AdamW a(one_param(), {.weight_decay = -0.01}); }, "weight_decay must be non-negative, got -0.01");
  }},
  {"RMSprop and Adagrad: out-of-range fields", [] {
    expect_error([] { RMSprop r(one_param(), {.alpha = 1.5}); }, "RMSprop: alpha must be at most 1, got 1.5");
    expect_error([] { RMSprop r(one_param(), {.momentum = kNaN}); }, "RMSprop: momentum.*nan");
    expect_error([] { Adagrad a(one_param(), {.lr_decay = kNaN}); }, "Adagrad: lr_decay.*nan");
    expect_error([] { Adagrad a(one_param(), {.initial_accumulator_value = -1}); }, "Adagrad: initial_accumulator_value must be non-negative, got -1");
  }},
  {"optimizer: an empty parameter list", [] {
    expect_error([] { Adam a({}); }, "optimizer: got an empty parameter list");
  }},
  {"optimizer: an i64 or non-leaf parameter", [] {
    expect_error([] { SGD sgd({tensor({1, 2}, i64)}); }, "optimizer: parameter 0 must be a floating leaf tensor");
    Tensor leaf = tensor({1.0}).requires_grad_();
    expect_error([&] { SGD sgd({leaf, leaf * 2.0}); }, "optimizer: parameter 1 must be a floating leaf tensor");
  }},
  {"SGD: a parameter listed twice is stepped once", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
    SGD sgd({p, p, p}, {.lr = 0.1});
    expect(sgd.parameters().size() == 1, "one parameter kept");
    sum(p * p).backward();  // g = 2p = [2, 4]
    sgd.step();
    expect_values(p, {1 - 0.1 * 2, 2 - 0.1 * 4});
  }},
  {"SGD with momentum: two steps against a hand computation", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
    SGD sgd({p}, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5, .weight_decay = 0.1});
    p.set_grad(tensor({2.0, 4.0}, f64));
    sgd.step();  // d = g + 0.1 p = [2.1, 4.2]; b = d (first); p -= 0.1 b
    const double p0 = 1 - 0.1 * 2.1, p1 = 2 - 0.1 * 4.2;
    expect_values(p, {p0, p1}, 1e-15);
    sgd.step();  // d = g + 0.1 p; b = 0.9 b + 0.5 d
    const double b0 = 0.9 * 2.1 + 0.5 * (2 + 0.1 * p0), b1 = 0.9 * 4.2 + 0.5 * (4 + 0.1 * p1);
    expect_values(p, {p0 - 0.1 * b0, p1 - 0.1 * b1}, 1e-15);
  }},
  {"Adam: the first step moves each weight by about lr (PyTorch)", [] {
    Tensor p = param_with_grad({2, -0.5});
    Adam adam({p}, {.lr = 0.1});
    adam.step();
    // m = 0.1 g, v = 0.001 g^2; m / (1 - 0.9) / (sqrt(v) / sqrt(1 - 0.999) + eps) = g / (|g| + 1e-8)
    expect_values(p, {1 - 0.1 * 2 / (2 + 1e-8), 2 + 0.1 * 0.5 / (0.5 + 1e-8)}, 1e-12);
  }},
  {"Adagrad with lr_decay: two steps against a hand computation", [] {
    Tensor p = param_with_grad({2, -1});
    Adagrad a({p}, {.lr = 0.1, .lr_decay = 0.5});
    a.step();  // s = g^2; p -= 0.1 g / (|g| + 1e-10)
    const double p0 = 1 - 0.1 * 2 / (2 + 1e-10), p1 = 2 + 0.1 * 1 / (1 + 1e-10);
    expect_values(p, {p0, p1}, 1e-15);
    p.set_grad(tensor({1.0, 1.0}, f64));
    a.step();  // lr / (1 + 0.5); s = g1^2 + g2^2
    expect_values(p, {p0 - 0.1 / 1.5 / (std::sqrt(5.0) + 1e-10), p1 - 0.1 / 1.5 / (std::sqrt(2.0) + 1e-10)}, 1e-15);
  }},
  {"RMSprop: the first step (PyTorch)", [] {
    Tensor p = param_with_grad({2, -1});
    RMSprop r({p}, {.lr = 0.01});
    r.step();  // s = 0.01 g^2; p -= lr g / (sqrt(s) + eps)
    expect_values(p, {1 - 0.01 * 2 / (0.2 + 1e-8), 2 + 0.01 * 1 / (0.1 + 1e-8)}, 1e-12);
  }},
  {"optimizer: a gradient of the wrong shape", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
    expect_error([&] { p.set_grad(zeros({3}, f64)); }, "set_grad.*\\[3\\].*\\[2\\]");
  }},
  {"optimizer: a parameter converted to f64 after its buffers were made f32", [] {
    Tensor p = tensor({1.0, 2.0}).requires_grad_();
    Adam adam({p}, {.lr = 0.1});
    p.set_grad(tensor({1.0, 1.0}));
    adam.step();
    const auto before = p.to_vector<float>();
    p.set_data(p.detach().to(f64));  // what Module::to(f64) does
    p.set_grad(tensor({1.0, 1.0}, f64));
    expect_error([&] { adam.step(); }, "Adam: .*exp_avg.*f32.*f64");
    expect_values(p, {before[0], before[1]});
  }},
  {"optimizer: a parameter without a gradient is skipped", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
    Adam adam({p});
    adam.step();
    expect_values(p, {1, 2});
    expect(adam.state_dict().size() == 2, "no state for a parameter never stepped");
  }},
  {"set_lr: NaN, negative, infinite leave lr unchanged", [] {
    SGD sgd(one_param(), {.lr = 0.25});
    expect_error([&] { sgd.set_lr(kNaN); }, "learning rate must be non-negative, got nan \\(SGD, set_lr\\)");
    expect_error([&] { sgd.set_lr(-1); }, "got -1 \\(SGD, set_lr\\)");
    expect_error([&] { sgd.set_lr(kInf); }, "must be finite, got inf \\(SGD, set_lr\\)");
    expect(sgd.lr() == 0.25, "lr still 0.25");
  }},
  {"load_state_dict: another parameter count", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
    SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
    step_once(sgd, p);
    refuses_state(sgd, with_entry(sgd.state_dict(), "num_parameters", scalar(2, i64)),
                  "the state is for 2 parameters, but this SGD has 1");
    refuses_state(sgd, with_entry(sgd.state_dict(), "state.1.momentum_buffer", zeros({2}, f64)),
                  "unexpected entry 'state.1.momentum_buffer' for 1 parameters");
  }},
  {"load_state_dict: step -1, 1.5 or NaN", [] {
    Tensor p = param_with_grad();
    Adam adam({p});
    adam.step();
    refuses_state(adam, with_entry(adam.state_dict(), "state.0.step", scalar(-1, f64)),
                  "'state.0.step' is -1; a step count must be a whole number >= 0 \\(Adam\\)");
    refuses_state(adam, with_entry(adam.state_dict(), "state.0.step", scalar(1.5, f64)), "'state.0.step' is 1.5");
    refuses_state(adam, with_entry(adam.state_dict(), "state.0.step", scalar(kNaN, f64)), "'state.0.step' is nan");
  }},
  {"load_state_dict: lr NaN or negative", [] {
    Tensor p = param_with_grad();
    RMSprop rms({p}, {.lr = 0.05});
    rms.step();
    refuses_state(rms, with_entry(rms.state_dict(), "lr", scalar(kNaN, f64)),
                  "learning rate must be non-negative, got nan \\(RMSprop, load_state_dict 'lr'\\)");
    refuses_state(rms, with_entry(rms.state_dict(), "lr", scalar(-2, f64)), "got -2 \\(RMSprop, load_state_dict 'lr'\\)");
    expect(rms.lr() == 0.05, "lr unchanged");
  }},
  {"load_state_dict: wrong-shaped, negative or unknown buffers", [] {
    Tensor p = param_with_grad();
    Adam adam({p});
    adam.step();
    refuses_state(adam, with_entry(adam.state_dict(), "state.0.exp_avg", zeros({3}, f64)),
                  "'state.0.exp_avg' has shape \\[3\\], expected \\[2\\]");
    refuses_state(adam, with_entry(adam.state_dict(), "state.0.exp_avg_sq", tensor({1.0, -1.0}, f64)),
                  "'state.0.exp_avg_sq' holds -1; it must be >= 0 \\(Adam\\)");
    refuses_state(adam, with_entry(adam.state_dict(), "state.0.momentum_buffer", zeros({2}, f64)),
                  "Adam keeps no buffer 'momentum_buffer'");
  }},
  {"load_state_dict: a key that the optimizer never writes", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_();
    SGD sgd({p}, {.lr = 0.1, .momentum = 0.9});
    step_once(sgd, p);
    refuses_state(sgd, {{"state.0.momentum_buffer junk", zeros({2}, f64)}}, "unexpected entry 'state.0.momentum_buffer junk'");
    refuses_state(sgd, {{"state.+0.momentum_buffer", zeros({2}, f64)}}, "unexpected entry 'state.\\+0.momentum_buffer'");
    refuses_state(sgd, {{"state.00.momentum_buffer", zeros({2}, f64)}}, "unexpected entry 'state.00.momentum_buffer'");
  }},
  {"load_state_dict: a saved state resumes bit-identically", [] {
    Tensor p = tensor({1.0, 2.0}, f64).requires_grad_(), q = tensor({1.0, 2.0}, f64).requires_grad_();
    Adam a({p}, {.lr = 0.1}), b({q}, {.lr = 0.3});
    p.set_grad(tensor({2.0, -1.0}, f64));
    a.step();
    b.load_state_dict(a.state_dict());
    q.copy_(p);
    p.set_grad(tensor({0.5, 0.25}, f64));
    q.set_grad(tensor({0.5, 0.25}, f64));
    a.step();
    b.step();
    expect(b.lr() == 0.1, "the loaded lr");
    expect_values(q, p.to_vector<double>());
  }},
  {"clip_grad_norm: max_norm NaN or negative", [] {
    Tensor p = param_with_grad();
    expect_error([&] { clip_grad_norm({p}, kNaN); }, "clip_grad_norm: max_norm must be non-negative, got nan");
    expect_error([&] { clip_grad_norm({p}, -1); }, "clip_grad_norm: max_norm must be non-negative, got -1");
    expect_error([&] { clip_grad_norm({p}, 1, kNaN); }, "clip_grad_norm: norm_type must be positive, got nan");
    expect_error([&] { clip_grad_value({p}, kNaN); }, "clip_grad_value: clip_value must be non-negative, got nan");
    expect_values(p.grad(), {2, 4});
  }},
  {"clip_grad_norm: a NaN gradient with error_if_nonfinite leaves the gradients", [] {
    Tensor p = param_with_grad({kNaN, 4});
    expect_error([&] { clip_grad_norm({p}, 1, 2, true); }, "clip_grad_norm: the total norm of order 2 of the gradients is nan");
    expect_values(p.grad(), {kNaN, 4});
  }},
  {"clip_grad_norm: values for the 2-norm and the infinity norm (PyTorch)", [] {
    Tensor p = param_with_grad({3, -4}), q = tensor({0.0}, f64).requires_grad_();  // q has no gradient
    const double n2 = clip_grad_norm({p, q}, 1);
    expect(n2 == 5, "the 2-norm 5 before clipping");
    expect_values(p.grad(), {3 / (5 + 1e-6), -4 / (5 + 1e-6)}, 1e-15);
    Tensor r = param_with_grad({3, -4});
    expect(clip_grad_norm({r}, 2, kInfinityNorm) == 4, "the infinity norm 4");
    expect_values(r.grad(), {3 * 2 / (4 + 1e-6), -4 * 2 / (4 + 1e-6)}, 1e-15);
    Tensor s = param_with_grad({3, -4});
    clip_grad_norm({s}, 10);  // under the limit: unchanged
    expect_values(s.grad(), {3, -4});
  }},
}};

Register schedules{"schedules", {
  {"StepLR: step_size 0 or negative", [] {
    SGD sgd(one_param());
    expect_error([&] { StepLR s(sgd, 0); }, "StepLR: step_size must be at least 1, got 0");
    expect_error([&] { StepLR s(sgd, -3); }, "StepLR: step_size must be at least 1, got -3");
  }},
  {"StepLR: gamma NaN or infinite", [] {
    SGD sgd(one_param());
    expect_error([&] { StepLR s(sgd, 2, kNaN); }, "StepLR: gamma must be positive, got nan");
    expect_error([&] { StepLR s(sgd, 2, kInf); }, "StepLR: gamma must be finite, got inf");
  }},
  {"StepLR: values", [] {
    SGD sgd(one_param(), {.lr = 1});
    StepLR s(sgd, 2, 0.5);
    std::vector<double> lrs;
    for (int i = 0; i < 5; ++i) s.step(), lrs.push_back(sgd.lr());
    expect(lrs == std::vector<double>{1, 0.5, 0.5, 0.25, 0.25}, "1, 0.5, 0.5, 0.25, 0.25");
  }},
  {"ExponentialLR: gamma NaN, 0, infinite", [] {
    SGD sgd(one_param());
    expect_error([&] { ExponentialLR s(sgd, kNaN); }, "ExponentialLR: gamma must be positive, got nan");
    expect_error([&] { ExponentialLR s(sgd, -0.5); }, "ExponentialLR: gamma must be positive, got -0.5");
    expect_error([&] { ExponentialLR s(sgd, kInf); }, "ExponentialLR: gamma must be finite, got inf");
  }},
  {"ExponentialLR: a learning rate that overflows is refused and the schedule stays put", [] {
    SGD sgd(one_param(), {.lr = 1});
    ExponentialLR s(sgd, 1e300);
    s.step();
    expect(sgd.lr() == 1e300 && s.epoch() == 1, "lr 1e300 at epoch 1");
    expect_error([&] { s.step(); }, "learning rate must be finite, got inf \\(SGD, set_lr\\)");
    expect(sgd.lr() == 1e300, "lr unchanged");
    expect(s.epoch() == 1, "the epoch unchanged by a refused step");
  }},
  {"CosineAnnealingLR: T_max 0 or negative, eta_min NaN", [] {
    SGD sgd(one_param());
    expect_error([&] { CosineAnnealingLR s(sgd, 0); }, "CosineAnnealingLR: t_max must be at least 1, got 0");
    expect_error([&] { CosineAnnealingLR s(sgd, -1); }, "t_max must be at least 1, got -1");
    expect_error([&] { CosineAnnealingLR s(sgd, 4, kNaN); }, "CosineAnnealingLR: eta_min must be non-negative, got nan");
  }},
  {"CosineAnnealingLR: values (PyTorch's closed form)", [] {
    SGD sgd(one_param(), {.lr = 1});
    CosineAnnealingLR s(sgd, 4, 0.1);
    const double pi = std::acos(-1.0);
    for (int epoch = 1; epoch <= 6; ++epoch) {
      s.step();
      const double want = 0.1 + 0.9 * (1 + std::cos(pi * epoch / 4)) / 2;
      expect(std::abs(sgd.lr() - want) <= 1e-15, "the closed-form cosine value at epoch " + std::to_string(epoch));
    }
  }},
  {"LinearLR: start_factor 0, NaN; end_factor above 1; total_iters 0", [] {
    SGD sgd(one_param(), {.lr = 0.1});
    expect_error([&] { LinearLR s(sgd, 0.0); }, "LinearLR: start_factor must be in \\(0, 1\\].*got 0 and 1");
    expect_error([&] { LinearLR s(sgd, kNaN); }, "LinearLR: start_factor.*got nan and 1");
    expect_error([&] { LinearLR s(sgd, 0.5, 1.5); }, "LinearLR:.*got 0.5 and 1.5");
    expect_error([&] { LinearLR s(sgd, 0.5, 1, 0); }, "LinearLR: total_iters must be at least 1, got 0");
    expect(sgd.lr() == 0.1, "lr unchanged by the refused schedules");
  }},
  {"LinearLR: warm-up values (PyTorch)", [] {
    SGD sgd(one_param(), {.lr = 0.1});
    LinearLR s(sgd, 0.25, 1, 3);
    std::vector<double> lrs{sgd.lr()};
    for (int i = 0; i < 4; ++i) s.step(), lrs.push_back(sgd.lr());
    const std::vector<double> want{0.025, 0.05, 0.075, 0.1, 0.1};
    for (std::size_t i = 0; i < want.size(); ++i)
      expect(std::abs(lrs[i] - want[i]) <= 1e-15, "warm-up lr " + std::to_string(i));
  }},
  {"ReduceLROnPlateau: factor >= 1, NaN, 0", [] {
    SGD sgd(one_param());
    using M = ReduceLROnPlateau::Mode;
    expect_error([&] { ReduceLROnPlateau s(sgd, M::min, 1.0); }, "ReduceLROnPlateau: factor must be in \\(0, 1\\), got 1");
    expect_error([&] { ReduceLROnPlateau s(sgd, M::min, 2.0); }, "factor must be in \\(0, 1\\), got 2");
    expect_error([&] { ReduceLROnPlateau s(sgd, M::min, kNaN); }, "factor must be in \\(0, 1\\), got nan");
  }},
  {"ReduceLROnPlateau: negative patience, NaN threshold, infinite min_lr", [] {
    SGD sgd(one_param());
    using M = ReduceLROnPlateau::Mode;
    expect_error([&] { ReduceLROnPlateau s(sgd, M::min, 0.1, -1); }, "ReduceLROnPlateau: patience.*got -1, 0, 0.0001 and 0");
    expect_error([&] { ReduceLROnPlateau s(sgd, M::min, 0.1, 2, kNaN); }, "ReduceLROnPlateau:.*got 2, 0, nan and 0");
    expect_error([&] { ReduceLROnPlateau s(sgd, M::min, 0.1, 2, 1e-4, 0, kInf); }, "ReduceLROnPlateau: min_lr must be finite, got inf");
  }},
  {"ReduceLROnPlateau: an unknown mode", [] {
    SGD sgd(one_param());
    expect_error([&] { ReduceLROnPlateau s(sgd, static_cast<ReduceLROnPlateau::Mode>(5)); }, "ReduceLROnPlateau: .*mode.*5");
  }},
  {"ReduceLROnPlateau: a NaN metric counts as no improvement (PyTorch)", [] {
    SGD sgd(one_param(), {.lr = 0.1});
    ReduceLROnPlateau s(sgd, ReduceLROnPlateau::Mode::min, 0.5, 1);
    expect(!s.step(1.0), "a first metric");
    expect(!s.step(kNaN), "one bad epoch, within patience");
    expect(s.step(kNaN), "a second bad epoch reduces");
    expect(sgd.lr() == 0.05, "lr 0.05");
    expect(!s.step(0.5), "a better metric after NaN");
    expect(sgd.lr() == 0.05, "lr still 0.05");
  }},
  {"ReduceLROnPlateau: min_lr floor and cooldown (PyTorch)", [] {
    SGD sgd(one_param(), {.lr = 0.1});
    ReduceLROnPlateau s(sgd, ReduceLROnPlateau::Mode::max, 0.1, 0, 1e-4, 1, 0.04);
    expect(!s.step(1.0), "first");
    expect(s.step(1.0), "no improvement, patience 0: reduce");
    expect(sgd.lr() == 0.04, "floored at min_lr 0.04");
    expect(!s.step(0.5), "cooldown");
    expect(!s.step(0.5), "at min_lr: no further reduction");
    expect(sgd.lr() == 0.04, "lr still 0.04");
  }},
}};
// clang-format on

}  // namespace
}  // namespace xgrad::attacks
