#include "xgrad/data/batch.hpp"

#include <algorithm>
#include <mutex>
#include <numeric>

#include "xgrad/autograd/ops.hpp"

namespace xgrad::data {

namespace {

/// Uniform in [0, bound) from the raw 64-bit engine output, by rejection (no modulo bias).
/// Unlike std::uniform_int_distribution, whose algorithm each standard library chooses, it
/// gives the same numbers everywhere.
std::uint64_t uniform_below(std::mt19937_64& engine, std::uint64_t bound) {
  const std::uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  std::uint64_t r = engine();
  while (r < threshold) r = engine();
  return r % bound;
}

/// `order` cut into consecutive batches of batch_size; a short last batch kept unless drop_last.
std::vector<std::vector<std::int64_t>> cut(const std::vector<std::int64_t>& order, std::int64_t batch_size,
                                           bool drop_last) {
  std::vector<std::vector<std::int64_t>> out;
  const auto n = static_cast<std::int64_t>(order.size());
  // (begin + batch_size would overflow for a huge batch_size; n - begin cannot)
  for (std::int64_t begin = 0; begin < n; begin += std::min(batch_size, n - begin)) {
    const std::int64_t end = begin + std::min(batch_size, n - begin);
    if (drop_last && end - begin < batch_size) break;
    out.emplace_back(order.begin() + begin, order.begin() + end);
  }
  return out;
}

void check_batch_size(const char* op, std::int64_t batch_size) {
  if (batch_size < 1) fail("{}: batch_size must be positive, got {}", op, batch_size);
}

}  // namespace

std::vector<std::int64_t> permutation(std::int64_t n, Generator* gen) {
  if (n < 0) fail("permutation: n must be non-negative, got {}", n);
  check_fits_in_memory(n, sizeof(std::int64_t), "permutation", "a permutation of n indices");
  Generator& g = gen ? *gen : default_generator();
  std::lock_guard lock(g.mutex());  // the default generator may be shared by threads
  auto& engine = g.engine();
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), std::int64_t{0});
  for (std::int64_t i = n - 1; i > 0; --i)  // Fisher-Yates: p[i] <- a uniform pick of p[0..i]
    std::swap(p[i], p[uniform_below(engine, static_cast<std::uint64_t>(i) + 1)]);
  return p;
}

std::vector<std::vector<std::int64_t>> batches(std::int64_t n, std::int64_t batch_size, bool shuffle, Generator* gen,
                                               bool drop_last) {
  if (n < 0) fail("batches: n must be non-negative, got {}", n);
  check_batch_size("batches", batch_size);
  check_fits_in_memory(n, sizeof(std::int64_t), "batches", "the list of n indices");
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  if (shuffle) order = permutation(n, gen);
  else std::iota(order.begin(), order.end(), std::int64_t{0});
  return cut(order, batch_size, drop_last);
}

std::vector<std::vector<std::int64_t>> bucket_batches(const std::vector<std::int64_t>& lengths,
                                                      std::int64_t batch_size, Generator* gen) {
  check_batch_size("bucket_batches", batch_size);
  for (std::size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] < 0) fail("bucket_batches: lengths[{}] is negative ({})", i, lengths[i]);
  // a random order, then a stable sort by length: equal lengths stay in random order
  std::vector<std::int64_t> order = permutation(static_cast<std::int64_t>(lengths.size()), gen);
  std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) { return lengths[a] < lengths[b]; });
  auto sorted = cut(order, batch_size, false);
  std::vector<std::vector<std::int64_t>> out;
  out.reserve(sorted.size());
  for (std::int64_t b : permutation(static_cast<std::int64_t>(sorted.size()), gen)) out.push_back(std::move(sorted[b]));
  return out;
}

Tensor index_tensor(const std::vector<std::int64_t>& values) {
  Tensor t = empty({static_cast<std::int64_t>(values.size())}, i64);
  std::copy(values.begin(), values.end(), t.data<std::int64_t>());
  return t;
}

Tensor take(const Tensor& t, const std::vector<std::int64_t>& rows) { return index_select(t, 0, index_tensor(rows)); }

}  // namespace xgrad::data
