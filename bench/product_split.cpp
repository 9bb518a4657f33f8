// What splitting a matrix product across xgrad's pool gains, with the two cores near and far
// apart (core/parallel.hpp): for each shape, pairs of 10 calls split across 2 threads and 10
// on the calling thread alone, back to back, each call on operands the calling thread has just
// written (as a train step's are), labelled by a probe of the cores before and after the pair.
// Prints one JSON line per shape and regime: the median of split / one-thread time over the
// pairs whose two probes agree. The source of gemm.cpp's kFarProductFactor.
//   product_split [--seconds S]   # default 120
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "timing.hpp"
#include "xgrad/core/gemm.hpp"
#include "xgrad/core/parallel.hpp"

namespace {

struct Shape {
  bool transpose_a;
  std::int64_t m, n, k;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace xgrad;
  double seconds = 120;
  if (argc == 3 && std::string(argv[1]) == "--seconds") {
    char* end = nullptr;
    seconds = std::strtod(argv[2], &end);
    if (*argv[2] == '\0' || *end != '\0' || !(seconds > 0 && seconds <= 36000)) {
      std::fprintf(stderr, "product_split: --seconds takes a number above 0 and at most 36000, got '%s'\n", argv[2]);
      return 2;
    }
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: product_split [--seconds S]\n");
    return 2;
  }
  set_num_threads(2);
  detail::assume_cores_far_apart(false);  // every product below splits from 2^20 multiply-adds
  // The benchmark's products (cnn_gru's convolutions and their gradients, gru_imdb's input
  // projection and weight gradient, bilstm_tagger's output layer and folded weight gradient,
  // dglstm's input projection) and a few squares.
  const std::vector<Shape> shapes = {{false, 7552, 32, 70}, {false, 7552, 70, 32}, {true, 70, 32, 7552},
                                     {false, 2368, 32, 160}, {false, 2368, 96, 32}, {true, 96, 32, 16000},
                                     {false, 1280, 50, 256}, {true, 512, 128, 1280}, {false, 1600, 512, 128},
                                     {false, 1280, 128, 64}, {false, 128, 128, 128}, {false, 256, 256, 256}};
  std::vector<float> a, b, c;
  for (const Shape& s : shapes) {
    a.resize(std::max<std::size_t>(a.size(), s.m * s.k));
    b.resize(std::max<std::size_t>(b.size(), s.k * s.n));
    c.resize(std::max<std::size_t>(c.size(), s.m * s.n));
  }
  std::vector<std::vector<double>> far(shapes.size()), near(shapes.size());
  const auto start = std::chrono::steady_clock::now();
  auto probe = [] { return detail::probe_round_trip(std::chrono::milliseconds(2)); };
  while (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() < seconds) {
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const Shape& s = shapes[i];
      auto call = [&] {
        std::fill_n(a.data(), s.m * s.k, 0.5f);
        std::fill_n(b.data(), s.k * s.n, 0.25f);
        gemm<float>(s.transpose_a, false, s.m, s.n, s.k, 1.f, a.data(), b.data(), 0.f, c.data());
      };
      const auto before = probe();
      double us[2];
      for (int alone = 0; alone < 2; ++alone) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int r = 0; r < 10; ++r) {
          if (alone) detail::parallel_run(1, 1, [&](std::int64_t, std::int64_t) { call(); }, false);  // inside: one thread
          else call();
        }
        us[alone] = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      }
      const auto after = probe();
      // far: above 150 ns, as the pool decides (core/parallel.cpp)
      if (!before || !after || (*before > 150) != (*after > 150)) continue;  // the regime changed, or no answer
      (*before > 150 ? far : near)[i].push_back(us[0] / us[1]);
    }
  }
  for (std::size_t i = 0; i < shapes.size(); ++i)
    for (const auto& [regime, ratios] : {std::pair{"far", &far[i]}, std::pair{"near", &near[i]}})
      if (!ratios->empty())
        std::printf("{\"m\":%ld,\"n\":%ld,\"k\":%ld,\"transpose_a\":%s,\"cores\":\"%s\",\"pairs\":%zu,\"split_over_one\":%.2f}\n",
                    static_cast<long>(shapes[i].m), static_cast<long>(shapes[i].n), static_cast<long>(shapes[i].k),
                    shapes[i].transpose_a ? "true" : "false", regime, ratios->size(), bench::median(*ratios));
}
