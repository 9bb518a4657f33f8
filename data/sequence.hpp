#pragma once
// Sequences into tensors: Keras' pad_sequences, next-token windows for language models,
// Keras' timeseries windows, padding masks, and PyTorch's truncated-BPTT stream batching
// (word_language_model's batchify / get_batch). Every tensor is built with xgrad ops, so
// windows over a float tensor stay differentiable.
#include <cstdint>
#include <vector>

#include "xgrad/core/shape.hpp"
#include "xgrad/core/tensor.hpp"

namespace xgrad::data {

/// Which end of a sequence padding goes to, or truncation cuts from (Keras' "pre"/"post").
/// The same enum the recurrent layers take (core's PadSide), so a padded batch passes straight
/// through.
using Side = PadSide;

/// A padded batch: ids i64 [N, maxlen] and lengths i64 [N], the tokens kept per row.
struct Padded {
  Tensor ids;
  Tensor lengths;
};

/// keras.utils.pad_sequences: every sequence cut to `maxlen` (-1: the longest) from the
/// `truncating` side and filled with `value` on the `padding` side (both "pre" by default).
/// Unlike Keras, maxlen = 0 gives an [N, 0] batch instead of a broadcast error.
Padded pad_sequences(const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t maxlen = -1,
                     Side padding = Side::pre, Side truncating = Side::pre, std::int64_t value = 0);

/// A padded batch of feature sequences: values [N, maxlen, F...] and lengths i64 [N].
struct PaddedFeatures {
  Tensor values;
  Tensor lengths;
};

/// pad_sequences for sequences of feature vectors, tensors [len_i, F...] of one dtype and
/// feature shape (Keras' sample_shape); differentiable with respect to each sequence. A name
/// of its own: as an overload of pad_sequences, a call like pad_sequences({{5}}) is ambiguous.
PaddedFeatures pad_feature_sequences(const std::vector<Tensor>& sequences, std::int64_t maxlen = -1,
                                     Side padding = Side::pre, Side truncating = Side::pre, double value = 0);

/// 1 at the padded steps of a batch of `maxlen` steps with these lengths (i64 [N]), else 0:
/// i64 [N, maxlen], the key_padding_mask of the attention layers.
Tensor padding_mask(const Tensor& lengths, std::int64_t maxlen, Side padding = Side::pre);

/// Inputs and targets of a windowed dataset.
struct Windows {
  Tensor inputs;
  Tensor targets;
};

/// Start of every window of keras.utils.timeseries_dataset_from_array over `length` steps:
/// 0, stride, 2 stride, ... while start + (sequence_length - 1) * sampling_rate < length.
std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t sequence_length,
                                        std::int64_t sequence_stride = 1, std::int64_t sampling_rate = 1);

/// Keras' timeseries windows: data [T, ...] -> [N, sequence_length, ...], window i holding
/// data[s_i + j * sampling_rate] for s_i = window_starts(T, ...)[i]. Differentiable; any dtype.
Tensor timeseries_windows(const Tensor& data, std::int64_t sequence_length, std::int64_t sequence_stride = 1,
                          std::int64_t sampling_rate = 1);

/// timeseries_dataset_from_array(data, targets, ...): the windows and targets[s_i], the
/// target of the window that starts at s_i (Keras: "targets[i] corresponds to the window
/// starting at i"; to predict the step after each window, pass
/// targets = data[(sequence_length - 1) * sampling_rate + 1 :]). Windows that start past
/// targets' end are dropped, as in Keras.
Windows timeseries_windows(const Tensor& data, const Tensor& targets, std::int64_t sequence_length,
                           std::int64_t sequence_stride = 1, std::int64_t sampling_rate = 1);

/// Next-token windows of a corpus (the n-gram model's training set): inputs i64 [N, k] =
/// w_t..w_{t+k-1} and targets i64 [N] = w_{t+k}, for t = 0, stride, 2 stride, ...
Windows next_token_windows(const std::vector<std::int64_t>& tokens, std::int64_t k, std::int64_t stride = 1);

/// Truncated-BPTT batching, as PyTorch's word_language_model: the corpus is cut into
/// batch_size contiguous streams of L = n / batch_size tokens (the tail dropped), read side
/// by side in windows of bptt steps; a hidden state carried from window i to i + 1 continues
/// the same text in every row.
class StreamBatcher {
 public:
  StreamBatcher(const std::vector<std::int64_t>& tokens, std::int64_t batch_size, std::int64_t bptt);

  /// Number of windows: ceil((L - 1) / bptt) (get_batch's range(0, L - 1, bptt)).
  std::int64_t size() const;
  /// Window i: inputs i64 [B, k] = streams[:, i bptt : i bptt + k], targets i64 [B, k] the
  /// same shifted one step ahead; k = min(bptt, L - 1 - i bptt), so only the last is shorter.
  Windows window(std::int64_t i) const;
  /// The streams, i64 [B, L] (batchify's [L, B], transposed to batch-first).
  const Tensor& streams() const { return streams_; }
  std::int64_t batch_size() const { return streams_.size(0); }
  std::int64_t bptt() const { return bptt_; }

 private:
  Tensor streams_;
  std::int64_t bptt_;
};

}  // namespace xgrad::data
