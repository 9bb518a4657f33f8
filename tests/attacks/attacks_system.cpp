// Attacks (attacks.hpp) on: threads, fork and exit. Shared leaves and modules back-propagated from
// several threads, the default generator drawn from several threads, the thread count set from
// several threads and to nonsense; children forked after the pool ran, from a second thread,
// while another thread is inside backward or a draw; statics, thread_locals and the pool alive
// at exit. Fork rows fork a grandchild themselves and wait for it with their own timeout; exit
// rows return normally and the runner's child then exits through std::exit, destructors and all.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <numeric>
#include <thread>
#include <vector>

#include "../concurrency.hpp"
#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

using testing::on_threads;

/// Forks a grandchild that runs `child` and leaves through std::exit with its result; returns
/// its wait status, or -1 when it had not finished after `seconds` (see run_in_child).
template <class F>
int in_grandchild(F child, double seconds = 10) {
  return testing::run_in_child(child, seconds, forked_from_threads);
}

void expect_exited_0(int status, const std::string& what) {
  if (status == -1) throw Wrong{what + ": the grandchild hung"};
  if (WIFSIGNALED(status)) throw Wrong{fmt::format("{}: the grandchild died of signal {}", what, WTERMSIG(status))};
  if (WEXITSTATUS(status) != 0) throw Wrong{fmt::format("{}: the grandchild exited with {}", what, WEXITSTATUS(status))};
}

/// A pooled elementwise op over 10^6 f64 elements and its exact result: the sum of 2 i + 1 for
/// i < 10^6 is 10^12 (every partial sum an integer below 2^53, so exact in any order).
struct BigOp {
  Tensor x = arange(1'000'000.0, f64);
  double run() const { return sum(x * 2.0 + 1.0).item(); }
  static double expected() { return 1'000'000.0 * 999'999.0 + 1'000'000.0; }
};

/// Sums 0 .. n-1 through parallel_for (the pool's workers, when the pool is free).
std::int64_t pooled_sum(std::int64_t n) {
  std::atomic<std::int64_t> total{0};
  parallel_for(n, 1, [&](std::int64_t begin, std::int64_t end) {
    std::int64_t s = 0;
    for (std::int64_t i = begin; i < end; ++i) s += i;
    total += s;
  });
  return total.load();
}

Register threads{"threads", {
  {"4 threads x 1000 backward calls into one shared leaf: the exact sequential sum", [] {
     Tensor w = tensor({1.0, 2.0, 3.0}).requires_grad_();
     auto contribution = [](int thread, int step) { return tensor({thread + 1.0, step % 3 + 0.0, 1.0}); };
     constexpr int kThreads = 4, kSteps = 1000;
     std::vector<double> expected(3, 0.0);  // d/dw sum(w c + w) = c + 1, small integers: exact in f32
     for (int t = 0; t < kThreads; ++t)
       for (int i = 0; i < kSteps; ++i) {
         const auto c = contribution(t, i).to_vector<double>();
         for (int k = 0; k < 3; ++k) expected[k] += c[k] + 1;
       }
     on_threads(kThreads, [&](int t) {
       for (int i = 0; i < kSteps; ++i) sum(w * contribution(t, i) + w).backward();
     });
     expect_values(w.grad(), expected);
   }},
  {"the default generator from 4 threads at once; per-thread Generators reproduce", [] {
     manual_seed(5);
     constexpr int kThreads = 4;
     std::vector<std::vector<double>> drawn(kThreads);
     std::vector<std::vector<std::int64_t>> perms(kThreads);
     on_threads(kThreads, [&](int t) { drawn[t] = randn({5000}, f64).to_vector<double>(); });
     manual_seed(5);  // each draw holds the generator: the threads got the sequential draws, in some order
     std::vector<std::vector<double>> sequential(kThreads);
     for (auto& s : sequential) s = randn({5000}, f64).to_vector<double>();
     std::sort(drawn.begin(), drawn.end());
     std::sort(sequential.begin(), sequential.end());
     expect(drawn == sequential, "the threads' draws to be the sequential draws in some order");
     on_threads(kThreads, [&](int t) {
       for (int i = 0; i < 20; ++i) perms[t] = data::permutation(2000);
     });
     for (auto p : perms) {
       std::sort(p.begin(), p.end());
       std::vector<std::int64_t> iota(2000);
       std::iota(iota.begin(), iota.end(), 0);
       expect(p == iota, "every thread's permutation a permutation of 0..1999");
     }
     std::vector<std::vector<double>> own(kThreads);
     on_threads(kThreads, [&](int t) {
       Generator gen(100 + t);
       own[t] = uniform({3000}, -1, 1, f64, &gen).to_vector<double>();
     });
     for (int t = 0; t < kThreads; ++t) {
       Generator gen(100 + t);
       expect(uniform({3000}, -1, 1, f64, &gen).to_vector<double>() == own[t], "a per-thread generator reproduces");
     }
   }},
  {"lookups in one shared nn::Embedding from 4 threads sum exactly into its gradient", [] {
     // (the shared-Linear case is in tests/test_reliability_threads.cpp)
     nn::Embedding table(7, 3);
     constexpr int kThreads = 4, kSteps = 250;
     // ids (t + i) mod 7, twice per step, with integer output weights: every sum is exact
     auto loss = [&](int t, int i) {
       const Tensor ids = tensor({(t + i) % 7, (t + i) % 7, (3 * t + i) % 7}, i64);
       return sum(table(ids) * tensor({{1.0, 2.0, 3.0}, {1.0, 1.0, 1.0}, {-1.0, 0.0, 4.0}}));
     };
     on_threads(kThreads, [&](int t) {
       for (int i = 0; i < kSteps; ++i) loss(t, i).backward();
     });
     // expected count of each (row, weight) pair, computed without autograd
     std::vector<double> expected(21, 0.0);
     const double w[3][3] = {{1, 2, 3}, {1, 1, 1}, {-1, 0, 4}};
     for (int t = 0; t < kThreads; ++t)
       for (int i = 0; i < kSteps; ++i) {
         const int rows[3] = {(t + i) % 7, (t + i) % 7, (3 * t + i) % 7};
         for (int k = 0; k < 3; ++k)
           for (int j = 0; j < 3; ++j) expected[rows[k] * 3 + j] += w[k][j];
       }
     expect_values(table.weight.grad(), expected);
   }},
  {"set_num_threads(0) and negative counts are errors; the count is kept", [] {
     set_num_threads(2);
     expect_error([] { set_num_threads(0); }, "set_num_threads: .*positive.*got 0");
     expect_error([] { set_num_threads(-3); }, "set_num_threads: .*got -3");
     expect_error([] { set_num_threads(std::numeric_limits<int>::min()); }, "set_num_threads: .*-2147483648");
     expect(num_threads() == 2, fmt::format("2 threads kept, got {}", num_threads()));
     expect(pooled_sum(1 << 16) == (std::int64_t{1} << 16) * ((1 << 16) - 1) / 2, "the pool still computes");
   }},
  {"set_num_threads from 4 threads while they run pooled ops", [] {
     const BigOp op;
     constexpr std::int64_t n = 1 << 18;
     const std::int64_t want = n * (n - 1) / 2;
     std::atomic<int> wrong{0};
     on_threads(4, [&](int t) {
       for (int i = 0; i < 40; ++i) {
         set_num_threads(1 + (t + i) % 3);
         if (pooled_sum(n) != want) ++wrong;
         if (i % 8 == 0 && op.run() != BigOp::expected()) ++wrong;
       }
     });
     expect(wrong == 0, fmt::format("every pooled result exact, {} wrong", wrong.load()));
     const int threads = num_threads();
     expect(threads >= 1 && threads <= 3, fmt::format("a count set by one of the threads, got {}", threads));
   }},
  {"parallel_for from 4 threads at once (one gets the pool, the others run alone): exact sums", [] {
     set_num_threads(3);
     constexpr std::int64_t n = 1 << 20;
     const std::int64_t want = n * (n - 1) / 2;
     std::atomic<int> wrong{0};
     on_threads(4, [&](int) {
       for (int i = 0; i < 50; ++i)
         if (pooled_sum(n) != want) ++wrong;
     });
     expect(wrong == 0, fmt::format("every sum exact, {} wrong", wrong.load()));
   }},
}};

const char* const kAsanFork =
    "GCC 12's ASan allocator takes no lock across fork(): a child forked while another thread allocates can deadlock inside libasan";

Register fork_rows{"fork", {
  {"a child forked after the pool ran a big op computes, sets the thread count and exits", [] {
     set_num_threads(2);
     const BigOp op;
     expect(op.run() == BigOp::expected(), "the parent's big op");
     const Tensor a = uniform({300, 300}, -1, 1, f64), b = uniform({300, 300}, -1, 1, f64);
     const Tensor product = matmul(a, b);
     const int status = in_grandchild([&] {
       if (num_threads() != 2 || op.run() != BigOp::expected()) return 1;
       if (max(abs(matmul(a, b) - product)).item() > 1e-12) return 2;
       set_num_threads(3);
       if (num_threads() != 3 || op.run() != BigOp::expected() || pooled_sum(1 << 16) != (std::int64_t{1} << 16) * 65535 / 2) return 3;
       set_num_threads(1);
       return op.run() == BigOp::expected() ? 0 : 4;
     });
     expect_exited_0(status, "fork after the pool ran");
     expect(op.run() == BigOp::expected() && num_threads() == 2, "the parent's pool untouched");
   }},
  {"fork from a second thread after the pool ran", [] {
     set_num_threads(2);
     const BigOp op;
     expect(op.run() == BigOp::expected(), "the parent's big op");
     int status = 0;
     std::thread forker([&] {
       status = in_grandchild([&] {
         if (op.run() != BigOp::expected()) return 1;
         set_num_threads(2);
         return op.run() == BigOp::expected() ? 0 : 2;
       });
     });
     forker.join();
     expect_exited_0(status, "fork from a second thread");
     expect(op.run() == BigOp::expected(), "the parent's pool still computes");
   }},
  {"fork while another thread is inside backward", [] {
     skip_under_sanitizers(kAsanFork);
     set_num_threads(2);
     Tensor w = ones({1000}, f64).requires_grad_();
     std::atomic<bool> stop{false};
     std::atomic<int> calls{0};
     std::thread busy([&] {
       while (!stop) {
         sum(tanh(w * 0.5) * w).backward();
         ++calls;
       }
     });
     while (calls < 5) std::this_thread::yield();
     int status = 0;
     for (int k = 0; k < 5 && status == 0; ++k) {
       status = in_grandchild([&] {
         Tensor v = tensor({1.0, 2.0, 3.0}, f64).requires_grad_();
         sum(v * v).backward();  // a fresh graph: d/dv = 2 v
         if (v.grad().to_vector<double>() != std::vector<double>{2, 4, 6}) return 1;
         const BigOp op;
         return op.run() == BigOp::expected() ? 0 : 2;
       });
     }
     stop = true;
     busy.join();
     expect_exited_0(status, "fork while another thread was in backward");
     // the parent's leaf got exactly `calls` contributions of d/dw (tanh(w/2) w) at w = 1
     const double d = std::tanh(0.5) + 0.5 * (1 - std::tanh(0.5) * std::tanh(0.5));
     expect_values(w.grad(), std::vector<double>(1000, d * calls.load()), 1e-9 * calls.load());
   }},
  {"fork while another thread draws from the default generator; the child draws too", [] {
     skip_under_sanitizers(kAsanFork);
     std::atomic<bool> stop{false};
     std::atomic<int> draws{0};
     std::thread drawer([&] {
       while (!stop) {
         (void)randn({200000}, f64);  // holds the generator's lock for most of the time
         ++draws;
       }
     });
     while (draws < 2) std::this_thread::yield();
     int status = 0;
     for (int k = 0; k < 20 && status == 0; ++k) {
       status = in_grandchild([] {
         const Tensor r = randn({10}, f64);
         const auto p = data::permutation(10);
         return r.numel() == 10 && p.size() == 10 ? 0 : 1;
       }, 5);
     }
     stop = true;
     drawer.join();
     expect_exited_0(status, "fork during a draw from the default generator");
   }},
  {"fork while another thread runs pooled ops; a fork of a fork", [] {
     skip_under_sanitizers(kAsanFork);
     set_num_threads(3);
     std::atomic<bool> stop{false};
     std::atomic<int> wrong{0};
     std::thread busy([&] {
       const BigOp op;
       while (!stop)
         if (op.run() != BigOp::expected()) ++wrong;
     });
     int status = 0;
     for (int k = 0; k < 3 && status == 0; ++k) {
       status = in_grandchild([] {
         const BigOp op;
         if (op.run() != BigOp::expected()) return 1;
         set_num_threads(2);
         if (op.run() != BigOp::expected()) return 2;
         // the child forks again: its own (new) pool is abandoned in the great-grandchild
         const int inner = in_grandchild([] {
           const BigOp again;
           return again.run() == BigOp::expected() && num_threads() == 2 ? 0 : 1;
         });
         return inner == 0 ? 0 : 3;
       });
     }
     stop = true;
     busy.join();
     expect_exited_0(status, "fork while another thread ran pooled ops");
     expect(wrong == 0, "the parent's pooled ops exact throughout");
   }},
}};

// --- exit -----------------------------------------------------------------------------------------

thread_local Tensor t_local;  // empty until a thread sets it: nothing is built at static initialization

Register exit_rows{"exit", {
  {"a function-local static Tensor and a static graph alive at exit", [] {
     static Tensor plain = ones({100000});
     static Tensor leaf = ones({300}, f64).requires_grad_();
     static Tensor graph = sum(tanh(leaf * 3.0) * leaf);  // a grad_fn chain alive at exit
     static std::vector<Tensor> many(16, zeros({17, 3}));
     graph.backward({}, true);
     expect(plain.numel() == 100000 && graph.grad_fn() && many.size() == 16, "the statics built");
     const double d = std::tanh(3.0) + 3.0 * (1 - std::tanh(3.0) * std::tanh(3.0));
     expect_values(leaf.grad(), std::vector<double>(300, d), 1e-12);
   }},
  {"thread_local tensors and graphs destroyed at thread exit, and the main thread's at exit", [] {
     std::vector<double> got(4);
     on_threads(4, [&](int t) {
       t_local = full({1000}, t + 1.0, f64).requires_grad_();
       Tensor y = sum(t_local * t_local);
       y.backward();
       got[t] = t_local.grad().to_vector<double>()[0];
       t_local = exp(t_local);  // a tensor with a graph, destroyed with the thread
     });
     expect(got == std::vector<double>{2, 4, 6, 8}, "each thread's gradient 2 (t + 1)");
     t_local = tanh(ones({500}).requires_grad_() * 2.0);  // the main thread's, destroyed at exit
     expect(t_local.grad_fn() != nullptr, "a graph on the main thread's thread_local");
   }},
  {"exit while the pool's workers are started", [] {
     set_num_threads(4);
     const BigOp op;
     expect(op.run() == BigOp::expected(), "the big op on the pool");
     expect(pooled_sum(1 << 20) == (std::int64_t{1} << 20) * ((1 << 20) - 1) / 2, "a pooled sum");
     static Tensor kept = op.x * 3.0;  // and a static from a pooled op
     expect(kept.numel() == 1'000'000, "the static kept");
   }},
  {"std::exit from inside the row after big allocations", [] {
     set_num_threads(2);
     std::vector<Tensor> big;
     for (int i = 0; i < 8; ++i) big.push_back(full({8'000'000}, i, f64));  // 512 MB
     double total = 0;
     for (const auto& t : big) total += sum(t).item();
     expect(total == 8'000'000.0 * 28, fmt::format("the sum of the big tensors, got {}", total));
     Tensor leaf = big[1].detach().requires_grad_();
     sum(leaf * leaf).backward();
     expect(leaf.grad().to_vector<double>()[7] == 2, "a gradient through a big tensor");
     std::exit(0);  // locals never destroyed; statics and the pool are
   }},
  {"a tensor allocated on a finished thread, held in a static, freed at exit", [] {
     static std::vector<Tensor> from_threads(4);
     on_threads(4, [&](int t) {
       from_threads[t] = full({100000}, t, f64);
       Tensor x = ones({10}, f64).requires_grad_();
       from_threads[t] = from_threads[t] + sum(x * 2.0);  // with a graph rooted on that thread
     });
     for (int t = 0; t < 4; ++t) expect(from_threads[t].to_vector<double>()[99999] == t + 20, "the value t + 20");
     static Tensor swapped = from_threads[0];
     from_threads[0] = Tensor();  // a thread's buffer now owned by a static only
     expect(swapped.defined(), "the static holds it");
   }},
  {"a static model, optimizer and gradients alive at exit", [] {
     static nn::Linear layer(64, 32);
     static optim::Adam opt(layer.parameters(), {.lr = 0.01});
     const Tensor x = ones({8, 64});
     for (int i = 0; i < 3; ++i) {
       opt.zero_grad();
       sum(pow(layer(x), 2.0)).backward();
       opt.step();
     }
     static Tensor pending = sum(layer(x));  // a graph into the static parameters, never run
     expect(layer.weight.grad().defined() && pending.grad_fn(), "gradients and a pending graph");
   }},
}};

}  // namespace
}  // namespace xgrad::attacks
