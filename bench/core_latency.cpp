// How long two threads take to hand one cache line back and forth (a store seen by the other
// thread, and its answer), in ns per round trip. On the shared 2-core VM this swings between
// regimes (about 50-130 ns and 320-390 ns) as the host moves the two virtual cores, and
// everything that runs on both cores (xgrad's pool, OpenBLAS's threads) swings with it; run it
// beside a benchmark to tell which regime a measurement saw.
//   core_latency [--batches N]   # N batches of 100000 round trips (default 9): min, median, max
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  long batches = 9;
  if (argc == 3 && std::string(argv[1]) == "--batches") {
    char* end = nullptr;
    batches = std::strtol(argv[2], &end, 10);
    if (*argv[2] == '\0' || *end != '\0' || batches < 1 || batches > 10000) {
      std::fprintf(stderr, "core_latency: --batches takes a whole number from 1 to 10000, got '%s'\n", argv[2]);
      return 2;
    }
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: core_latency [--batches N]\n");
    return 2;
  }
  constexpr long kTrips = 100000;
  alignas(64) std::atomic<long> ball{0};  // odd: with the answering thread; even: back with us
  const long total = kTrips * batches;
  std::thread answer([&] {
    for (long i = 0; i < total; ++i) {
      while (ball.load(std::memory_order_acquire) != 2 * i + 1) {}
      ball.store(2 * i + 2, std::memory_order_release);
    }
  });
  std::vector<double> ns;
  for (long b = 0, i = 0; b < batches; ++b) {
    const auto start = std::chrono::steady_clock::now();
    for (long end = i + kTrips; i < end; ++i) {
      ball.store(2 * i + 1, std::memory_order_release);
      while (ball.load(std::memory_order_acquire) != 2 * i + 2) {}
    }
    ns.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count() / kTrips);
  }
  answer.join();
  std::sort(ns.begin(), ns.end());
  std::printf("{\"round_trip_ns_min\":%.0f,\"round_trip_ns_median\":%.0f,\"round_trip_ns_max\":%.0f,\"batches\":%ld}\n",
              ns.front(), ns[ns.size() / 2], ns.back(), batches);
}
