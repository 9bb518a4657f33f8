// The pool's probe of how far apart its cores are, and what kernels do with its answer: split
// only larger work while far apart, over the same ranges and to the same bits.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <utility>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;

namespace {

using Ranges = std::vector<std::pair<std::int64_t, std::int64_t>>;

/// Fixes what the pool assumes of its cores for a scope, then goes back to probing.
struct AssumeCores {
  explicit AssumeCores(std::optional<bool> far) { detail::assume_cores_far_apart(far); }
  ~AssumeCores() { detail::assume_cores_far_apart(std::nullopt); }
};

/// Runs `body` on a pool of `threads` threads, then restores the pool's size.
template <class F>
void with_threads(int threads, F body) {
  const int saved = num_threads();
  set_num_threads(threads);
  try {
    body();
  } catch (...) {
    set_num_threads(saved);
    throw;
  }
  set_num_threads(saved);
}

}  // namespace

TEST_CASE("parallel_threshold: 8 times the work while the cores are far apart, the work itself while near") {
  AssumeCores far(true);
  CHECK(detail::cores_far_apart());
  CHECK(detail::parallel_threshold(std::int64_t{1} << 20) == std::int64_t{8} << 20);
  CHECK(detail::parallel_threshold(3) == 24);
  detail::assume_cores_far_apart(false);
  CHECK_FALSE(detail::cores_far_apart());
  CHECK(detail::parallel_threshold(std::int64_t{1} << 20) == std::int64_t{1} << 20);
}

TEST_CASE("parallel_run without workers: parallel_for's ranges, in order, on the calling thread, nested calls inline") {
  for (int threads : {2, 3})
    with_threads(threads, [] {
      for (const auto& [n, grain] : Ranges{{100000, 1000}, {10, 3}, {7, 1}, {5, 5}, {1, 1}}) {
        INFO(num_threads(), " threads, n ", n, ", grain ", grain);
        std::mutex mutex;
        Ranges with, without, nested;
        std::set<std::thread::id> ran_on;
        auto record = [&](Ranges& into) {
          return [&](std::int64_t begin, std::int64_t end) {
            std::lock_guard lock(mutex);
            into.emplace_back(begin, end);
            ran_on.insert(std::this_thread::get_id());
          };
        };
        detail::parallel_run(n, grain, record(with), true);
        ran_on.clear();
        detail::parallel_run(n, grain, [&](std::int64_t begin, std::int64_t end) {
          record(without)(begin, end);
          parallel_for(100, 1, record(nested));  // inside a run: one range, on this thread
        }, false);
        std::sort(with.begin(), with.end());
        CHECK(without == with);
        CHECK(ran_on == std::set{std::this_thread::get_id()});
        CHECK(nested == Ranges(without.size(), {0, 100}));
      }
    });
}

TEST_CASE_TEMPLATE("gemm: the same bits whether the cores are assumed near or far apart", T, float, double) {
  // Products of 2^20 to 2^26 multiply-adds split across the workers only while the cores are
  // near; far apart, the calling thread runs the same ranges (OpenBLAS's rows, LIBXSMM's tiles,
  // whole matrices of a batch). One BLAS call over all rows would give other bits.
  Generator g(12);
  struct Product {
    int m, n, k, count;
    bool transpose_a;
  };
  for (const Product& p : {Product{300, 200, 64, 1, false}, Product{300, 200, 64, 1, true},
                           Product{200, 300, 64, 1, false}, Product{512, 128, 32, 1, true},
                           Product{100, 512, 32, 1, false}, Product{32, 1000, 128, 1, false},
                           Product{997, 61, 33, 1, false}, Product{64, 80, 72, 6, false},
                           Product{2368, 32, 160, 1, false}, Product{70, 32, 7552, 1, true}})
    with_threads(2, [&] {
      INFO(p.count, " x ", p.m, " x ", p.n, " x ", p.k, ", transpose_a ", p.transpose_a);
      const auto a = uniform({p.count * p.m * p.k}, -1, 1, f64, &g).template to_vector<T>();
      const auto b = uniform({p.count * p.k * p.n}, -1, 1, f64, &g).template to_vector<T>();
      std::vector<std::vector<T>> results;
      for (bool far : {false, true}) {
        AssumeCores cores(far);
        std::vector<T> c(static_cast<std::size_t>(p.count * p.m * p.n), T(0.25));
        gemm_batched<T>(p.transpose_a, false, p.m, p.n, p.k, T(1), a.data(), p.m * p.k, b.data(), p.k * p.n, T(1),
                        c.data(), p.m * p.n, p.count);
        results.push_back(std::move(c));
      }
      CHECK(results[0] == results[1]);
    });
}

TEST_CASE_TEMPLATE("gemm: inside the pool one thread's bits; while another thread holds it, a free pool's", T, float,
                   double) {
  // A product inside a parallel run (a batch's matrix, a side task's weight gradient) runs as on
  // one thread. One that finds the workers held by another thread runs the ranges a free pool
  // would split it into, one after another: one OpenBLAS call over all rows sums some rows
  // otherwise (a tail row of a Haswell kernel: 130 x 90 x 400 = dW^T of 400 rows, row 64).
  Generator g(21);
  struct Product {
    int m, n, k;
    bool transpose_a;
  };
  for (const Product& p : {Product{130, 90, 400, true}, Product{300, 200, 64, false}, Product{997, 61, 33, false},
                           Product{200, 300, 64, true}}) {
    INFO(p.m, " x ", p.n, " x ", p.k, ", transpose_a ", p.transpose_a);
    const auto a = uniform({p.m * p.k}, -1, 1, f64, &g).template to_vector<T>();
    const auto b = uniform({p.k * p.n}, -1, 1, f64, &g).template to_vector<T>();
    auto product = [&] {
      std::vector<T> c(static_cast<std::size_t>(p.m * p.n), T(0.25));
      gemm<T>(p.transpose_a, false, p.m, p.n, p.k, T(1), a.data(), b.data(), T(1), c.data());
      return c;
    };
    std::vector<T> one_thread;
    with_threads(1, [&] { one_thread = product(); });
    with_threads(2, [&] {
      const std::vector<T> free_pool = product();
      std::vector<T> nested;
      detail::parallel_run(2, 1, [&](std::int64_t begin, std::int64_t) {
        if (begin == 0) nested = product();  // on this thread, inside the run
      });
      CHECK(nested == one_thread);
      // Another thread holds the pool (its run waits in part 0) while this one multiplies.
      std::atomic<bool> holding{false}, release{false};
      std::thread holder([&] {
        detail::parallel_run(2, 1, [&](std::int64_t begin, std::int64_t) {
          if (begin != 0) return;
          holding = true;
          while (!release) std::this_thread::yield();
        });
      });
      while (!holding) std::this_thread::yield();
      const std::vector<T> busy_pool = product();
      release = true;
      holder.join();
      CHECK(busy_pool == free_pool);
    });
  }
}

TEST_CASE("full: a large fill split across the pool sets every element, whatever the threads and cores") {
  for (int threads : {1, 2, 3})
    with_threads(threads, [] {
      for (bool far : {false, true}) {
        AssumeCores cores(far);
        for (std::int64_t n : {std::int64_t{1} << 19, (std::int64_t{1} << 19) + 7, (std::int64_t{1} << 22) + 3})
          for (Dtype dtype : {f32, f64, i64}) {
            INFO(num_threads(), " threads, far ", far, ", ", n, " elements of ", dtype_name(dtype));
            { Tensor dirty = full({n}, 7.0, dtype); }  // the pool hands its buffer to the next fill
            const std::vector<double> values = full({n}, -2.0, dtype).to_vector<double>();
            CHECK(std::count(values.begin(), values.end(), -2.0) == n);
          }
      }
    });
}

TEST_CASE("scatter_add with one pick per line: every slice written once, whatever the threads and cores") {
  // 2^16 slices of [3, 8] (a max pooling's backward at scale): enough for the slices to split
  Generator g(14);
  const std::int64_t outer = std::int64_t{1} << 16, length = 3, inner = 8;
  const Tensor src = uniform({outer, 1, inner}, -1, 1, f32, &g);
  Tensor index = empty({outer, 1, inner}, i64);
  std::int64_t* pick = index.data<std::int64_t>();
  for (std::int64_t e = 0; e < outer * inner; ++e) pick[e] = (e * 7 + e / inner) % length;
  const std::vector<float> s = src.to_vector<float>();
  for (int threads : {1, 2})
    with_threads(threads, [&] {
      for (bool far : {false, true}) {
        AssumeCores cores(far);
        INFO(num_threads(), " threads, far ", far);
        { Tensor dirty = full({outer, length, inner}, 7.0); }
        const std::vector<float> y = scatter_add({outer, length, inner}, 1, index, src).to_vector<float>();
        std::int64_t wrong = 0;
        for (std::int64_t o = 0; o < outer; ++o)
          for (std::int64_t j = 0; j < length; ++j)
            for (std::int64_t i = 0; i < inner; ++i) {
              const std::int64_t at = o * inner + i;
              wrong += y[(o * length + j) * inner + i] != (pick[at] == j ? s[at] : 0.f);
            }
        CHECK(wrong == 0);
      }
    });
}

TEST_CASE("an LSTM's train step: loss and gradients have the same bits whether the cores are assumed near or far apart") {
  with_threads(2, [] {
    Generator g(13);
    nn::LSTM lstm(64, 128, {.num_layers = 2});
    const Tensor x = uniform({32, 12, 64}, -1, 1, f32, &g);  // batch first
    std::vector<std::vector<std::vector<float>>> grads;
    std::vector<float> losses;
    for (bool far : {false, true}) {
      AssumeCores cores(far);
      lstm.zero_grad();
      const Tensor y = lstm(x);
      Tensor loss = sum(y * y);
      loss.backward();
      losses.push_back(loss.item<float>());
      grads.emplace_back();
      for (const auto& p : lstm.parameters()) grads.back().push_back(p.grad().to_vector<float>());
    }
    CHECK(losses[0] == losses[1]);
    CHECK(grads[0] == grads[1]);
  });
}

TEST_CASE("probe_round_trip: a worker answers in a plausible time; no answer on one thread, inside the pool, or while another thread holds it") {
  with_threads(2, [] {
    std::optional<double> ns;
    // A sleeping worker may take a scheduler tick or more to start: a long wait, a few tries.
    for (int i = 0; i < 20 && !ns; ++i) ns = detail::probe_round_trip(std::chrono::milliseconds(100));
    REQUIRE(ns.has_value());
    CHECK(*ns > 0);
    CHECK(*ns < 1e6);  // a round trip of a millisecond: not a cache line's
    for (int i = 0; i < 200; ++i) {  // no wait: the game ends at once, whoever takes the worker's part
      const auto quick = detail::probe_round_trip(std::chrono::microseconds(0));
      if (quick) REQUIRE(*quick > 0);
    }
    std::optional<double> inside = 1.0;
    parallel_for(2, 1, [&](std::int64_t begin, std::int64_t) {
      if (begin == 0) inside = detail::probe_round_trip(std::chrono::milliseconds(10));
    });
    CHECK_FALSE(inside.has_value());
    std::atomic<bool> held{false}, probed{false};
    std::thread holder([&] {
      parallel_for(2, 1, [&](std::int64_t begin, std::int64_t) {
        if (begin != 0) return;
        held = true;
        while (!probed) std::this_thread::yield();
      });
    });
    while (!held) std::this_thread::yield();
    const auto while_held = detail::probe_round_trip(std::chrono::milliseconds(10));
    probed = true;
    holder.join();
    CHECK_FALSE(while_held.has_value());
  });
  with_threads(1, [] { CHECK_FALSE(detail::probe_round_trip(std::chrono::milliseconds(10)).has_value()); });
}

TEST_CASE("parallel_threshold probes the cores while kernels ask it, and an assumption fixed overrides the answer") {
  with_threads(2, [] {
    auto ask_for = [](std::chrono::milliseconds span) {  // as kernels do, with pauses between
      for (auto until = std::chrono::steady_clock::now() + span; std::chrono::steady_clock::now() < until;) {
        for (int i = 0; i < 64; ++i) (void)detail::parallel_threshold(1);
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      }
    };
    // Whether a worker answers within the probe's 20 us depends on the scheduler (not while
    // another program holds its core): probe_round_trip's own test waits for answers.
    for (std::optional<bool> assumed : {std::optional<bool>{}, std::optional<bool>{true}, std::optional<bool>{false}}) {
      AssumeCores cores(assumed);
      const auto before = detail::core_probes();
      ask_for(std::chrono::milliseconds(250));  // a probe is due at least every 100 ms
      const auto after = detail::core_probes();
      CHECK(after.tried > before.tried);
      CHECK(after.answered - before.answered <= after.tried - before.tried);
      CHECK(after.far - before.far <= after.answered - before.answered);
      if (assumed) CHECK(detail::parallel_threshold(5) == (*assumed ? 40 : 5));
    }
  });
}

TEST_CASE_TEMPLATE("maps, unary derivatives, copies, permutes, broadcasts, bias rows and row sums split across the pool: one thread's bits",
                   T, float, double) {
  // Sizes that split while the cores are near and while far (8 times the work), and whose ends
  // fall inside a SIMD batch: each range's vector body and scalar tail must cover what one pass
  // does, and each range of a permute's or a broadcast's runs must start its odometer right.
  Generator g(15);
  const Dtype dtype = dtype_of<T>();
  const std::int64_t n = (std::int64_t{1} << 20) + 13;
  const Tensor x = uniform({n}, -3, 3, dtype, &g), dy = uniform({n}, -1, 1, dtype, &g);
  const Tensor rows = uniform({(std::int64_t{1} << 16) + 3, 17}, -1, 1, dtype, &g);  // [65539, 17]
  const Tensor seq = uniform({16, 4099, 9}, -1, 1, dtype, &g), up = uniform({16, 4095, 9}, -1, 1, dtype, &g);
  const Tensor in = uniform({40003, 7}, -1, 1, dtype, &g), weight = uniform({11, 7}, -1, 1, dtype, &g),
               bias = uniform({11}, -1, 1, dtype, &g);
  auto results = [&] {
    auto backward_of = [&](const Tensor& source, Tensor (*op)(const Tensor&), const Tensor& upstream) {
      Tensor leaf = source.detach().requires_grad_();
      op(leaf).backward(upstream);
      return leaf.grad();
    };
    const std::vector<std::pair<const char*, Tensor>> named{
        {"relu", relu(x)},
        {"tanh", tanh(x)},
        {"tanh of 9001", tanh(slice(x, 0, 0, 9001))},  // (transcendental maps split from 2^13 elements)
        {"sigmoid", sigmoid(x)},
        {"exp", exp(x)},
        {"sqrt(abs)", sqrt(abs(x))},
        {"neg", neg(x)},
        {"sin", sin(x)},
        {"pow", pow(x, 3.0)},
        {"row sum", sum(rows, {0})},
        {"slice", slice(seq, 1, 1, 4098)},
        {"concat", concat({seq, seq}, 2)},
        {"linear", linear(in, weight, bias)},
        {"permute", permute(seq, {1, 0, 2})},
        {"broadcast add", seq + slice(bias, 0, 0, 9)},
        // nodes of their own (too large to fuse): unary_derivative
        {"relu's derivative", backward_of(x, [](const Tensor& t) { return relu(t); }, dy)},
        {"tanh's derivative", backward_of(x, [](const Tensor& t) { return tanh(t); }, dy)},
        // embed_slice: zeros outside the slice, a copy inside
        {"embed_slice", backward_of(seq, [](const Tensor& t) { return slice(t, 1, 2, 4097); }, up)}};
    std::map<std::string, std::vector<T>> out;
    for (const auto& [name, y] : named) out[name] = y.template to_vector<T>();
    return out;
  };
  std::map<std::string, std::vector<T>> one;
  with_threads(1, [&] { one = results(); });
  // the copies against the source itself
  const std::vector<T> s = seq.to_vector<T>(), u = up.to_vector<T>(), b9 = slice(bias, 0, 0, 9).to_vector<T>();
  const std::vector<T>&sliced = one["slice"], &joined = one["concat"], &permuted = one["permute"],
                       &shifted = one["broadcast add"], &embedded = one["embed_slice"];
  std::int64_t wrong = 0;
  for (std::int64_t b = 0; b < 16; ++b)
    for (std::int64_t t = 0; t < 4099; ++t)
      for (std::int64_t c = 0; c < 9; ++c) {
        const std::int64_t at = (b * 4099 + t) * 9 + c;
        const T v = s[at];
        if (t >= 1 && t < 4098) wrong += sliced[(b * 4097 + t - 1) * 9 + c] != v;
        wrong += joined[(b * 4099 + t) * 18 + c] != v || joined[(b * 4099 + t) * 18 + 9 + c] != v;
        wrong += embedded[at] != (t >= 2 && t < 4097 ? u[(b * 4095 + t - 2) * 9 + c] : T(0));
        wrong += permuted[(t * 16 + b) * 9 + c] != v || shifted[at] != v + b9[c];
      }
  CHECK(wrong == 0);
  for (int threads : {2, 3})
    with_threads(threads, [&] {
      for (bool far : {false, true}) {
        AssumeCores cores(far);
        auto split = results();
        for (const auto& [name, values] : one) {
          INFO(num_threads(), " threads, far ", far, ", ", name);
          CHECK(split[name] == values);
        }
      }
    });
}

TEST_CASE_TEMPLATE("fusion: a chain's backward sweep split across the pool gives one thread's bits, and one node per op's", T,
                   float, double) {
  // [32, 512]: 64 tiles of an LSTM update's derivatives, enough to split near and far
  Generator g(16);
  const Dtype dtype = dtype_of<T>();
  const Tensor gates = uniform({32, 2048}, -3, 3, dtype, &g), c = uniform({32, 512}, -1, 1, dtype, &g),
               bias = uniform({512}, -1, 1, dtype, &g), seed = uniform({32, 512}, -1, 1, dtype, &g);
  auto gradients = [&](bool fused) {
    autograd::FusionGuard fusion(fused);
    Tensor x = gates.detach().requires_grad_(), c0 = c.detach().requires_grad_(), b = bias.detach().requires_grad_();
    auto p = chunk(x, 4, -1);
    Tensor c1 = sigmoid(p[1] + b) * c0 + sigmoid(p[0]) * tanh(p[2]);
    Tensor h = sigmoid(p[3]) * tanh(c1);
    (h * seed + c1).backward(ones_like(h));
    return std::vector<std::vector<T>>{x.grad().to_vector<T>(), c0.grad().to_vector<T>(), b.grad().to_vector<T>()};
  };
  std::vector<std::vector<T>> one, unfused;
  with_threads(1, [&] {
    one = gradients(true);
    unfused = gradients(false);
  });
  CHECK(one == unfused);
  for (int threads : {2, 3})
    with_threads(threads, [&] {
      for (bool far : {false, true}) {
        AssumeCores cores(far);
        INFO(num_threads(), " threads, far ", far);
        CHECK(gradients(true) == one);
      }
    });
}

TEST_CASE("SideLane: tasks run beside the caller on a worker, one at a time, in the order posted; drain waits for them") {
  with_threads(2, [] {
    const auto wait_for = [](const std::atomic<bool>& flag) {  // false after 10 s without it
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!flag.load() && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
      return flag.load();
    };
    std::atomic<bool> started{false}, release{false};
    std::thread::id first_thread;
    std::vector<int> order;  // touched by the tasks alone, one at a time
    bool released = false;
    detail::SideLane lane;
    lane.post([&] {
      first_thread = std::this_thread::get_id();
      started = true;
      released = wait_for(release);
      order.push_back(0);
    });
    // post returned while the first task waits: it runs on a worker
    for (int i = 1; i <= 20; ++i) lane.post([&order, i] { order.push_back(i); });
    REQUIRE(wait_for(started));
    CHECK(first_thread != std::this_thread::get_id());
    release = true;
    // more than a lane queues: posts drain it on the way
    for (int i = 21; i <= 120; ++i) lane.post([&order, i] { order.push_back(i); });
    lane.drain();
    CHECK(released);
    REQUIRE(order.size() == 121);
    for (int i = 0; i <= 120; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
    lane.drain();  // nothing left: returns at once
  });
}

TEST_CASE("SideLane: a task's kernels run on one thread as one range, on a worker or where drain runs it") {
  // The owner runs a task no worker has started yet (a worker asleep takes a while to wake): its
  // kernels must split as on the worker, or a weight gradient's bits would depend on who ran it.
  with_threads(2, [] {
    std::mutex mutex;
    int on_owner = 0;
    for (int i = 0; i < 20; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));  // past the workers' spin: asleep
      Ranges ranges;
      std::thread::id ran_on;
      detail::SideLane lane;
      lane.post([&] {
        ran_on = std::this_thread::get_id();
        parallel_for(100, 1, [&](std::int64_t begin, std::int64_t end) {
          std::lock_guard lock(mutex);
          ranges.emplace_back(begin, end);
        });
      });
      lane.drain();
      CHECK(ranges == Ranges{{0, 100}});
      on_owner += ran_on == std::this_thread::get_id();
    }
    MESSAGE(on_owner, " of 20 tasks ran where drain was called");
  });
}

TEST_CASE("SideLane: inline on one thread and inside the pool; a task's exception comes out of drain once, later tasks still run") {
  with_threads(1, [] {
    detail::SideLane lane;
    bool ran = false;
    CHECK_FALSE(detail::SideLane::has_worker());
    lane.post([&] { ran = true; });
    CHECK(ran);  // no worker: post ran it
  });
  with_threads(2, [] {
    std::atomic<int> inline_runs{0};
    parallel_for(2, 1, [&](std::int64_t, std::int64_t) {
      detail::SideLane lane;  // a lane of a thread inside the pool
      bool ran = false;
      lane.post([&] { ran = true; });
      inline_runs += ran && !detail::SideLane::has_worker();
    });
    CHECK(inline_runs == 2);
    CHECK(detail::SideLane::has_worker());

    detail::SideLane lane;
    std::atomic<bool> later{false};
    lane.post([] { fail("side task: {}", "boom"); });
    lane.post([&] { later = true; });
    CHECK(matches(error_of([&] { lane.drain(); }), "side task: boom"));
    CHECK(later);
    CHECK(error_of([&] { lane.drain(); }).empty());
  });
}
