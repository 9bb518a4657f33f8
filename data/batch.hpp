#pragma once
// Seeded shuffling and batching of dataset indices: PyTorch DataLoader's RandomSampler +
// BatchSampler, bucketing by length (as torchtext's BucketIterator) so that padded batches
// waste little, and row selection. All randomness comes from a Generator (the default one
// when none is passed): the same seed gives the same batches on every platform.
#include <cstdint>
#include <vector>

#include "xgrad/core/random.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::data {

/// A random permutation of 0 .. n-1 (torch.randperm), by Fisher-Yates over the generator's engine.
std::vector<std::int64_t> permutation(std::int64_t n, Generator* gen = nullptr);

/// Indices 0..n-1, shuffled or in order, cut into batches of batch_size; the last batch is
/// shorter unless drop_last drops it (DataLoader(batch_size, shuffle, drop_last)).
std::vector<std::vector<std::int64_t>> batches(std::int64_t n, std::int64_t batch_size, bool shuffle = true,
                                               Generator* gen = nullptr, bool drop_last = false);

/// Batches of indices of similar length: sorted by length (ties broken at random), cut into
/// batches of batch_size (the last one shorter), the batch order shuffled. Padding each batch
/// to its own longest sequence then wastes little.
std::vector<std::vector<std::int64_t>> bucket_batches(const std::vector<std::int64_t>& lengths,
                                                      std::int64_t batch_size, Generator* gen = nullptr);

/// The values as an i64 tensor [n]: token ids, row indices, lengths.
Tensor index_tensor(const std::vector<std::int64_t>& values);

/// Rows of t along axis 0 (index_select, so differentiable): t [N, ...] -> [rows.size(), ...].
Tensor take(const Tensor& t, const std::vector<std::int64_t>& rows);

}  // namespace xgrad::data
