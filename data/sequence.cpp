#include "xgrad/data/sequence.hpp"

#include <algorithm>

#include "xgrad/autograd/ops.hpp"
#include "xgrad/data/batch.hpp"

namespace xgrad::data {

namespace {

/// Where a sequence of `length` goes in a padded row of `maxlen`: s[from, from + kept)
/// is copied to row[to, to + kept) (Keras: s[-maxlen:] or s[:maxlen], then x[-len:] or x[:len]).
struct Placement {
  std::int64_t from, kept, to;
};

Placement place(std::int64_t length, std::int64_t maxlen, Side padding, Side truncating) {
  const std::int64_t kept = std::min(length, maxlen);
  return {truncating == Side::pre ? length - kept : 0, kept, padding == Side::pre ? maxlen - kept : 0};
}

/// maxlen itself, or the longest length when it is -1.
std::int64_t resolve_maxlen(std::int64_t maxlen, const std::vector<std::int64_t>& lengths) {
  if (maxlen < -1) fail("pad_sequences: maxlen must be -1 (the longest) or non-negative, got {}", maxlen);
  if (maxlen >= 0) return maxlen;
  return lengths.empty() ? 0 : *std::max_element(lengths.begin(), lengths.end());
}

void check_window_args(const char* op, std::int64_t length, std::int64_t sequence_length,
                       std::int64_t sequence_stride, std::int64_t sampling_rate) {
  if (length < 0) fail("{}: length must be non-negative, got {}", op, length);
  if (sequence_length < 1 || sequence_stride < 1 || sampling_rate < 1)
    fail("{}: sequence_length, sequence_stride and sampling_rate must be positive, got {}, {}, {}", op,
         sequence_length, sequence_stride, sampling_rate);
}

/// The starts 0, stride, 2 stride, ... of the windows that fit in `length` steps. The last
/// element of a window starting at s is s + reach; a reach past int64 used to wrap around to a
/// negative number, and the loop then ran on, growing the list, forever.
std::vector<std::int64_t> starts_of(const char* op, std::int64_t length, std::int64_t sequence_length,
                                    std::int64_t sequence_stride, std::int64_t sampling_rate) {
  const std::int64_t reach = checked_mul(sequence_length - 1, sampling_rate, op);
  std::vector<std::int64_t> starts;
  if (reach >= length) return starts;
  const std::int64_t count = (length - 1 - reach) / sequence_stride + 1;
  check_fits_in_memory(count, sizeof(std::int64_t), op, "the window list");
  starts.reserve(static_cast<std::size_t>(count));
  for (std::int64_t i = 0; i < count; ++i) starts.push_back(i * sequence_stride);
  return starts;
}

std::int64_t time_steps(const char* op, const Tensor& data) {
  if (data.dim() < 1) fail("{}: expects a time axis first, got shape {}", op, data.shape());
  return data.size(0);
}

/// The windows at `starts`: data [T, ...] -> [N, sequence_length, ...].
Tensor windows_at(const Tensor& data, const std::vector<std::int64_t>& starts, std::int64_t sequence_length,
                  std::int64_t sampling_rate) {
  const auto windows = static_cast<std::int64_t>(starts.size());
  check_fits_in_memory(checked_mul(windows, sequence_length, "timeseries_windows"), sizeof(std::int64_t),
                       "timeseries_windows", "the row list of the windows");
  std::vector<std::int64_t> rows;
  rows.reserve(static_cast<std::size_t>(windows * sequence_length));
  for (std::int64_t s : starts)
    for (std::int64_t j = 0; j < sequence_length; ++j) rows.push_back(s + j * sampling_rate);
  Shape shape{static_cast<std::int64_t>(starts.size()), sequence_length};  // [N, L, ...]
  for (std::int64_t a = 1; a < data.dim(); ++a) shape.push_back(data.size(a));
  return reshape(take(data, rows), shape);
}

}  // namespace

Padded pad_sequences(const std::vector<std::vector<std::int64_t>>& sequences, std::int64_t maxlen, Side padding,
                     Side truncating, std::int64_t value) {
  std::vector<std::int64_t> lengths;
  for (const auto& s : sequences) lengths.push_back(static_cast<std::int64_t>(s.size()));
  const std::int64_t width = resolve_maxlen(maxlen, lengths);
  check_fits_in_memory(checked_mul(static_cast<std::int64_t>(sequences.size()), width, "pad_sequences"),
                       sizeof(std::int64_t), "pad_sequences", "the padded batch");
  Tensor ids = empty({static_cast<std::int64_t>(sequences.size()), width}, i64);
  std::int64_t* row = ids.data<std::int64_t>();
  for (std::size_t i = 0; i < sequences.size(); ++i, row += width) {
    const Placement p = place(lengths[i], width, padding, truncating);
    std::fill_n(row, width, value);
    std::copy_n(sequences[i].begin() + p.from, p.kept, row + p.to);
    lengths[i] = p.kept;
  }
  return {ids, index_tensor(lengths)};
}

PaddedFeatures pad_feature_sequences(const std::vector<Tensor>& sequences, std::int64_t maxlen, Side padding,
                                     Side truncating, double value) {
  if (sequences.empty()) fail("pad_feature_sequences: no sequences (their feature shape is unknown)");
  std::vector<std::int64_t> lengths;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const Tensor& s = sequences[i];
    if (s.dim() < 1) fail("pad_feature_sequences: sequence {} has shape {}; expected [length, ...]", i, s.shape());
    const Tensor& first = sequences[0];
    if (s.dtype() != first.dtype() || !std::equal(s.shape().begin() + 1, s.shape().end(), first.shape().begin() + 1,
                                                  first.shape().end()))
      fail("pad_feature_sequences: sequence {} is {} {} but sequence 0 is {} {}; feature shapes and dtypes must match", i,
           dtype_name(s.dtype()), s.shape(), dtype_name(first.dtype()), first.shape());
    lengths.push_back(s.size(0));
  }
  const std::int64_t width = resolve_maxlen(maxlen, lengths);
  // [N, maxlen, F...] checked here, so that a huge maxlen names this op rather than an inner pad
  Shape padded{static_cast<std::int64_t>(sequences.size()), width};
  for (std::int64_t a = 1; a < sequences[0].dim(); ++a) padded.push_back(sequences[0].size(a));
  check_fits_in_memory(checked_numel(padded, "pad_feature_sequences"), dtype_size(sequences[0].dtype()),
                       "pad_feature_sequences", "the padded batch");
  std::vector<Tensor> rows;
  for (std::size_t i = 0; i < sequences.size(); ++i) {
    const Placement p = place(lengths[i], width, padding, truncating);
    Tensor kept = slice(sequences[i], 0, p.from, p.from + p.kept);
    rows.push_back(pad(kept, 0, p.to, width - p.to - p.kept, value));
    lengths[i] = p.kept;
  }
  return {stack(rows, 0), index_tensor(lengths)};
}

Tensor padding_mask(const Tensor& lengths, std::int64_t maxlen, Side padding) {
  if (lengths.dtype() != i64 || lengths.dim() != 1)
    fail("padding_mask: lengths must be i64 [N], got {} {}", dtype_name(lengths.dtype()), lengths.shape());
  if (maxlen < 0) fail("padding_mask: maxlen must be non-negative, got {}", maxlen);
  check_fits_in_memory(checked_mul(std::max<std::int64_t>(lengths.numel(), 1), maxlen, "padding_mask"), 1,
                       "padding_mask", "the mask");
  const std::int64_t* len = lengths.data<std::int64_t>();
  for (std::int64_t i = 0; i < lengths.numel(); ++i)
    if (len[i] < 0 || len[i] > maxlen) fail("padding_mask: lengths[{}] = {} is outside [0, {}]", i, len[i], maxlen);
  Tensor steps = reshape(arange(0, static_cast<double>(maxlen), 1, i64), {1, maxlen});  // [1, T]
  Tensor column = reshape(lengths, {-1, 1});                                            // [N, 1]
  return padding == Side::post ? ge(steps, column) : lt(steps, static_cast<double>(maxlen) - column);
}

std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t sequence_length,
                                        std::int64_t sequence_stride, std::int64_t sampling_rate) {
  check_window_args("window_starts", length, sequence_length, sequence_stride, sampling_rate);
  return starts_of("window_starts", length, sequence_length, sequence_stride, sampling_rate);
}

Tensor timeseries_windows(const Tensor& data, std::int64_t sequence_length, std::int64_t sequence_stride,
                          std::int64_t sampling_rate) {
  const std::int64_t steps = time_steps("timeseries_windows", data);
  check_window_args("timeseries_windows", steps, sequence_length, sequence_stride, sampling_rate);
  return windows_at(data, starts_of("timeseries_windows", steps, sequence_length, sequence_stride, sampling_rate), sequence_length,
                    sampling_rate);
}

Windows timeseries_windows(const Tensor& data, const Tensor& targets, std::int64_t sequence_length,
                           std::int64_t sequence_stride, std::int64_t sampling_rate) {
  const std::int64_t steps = time_steps("timeseries_windows", data);
  const std::int64_t num_targets = time_steps("timeseries_windows", targets);
  check_window_args("timeseries_windows", steps, sequence_length, sequence_stride, sampling_rate);
  std::vector<std::int64_t> starts = starts_of("timeseries_windows", steps, sequence_length, sequence_stride, sampling_rate);
  std::erase_if(starts, [&](std::int64_t s) { return s >= num_targets; });
  return {windows_at(data, starts, sequence_length, sampling_rate), take(targets, starts)};
}

Windows next_token_windows(const std::vector<std::int64_t>& tokens, std::int64_t k, std::int64_t stride) {
  if (k < 1 || stride < 1) fail("next_token_windows: k and stride must be positive, got k = {}, stride = {}", k, stride);
  Tensor w = timeseries_windows(index_tensor(tokens), checked_add(k, 1, "next_token_windows"), stride);  // [N, k + 1]: k inputs, then the target
  return {slice(w, 1, 0, k), squeeze(slice(w, 1, k, k + 1), 1)};
}

StreamBatcher::StreamBatcher(const std::vector<std::int64_t>& tokens, std::int64_t batch_size, std::int64_t bptt)
    : bptt_(bptt) {
  if (batch_size < 1 || bptt < 1)
    fail("StreamBatcher: batch_size and bptt must be positive, got batch_size = {}, bptt = {}", batch_size, bptt);
  const auto n = static_cast<std::int64_t>(tokens.size());
  const std::int64_t length = n / batch_size;
  if (length < 2)
    fail("StreamBatcher: {} tokens in {} streams leave {} per stream; each needs at least 2 (an input and its target)",
         n, batch_size, length);
  streams_ = reshape(slice(index_tensor(tokens), 0, 0, batch_size * length), {batch_size, length});
}

// ceil((L - 1) / bptt) without the overflow of (L - 1 + bptt - 1) for a huge bptt
std::int64_t StreamBatcher::size() const { return ceil_div(streams_.size(1) - 1, bptt_); }

Windows StreamBatcher::window(std::int64_t i) const {
  if (i < 0 || i >= size()) fail("StreamBatcher::window: index {} is out of range for {} windows", i, size());
  const std::int64_t start = i * bptt_;
  const std::int64_t k = std::min(bptt_, streams_.size(1) - 1 - start);
  return {slice(streams_, 1, start, start + k), slice(streams_, 1, start + 1, start + 1 + k)};
}

}  // namespace xgrad::data
