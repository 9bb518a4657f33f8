// optim/: PyTorch trajectories of every optimizer, exact resumption, clipping, schedules.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::optim;

namespace {

std::map<std::string, Tensor> fixture(const std::string& name) {
  std::map<std::string, Tensor> out;
  for (auto& [key, t] : load_safetensors(std::string(XGRAD_FIXTURES) + "/" + name + ".safetensors")) out.emplace(key, t);
  return out;
}

using Make = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

const std::map<std::string, Make>& configurations() {
  static const std::map<std::string, Make> all{
      {"sgd", [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1}); }},
      {"sgd_momentum",
       [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01}); }},
      {"sgd_nesterov", [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.8, .nesterov = true}); }},
      {"rmsprop", [](auto p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01}); }},
      {"rmsprop_centered",
       [](auto p) {
         return std::make_unique<RMSprop>(
             p, RMSpropOptions{.lr = 0.005, .alpha = 0.9, .weight_decay = 0.01, .momentum = 0.5, .centered = true});
       }},
      {"adam", [](auto p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.05}); }},
      {"adam_amsgrad",
       [](auto p) {
         return std::make_unique<Adam>(p, AdamOptions{.lr = 0.05, .beta1 = 0.8, .beta2 = 0.9, .weight_decay = 0.1, .amsgrad = true});
       }},
      {"adamw", [](auto p) { return std::make_unique<AdamW>(p, AdamOptions{.lr = 0.05, .weight_decay = 0.1}); }},
      {"adagrad",
       [](auto p) {
         return std::make_unique<Adagrad>(
             p, AdagradOptions{.lr = 0.1, .lr_decay = 0.01, .weight_decay = 0.01, .initial_accumulator_value = 0.1});
       }},
  };
  return all;
}

/// One step of the fixed problem: loss = mean((tanh(x W^T + b) - y)^2).
double train_step(Optimizer& opt, const Tensor& w, const Tensor& b, const Tensor& x, const Tensor& y) {
  opt.zero_grad();
  Tensor loss = mean(square(tanh(matmul(x, w, false, true) + b) - y));
  loss.backward();
  opt.step();
  return loss.item();
}

}  // namespace

TEST_CASE("every optimizer follows PyTorch's trajectory for 20 steps within 1e-10 (float64)") {
  for (const auto& [name, make] : configurations()) {
    INFO("optimizer ", name);
    auto f = fixture("optim_" + name);
    Tensor w = f["w0"].clone().detach().requires_grad_(), b = f["b0"].clone().detach().requires_grad_();
    auto opt = make({w, b});
    double worst = 0;
    for (std::int64_t step = 0; step < 20; ++step) {
      double loss = train_step(*opt, w, b, f["x"], f["y"]);
      worst = std::max(worst, std::abs(loss - f["loss"].to_vector<double>()[step]));
      worst = std::max(worst, max_abs_diff(w, squeeze(slice(f["w"], 0, step, step + 1), 0)));
      worst = std::max(worst, max_abs_diff(b, squeeze(slice(f["b"], 0, step, step + 1), 0)));
    }
    CHECK(worst <= 1e-10);
  }
}

TEST_CASE("every optimizer updates a large parameter on several threads exactly as on one") {
  // 100 003 elements: the pool splits the update into ranges (and the last range is odd).
  for (const auto& [name, make] : configurations()) {
    INFO("optimizer ", name);
    auto trajectory = [&, make = make](int threads) {
      const int before = num_threads();
      set_num_threads(threads);
      Generator gen(5);
      Tensor w = uniform({100003}, -1, 1, f32, &gen).requires_grad_();
      auto opt = make({w});
      for (int step = 0; step < 3; ++step) {
        opt->zero_grad();
        w.set_grad(uniform({100003}, -1, 1, f32, &gen));  // a fresh gradient each step
        opt->step();
      }
      set_num_threads(before);
      return w.detach().clone();
    };
    CHECK(same_bits(trajectory(1), trajectory(2)));
  }
}

TEST_CASE("resuming from a saved optimizer state continues bit-identically") {
  const auto dir = std::filesystem::temp_directory_path() / "xgrad_test_optim_resume";
  std::filesystem::create_directories(dir);
  auto f = fixture("optim_adam");
  for (const auto& [name, make] : configurations()) {
    INFO("optimizer ", name);
    Tensor w = f["w0"].clone().detach().requires_grad_(), b = f["b0"].clone().detach().requires_grad_();
    auto opt = make({w, b});
    for (int i = 0; i < 7; ++i) train_step(*opt, w, b, f["x"], f["y"]);
    const std::string path = (dir / (name + ".safetensors")).string();
    opt->save(path);
    Tensor w_saved = w.clone().detach(), b_saved = b.clone().detach();
    std::vector<double> expected;
    for (int i = 0; i < 5; ++i) expected.push_back(train_step(*opt, w, b, f["x"], f["y"]));

    Tensor w2 = w_saved.clone().requires_grad_(), b2 = b_saved.clone().requires_grad_();
    auto resumed = make({w2, b2});
    resumed->load(path);
    std::vector<double> got;
    for (int i = 0; i < 5; ++i) got.push_back(train_step(*resumed, w2, b2, f["x"], f["y"]));
    CHECK(got == expected);
    CHECK(w2.to_vector<double>() == w.to_vector<double>());
    CHECK(b2.to_vector<double>() == b.to_vector<double>());
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("optimizer state errors name the entry; a failed load changes nothing") {
  Tensor w = ones({2, 3}, f64).requires_grad_();
  Adam adam({w}, {.lr = 0.1});
  sum(w * w).backward();
  adam.step();
  auto state = adam.state_dict();
  NamedTensors wrong = state;
  wrong.emplace_back("state.5.exp_avg", zeros({2, 3}, f64));
  CHECK(matches(error_of([&] { adam.load_state_dict(wrong); }), R"(unexpected entry 'state\.5\.exp_avg')"));
  NamedTensors bad_shape{{"lr", scalar(0.5, f64)}, {"state.0.exp_avg", zeros({3}, f64)}};
  CHECK(matches(error_of([&] { adam.load_state_dict(bad_shape); }), R"('state\.0\.exp_avg' has shape \[3\], expected \[2, 3\])"));
  CHECK(adam.lr() == 0.1);
  CHECK(matches(error_of([] { SGD({ones({2}, i64)}); }), R"(floating leaf)"));
  CHECK(matches(error_of([] { SGD({ones({2}).requires_grad_()}, {.lr = 0.1, .nesterov = true}); }), R"(Nesterov)"));
}

TEST_CASE("clip_grad_norm: total norm over all gradients, scaling, and non-finite norms") {
  Tensor a = ones({2}, f64).requires_grad_(), b = ones({1}, f64).requires_grad_(), unused = ones({3}, f64).requires_grad_();
  a.set_grad(tensor({3.0, 4.0}, f64));
  b.set_grad(tensor({12.0}, f64));
  CHECK(grad_norm({a, b, unused}) == doctest::Approx(13.0));
  CHECK(grad_norm({a, b}, kInfinityNorm) == 12.0);
  CHECK(grad_norm({a, b}, 1) == doctest::Approx(19.0));
  double norm = clip_grad_norm({a, b, unused}, 6.5);
  CHECK(norm == doctest::Approx(13.0));
  CHECK(grad_norm({a, b}) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK(a.grad().to_vector<double>()[0] == doctest::Approx(1.5).epsilon(1e-6));
  // below the threshold nothing changes
  CHECK(clip_grad_norm({a, b}, 100) == doctest::Approx(6.5).epsilon(1e-6));
  CHECK(a.grad().to_vector<double>()[0] == doctest::Approx(1.5).epsilon(1e-6));

  a.set_grad(tensor({INFINITY, 1.0}, f64));
  std::vector<double> before = b.grad().to_vector<double>();
  CHECK(matches(error_of([&] { clip_grad_norm({a, b}, 1.0, 2, true); }), R"(total norm .* is inf.*left unchanged)"));
  CHECK(b.grad().to_vector<double>() == before);
  CHECK(std::isinf(a.grad().to_vector<double>()[0]));
  a.set_grad(tensor({NAN, 1.0}, f64));
  CHECK(std::isnan(clip_grad_norm({a, b}, 1.0)));  // documented: without the flag, NaN propagates
  CHECK(std::isnan(b.grad().to_vector<double>()[0]));
}

TEST_CASE("clip_grad_value clamps every element") {
  Tensor a = ones({3}).requires_grad_();
  a.set_grad(tensor({-5.0, 0.25, 2.0}).to(f32));
  clip_grad_value({a}, 1.0);
  CHECK(a.grad().to_vector<double>() == std::vector<double>{-1.0, 0.25, 1.0});
  CHECK(matches(error_of([&] { clip_grad_value({a}, -1); }), R"(clip_value must be non-negative)"));
}

TEST_CASE("learning-rate schedules match PyTorch's") {
  auto f = fixture("schedules");
  std::map<std::string, std::function<std::unique_ptr<Schedule>(Optimizer&)>> schedules{
      {"step", [](Optimizer& o) { return std::make_unique<StepLR>(o, 3, 0.5); }},
      {"exponential", [](Optimizer& o) { return std::make_unique<ExponentialLR>(o, 0.9); }},
      {"cosine", [](Optimizer& o) { return std::make_unique<CosineAnnealingLR>(o, 10, 0.01); }},
      {"linear", [](Optimizer& o) { return std::make_unique<LinearLR>(o, 0.25, 1.0, 4); }},
  };
  for (const auto& [name, make] : schedules) {
    INFO("schedule ", name);
    Tensor p = zeros({1}).requires_grad_();
    SGD opt({p}, {.lr = 0.1});
    auto schedule = make(opt);
    auto want = f[name].to_vector<double>();
    for (std::size_t e = 0; e < want.size(); ++e) {
      schedule->step();
      CHECK(opt.lr() == doctest::Approx(want[e]).epsilon(1e-12));
    }
  }
}

TEST_CASE("ReduceLROnPlateau matches PyTorch: patience, cooldown, threshold") {
  auto f = fixture("schedules");
  Tensor p = zeros({1}).requires_grad_();
  SGD opt({p}, {.lr = 1.0});
  ReduceLROnPlateau plateau(opt, ReduceLROnPlateau::Mode::min, 0.5, 2, 1e-4, 1);
  auto metrics = f["plateau_metrics"].to_vector<double>();
  auto want = f["plateau"].to_vector<double>();
  std::vector<double> got;
  for (double m : metrics) {
    plateau.step(m);
    got.push_back(opt.lr());
  }
  CHECK(got == want);
  CHECK(*std::min_element(want.begin(), want.end()) < 1.0);  // the fixture does reduce
}

TEST_CASE("every optimizer at edge values (infinite, NaN, huge, signed zero parameters): PyTorch's steps") {
  // Without weight decay the decay term is left out, as PyTorch does: an infinite parameter
  // stays infinite (0 * inf would have made it NaN). Fixture: tests/fixtures/optim_edges.py.
  const std::map<std::string, Make> configs{
      {"sgd", [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1}); }},
      {"sgd_momentum", [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1}); }},
      {"sgd_decay", [](auto p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.01}); }},
      {"rmsprop", [](auto p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01}); }},
      {"rmsprop_centered_decay",
       [](auto p) {
         return std::make_unique<RMSprop>(
             p, RMSpropOptions{.lr = 0.005, .alpha = 0.9, .weight_decay = 0.01, .momentum = 0.5, .centered = true});
       }},
      {"adam", [](auto p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.05}); }},
      {"adam_decay", [](auto p) { return std::make_unique<Adam>(p, AdamOptions{.lr = 0.05, .weight_decay = 0.1, .amsgrad = true}); }},
      {"adamw", [](auto p) { return std::make_unique<AdamW>(p, AdamOptions{.lr = 0.05, .weight_decay = 0.1}); }},
      {"adamw_no_decay", [](auto p) { return std::make_unique<AdamW>(p, AdamOptions{.lr = 0.05, .weight_decay = 0.0}); }},
      {"adagrad", [](auto p) { return std::make_unique<Adagrad>(p, AdagradOptions{.lr = 0.1}); }},
      {"adagrad_decay", [](auto p) { return std::make_unique<Adagrad>(p, AdagradOptions{.lr = 0.1, .weight_decay = 0.01}); }},
  };
  // "sparse.": rows of +0, -0 and +0-but-one gradients (plain SGD skips blocks of +0 gradients).
  auto f = fixture("optim_edges");
  for (const std::string set : {"", "sparse."}) {
    for (const std::string dtype : {"f64", "f32"}) {
      for (const auto& [config, make] : configs) {
        const std::string name = set + config;
        INFO("optimizer ", name, ", ", dtype);
        REQUIRE(f.count(name + "." + dtype + ".p2") == 1);
        Tensor p = f[set + "p0." + dtype].clone().detach().requires_grad_();
        const Tensor g = f[set + "g." + dtype];
        auto opt = make({p});
        for (int step = 1; step <= 2; ++step) {
          opt->zero_grad();
          sum(p * g).backward();
          opt->step();
          // infinities, NaN and zeros (their signs too) exactly; other values to a few units in
          // the last place (PyTorch's kernels round some steps otherwise, as in the trajectories)
          const auto got = p.detach().to(f64).to_vector<double>();
          const auto want = f[name + "." + dtype + ".p" + std::to_string(step)].to(f64).to_vector<double>();
          REQUIRE(got.size() == want.size());
          for (std::size_t k = 0; k < got.size(); ++k) {
            INFO("step ", step, ", element ", k, ": ", got[k], " against PyTorch's ", want[k]);
            if (!std::isfinite(want[k]) || want[k] == 0) {
              CHECK(same_bits(scalar(got[k], f64), scalar(want[k], f64)));
            } else {
              CHECK(std::abs(got[k] - want[k]) <= (dtype == "f32" ? 1e-6 : 1e-14) * std::abs(want[k]));
            }
          }
        }
      }
    }
  }
}
