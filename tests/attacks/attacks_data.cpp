// Attacks (attacks.hpp) on: data (batching, padding, windows, stream batching, vocabularies,
// tokenizers) and truncated BPTT. Sizes that overflow or would loop, counts that cannot fit in
// memory, zero and negative sizes, out-of-range indices, empty inputs; valid edge cases are
// checked against values worked out by hand (Keras / PyTorch semantics).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "attacks.hpp"

namespace xgrad::attacks {
namespace {

constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
using Ids = std::vector<std::int64_t>;
using Batches = std::vector<std::vector<std::int64_t>>;

void expect_shape(const Tensor& t, const Shape& shape, const std::string& what) {
  expect(t.defined() && t.shape() == shape, fmt::format("{} of shape {}, got {}", what, to_string(shape),
                                                        t.defined() ? to_string(t.shape()) : "undefined"));
}

void expect_ids(const Ids& got, const Ids& want, const std::string& what) {
  expect(got == want, fmt::format("{} = [{}], got [{}]", what, fmt::join(want, ", "), fmt::join(got, ", ")));
}

/// Every index 0 .. n-1 exactly once across the batches.
bool covers_once(const Batches& batches, std::int64_t n) {
  Ids all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  std::sort(all.begin(), all.end());
  Ids want(static_cast<std::size_t>(n));
  std::iota(want.begin(), want.end(), 0);
  return all == want;
}

Register rows{"data", {
  // --- batches / permutation / bucket_batches -------------------------------------------------
  {"batches over 10^12 indices is refused before allocating", [] {
     expect_error([] { data::batches(1'000'000'000'000, 1); }, "batches.*1000000000000");
     expect_error([] { data::batches(1'000'000'000'000, 1, false); }, "batches.*1000000000000");
   }},
  {"batches with batch_size 0, negative or n negative", [] {
     expect_error([] { data::batches(10, 0); }, "batches: batch_size must be positive, got 0");
     expect_error([] { data::batches(10, -3, false); }, "batches: batch_size must be positive, got -3");
     expect_error([] { data::batches(-1, 4); }, "batches: n must be non-negative, got -1");
     expect_error([] { data::batches(5, std::numeric_limits<std::int64_t>::min()); }, "batches: batch_size.*-9223372036854775808");
   }},
  {"batches: edge sizes (n 0, batch_size past n or int64 max, drop_last)", [] {
     expect(data::batches(0, 4).empty(), "no batches for n = 0");
     expect(data::batches(5, kMax, false) == Batches{{0, 1, 2, 3, 4}}, "one batch [0..4] for batch_size int64 max");
     expect(data::batches(5, kMax, false, nullptr, true).empty(), "drop_last drops the only (short) batch");
     expect(data::batches(5, 2, false, nullptr, true) == Batches{{0, 1}, {2, 3}}, "[[0,1],[2,3]] with drop_last");
     expect(data::batches(5, 2, false) == Batches{{0, 1}, {2, 3}, {4}}, "[[0,1],[2,3],[4]]");
     Generator gen(7);
     const Batches shuffled = data::batches(1001, 10, true, &gen);
     expect(shuffled.size() == 101 && shuffled.back().size() == 1, "101 batches, the last of 1");
     expect(covers_once(shuffled, 1001), "every index once in the shuffled batches");
   }},
  {"permutation: negative, 2^62, 0, 1 and reproducibility", [] {
     expect_error([] { data::permutation(-5); }, "permutation: n must be non-negative, got -5");
     expect_error([] { data::permutation(std::int64_t{1} << 62); }, "permutation.*4611686018427387904");
     expect(data::permutation(0).empty(), "an empty permutation of 0");
     expect_ids(data::permutation(1), {0}, "permutation(1)");
     Generator a(3), b(3);
     const Ids p = data::permutation(1000, &a);
     expect_ids(p, data::permutation(1000, &b), "the same seed's permutation");
     Ids sorted = p;
     std::sort(sorted.begin(), sorted.end());
     Ids iota(1000);
     std::iota(iota.begin(), iota.end(), 0);
     expect(sorted == iota && p != iota, "a shuffled permutation of 0..999");
   }},
  {"bucket_batches: negative length, batch_size 0, empty lengths, equal-length buckets", [] {
     expect_error([] { data::bucket_batches({3, -2, 1}, 2); }, "bucket_batches: lengths\\[1\\] is negative \\(-2\\)");
     expect_error([] { data::bucket_batches({3, 1}, 0); }, "bucket_batches: batch_size must be positive, got 0");
     expect(data::bucket_batches({}, 3).empty(), "no batches for no lengths");
     const Ids lengths{5, 1, 3, 1, 5, 3, 7};
     Generator gen(11);
     const Batches b = data::bucket_batches(lengths, 2, &gen);
     expect(b.size() == 4 && covers_once(b, 7), "4 batches covering 0..6 once");
     for (const auto& batch : b)
       expect(std::all_of(batch.begin(), batch.end(), [&](std::int64_t i) { return lengths[i] == lengths[batch[0]]; }),
              "each batch of sorted lengths {1,1},{3,3},{5,5},{7} to hold one length");
     expect(data::bucket_batches(lengths, kMax, &gen).size() == 1, "one batch for batch_size int64 max");
   }},
  // --- take -------------------------------------------------------------------------------------
  {"take: rows out of range, negative, on a 0-d tensor; no rows", [] {
     const Tensor t = tensor({{1, 2}, {3, 4}, {5, 6}});
     expect_error([&] { data::take(t, {0, 3}); }, "index_select.*3");
     expect_error([&] { data::take(t, {-1}); }, "index_select.*-1");
     expect_error([&] { data::take(t, {kMax}); }, "index_select.*9223372036854775807");
     expect_error([&] { data::take(scalar(1.0), {0}); }, "index_select");
     const Tensor none = data::take(t, {});
     expect_shape(none, {0, 2}, "take with no rows");
     expect_values(data::take(t, {2, 0, 2}), {5, 6, 1, 2, 5, 6});
   }},
  // --- pad_sequences ----------------------------------------------------------------------------
  {"pad_sequences: maxlen below -1 is refused", [] {
     expect_error([] { data::pad_sequences({{1, 2}}, -2); }, "pad_sequences: maxlen.*got -2");
     expect_error([] { data::pad_sequences({{1}}, std::numeric_limits<std::int64_t>::min()); },
                  "pad_sequences: maxlen.*-9223372036854775808");
   }},
  {"pad_sequences: lengths above maxlen are truncated on the chosen side", [] {
     const std::vector<Ids> s{{1, 2, 3, 4}, {5}, {}};
     auto pre = data::pad_sequences(s, 2);
     expect_values(pre.ids, {3, 4, 0, 5, 0, 0});
     expect_values(pre.lengths, {2, 1, 0});
     auto post = data::pad_sequences(s, 2, data::Side::post, data::Side::post, -9);
     expect_values(post.ids, {1, 2, 5, -9, -9, -9});
     expect_values(post.lengths, {2, 1, 0});
     auto longest = data::pad_sequences(s);  // maxlen -1: the longest (4)
     expect_values(longest.ids, {1, 2, 3, 4, 0, 0, 0, 5, 0, 0, 0, 0});
     auto zero = data::pad_sequences(s, 0);
     expect_shape(zero.ids, {3, 0}, "maxlen 0: the ids");
     expect_values(zero.lengths, {0, 0, 0});
   }},
  {"pad_sequences: a maxlen that cannot fit in memory or overflows N x maxlen", [] {
     expect_error([] { data::pad_sequences({{1}}, std::int64_t{1} << 62); }, "pad_sequences.*padded batch");
     expect_error([] { data::pad_sequences(std::vector<Ids>(16, Ids{1}), std::int64_t{1} << 61); },
                  "pad_sequences.*(overflow|padded batch)");
   }},
  {"pad_sequences: empty inputs give the right empty batch", [] {
     auto none = data::pad_sequences({});
     expect_shape(none.ids, {0, 0}, "no sequences: ids");
     expect_shape(none.lengths, {0}, "no sequences: lengths");
     auto none5 = data::pad_sequences({}, 5);
     expect_shape(none5.ids, {0, 5}, "no sequences with maxlen 5");
     auto empties = data::pad_sequences({{}, {}});
     expect_shape(empties.ids, {2, 0}, "two empty sequences");
     auto filled = data::pad_sequences({{}}, 3, data::Side::pre, data::Side::pre, -7);
     expect_values(filled.ids, {-7, -7, -7});
     expect_values(filled.lengths, {0});
   }},
  {"pad_feature_sequences: none, mismatched features and dtypes, 0-d, huge maxlen", [] {
     expect_error([] { data::pad_feature_sequences({}); }, "pad_feature_sequences: no sequences");
     expect_error([] { data::pad_feature_sequences({ones({2, 3}), ones({2, 4})}); }, "pad_feature_sequences: sequence 1.*\\[2, 4\\]");
     expect_error([] { data::pad_feature_sequences({ones({2, 3}), ones({2, 3}, f64)}); }, "pad_feature_sequences: sequence 1 is f64");
     expect_error([] { data::pad_feature_sequences({scalar(1.0)}); }, "pad_feature_sequences: sequence 0 has shape \\[\\]");
     expect_error([] { data::pad_feature_sequences({ones({2, 3})}, -5); }, "maxlen.*-5");
     expect_error([] { data::pad_feature_sequences({ones({2, 3})}, std::int64_t{1} << 62); },
                  "pad_feature_sequences: .*4611686018427387904, 3\\].*overflows");
     expect_error([] { data::pad_feature_sequences({ones({2, 3})}, std::int64_t{1} << 40); },
                  "pad_feature_sequences: the padded batch needs 3298534883328 x 4 bytes");
   }},
  {"pad_feature_sequences: truncation and padding sides with a fill value", [] {
     const Tensor a = tensor({{1, 2}, {3, 4}, {5, 6}}), b = tensor({{7, 8}});
     auto p = data::pad_feature_sequences({a, b}, 2, data::Side::post, data::Side::pre, -1);
     expect_shape(p.values, {2, 2, 2}, "values");
     expect_values(p.values, {3, 4, 5, 6, 7, 8, -1, -1});
     expect_values(p.lengths, {2, 1});
     auto q = data::pad_feature_sequences({a, b}, -1, data::Side::pre, data::Side::post);
     expect_values(q.values, {1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 7, 8});
     auto empty_steps = data::pad_feature_sequences({zeros({0, 2}), b}, 0);
     expect_shape(empty_steps.values, {2, 0, 2}, "maxlen 0");
   }},
  // --- padding_mask -----------------------------------------------------------------------------
  {"padding_mask: lengths above maxlen, negative, wrong dtype or rank, negative maxlen", [] {
     expect_error([] { data::padding_mask(tensor({1, 5}, i64), 4); }, "padding_mask: lengths\\[1\\] = 5 is outside \\[0, 4\\]");
     expect_error([] { data::padding_mask(tensor({-1}, i64), 4); }, "padding_mask: lengths\\[0\\] = -1");
     expect_error([] { data::padding_mask(tensor({1, 2}), 4); }, "padding_mask: lengths must be i64 \\[N\\], got f32");
     expect_error([] { data::padding_mask(tensor({{1}, {2}}, i64), 4); }, "padding_mask: lengths must be i64 \\[N\\].*\\[2, 1\\]");
     expect_error([] { data::padding_mask(tensor({1}, i64), -1); }, "padding_mask: maxlen must be non-negative, got -1");
     expect_error([] { data::padding_mask(tensor({1}, i64), kMax); }, "padding_mask.*mask");
   }},
  {"padding_mask: pre and post masks, empty batch, maxlen 0", [] {
     const Tensor lengths = tensor({0, 2, 3}, i64);
     expect_values(data::padding_mask(lengths, 3), {1, 1, 1, 1, 0, 0, 0, 0, 0});
     expect_values(data::padding_mask(lengths, 3, data::Side::post), {1, 1, 1, 0, 0, 1, 0, 0, 0});
     expect_shape(data::padding_mask(data::index_tensor({}), 4), {0, 4}, "no rows");
     expect_shape(data::padding_mask(tensor({0, 0}, i64), 0), {2, 0}, "maxlen 0");
   }},
  // --- windows ----------------------------------------------------------------------------------
  {"window_starts / timeseries_windows: a sampling rate of 2^62 overflows the reach", [] {
     expect_error([] { data::window_starts(10, 3, 1, std::int64_t{1} << 62); }, "window_starts.*overflow");
     expect_error([] { data::timeseries_windows(arange(10.0), 3, 1, std::int64_t{1} << 62); }, "timeseries_windows.*overflow");
     expect_error([] { data::timeseries_windows(arange(10.0), kMax, 1, 2); }, "timeseries_windows.*overflow");
     // a reach that fits but passes the data: no windows, no loop
     expect(data::window_starts(10, 2, 1, std::int64_t{1} << 61).empty(), "no windows for a reach past the data");
     expect(data::window_starts(kMax, 2, kMax, kMax / 2).size() == 1, "one window at 0 for a stride of int64 max");
   }},
  {"timeseries_windows: 9 * 10^10 window rows over a 10^6-step series are refused, not allocated", [] {
     const Tensor x = zeros({1'000'000});
     expect_error([&] { data::timeseries_windows(x, 100'000); }, "timeseries_windows: the row list of the windows needs 90000100000 x 8 bytes");
     expect_error([&] { data::timeseries_windows(x, x, 100'000); }, "timeseries_windows: the row list");
     expect_shape(data::timeseries_windows(x, 100'000, 300'000), {4, 100'000}, "4 windows at stride 300 000");
   }},
  {"window_starts: zero, negative sizes; a window count past memory", [] {
     expect_error([] { data::window_starts(10, 0); }, "window_starts: sequence_length.*got 0, 1, 1");
     expect_error([] { data::window_starts(10, 3, 0); }, "window_starts: .*got 3, 0, 1");
     expect_error([] { data::window_starts(10, 3, 1, -1); }, "window_starts: .*got 3, 1, -1");
     expect_error([] { data::window_starts(-1, 3); }, "window_starts: length must be non-negative, got -1");
     expect_error([] { data::window_starts(kMax, 1); }, "window_starts.*window list");
     expect(data::window_starts(0, 1).empty(), "no windows over 0 steps");
     expect_ids(data::window_starts(10, 3, 4, 2), {0, 4}, "window_starts(10, 3, 4, 2)");
     expect_ids(data::window_starts(5, 5), {0}, "window_starts(5, 5)");
   }},
  {"timeseries_windows: values with stride and rate, targets, windows longer than the data, 0-d", [] {
     const Tensor x = arange(10.0, f64);
     const Tensor w = data::timeseries_windows(x, 3, 2, 2);
     expect_shape(w, {3, 3}, "windows");
     expect_values(w, {0, 2, 4, 2, 4, 6, 4, 6, 8});
     const auto wt = data::timeseries_windows(x, arange(100.0, 103.0, 1, f64), 3, 2, 2);  // 3 targets: starts 0, 2
     expect_values(wt.inputs, {0, 2, 4, 2, 4, 6});
     expect_values(wt.targets, {100, 102});
     expect_shape(data::timeseries_windows(arange(5.0), 20), {0, 20}, "windows longer than the data");
     expect_shape(data::timeseries_windows(zeros({4, 2, 3}), 2, 3), {1, 2, 2, 3}, "feature windows");
     expect_error([] { data::timeseries_windows(scalar(1.0), 1); }, "timeseries_windows: expects a time axis first, got shape \\[\\]");
     expect_error([] { data::timeseries_windows(arange(5.0), scalar(1.0), 1); }, "timeseries_windows: expects a time axis");
   }},
  {"next_token_windows: k of int64 max, zero, empty corpus, short corpus", [] {
     expect_error([] { data::next_token_windows({1, 2, 3}, kMax); }, "next_token_windows.*overflow");
     expect_error([] { data::next_token_windows({1, 2, 3}, 0); }, "next_token_windows: k and stride must be positive, got k = 0");
     expect_error([] { data::next_token_windows({1, 2, 3}, 1, -1); }, "next_token_windows: .*stride = -1");
     const auto w = data::next_token_windows({1, 2, 3, 4, 5}, 2);
     expect_values(w.inputs, {1, 2, 2, 3, 3, 4});
     expect_values(w.targets, {3, 4, 5});
     const auto none = data::next_token_windows({}, 3);
     expect_shape(none.inputs, {0, 3}, "no inputs from an empty corpus");
     expect_shape(none.targets, {0}, "no targets from an empty corpus");
     const auto shorter = data::next_token_windows({1, 2}, 5);
     expect_shape(shorter.inputs, {0, 5}, "no inputs from a corpus shorter than k + 1");
     const auto strided = data::next_token_windows({1, 2, 3, 4, 5, 6}, 1, 2);
     expect_values(strided.inputs, {1, 3, 5});
     expect_values(strided.targets, {2, 4, 6});
   }},
  // --- StreamBatcher ----------------------------------------------------------------------------
  {"StreamBatcher: batch_size 0, bptt 0, negative, larger than the stream", [] {
     Ids tokens(10);
     std::iota(tokens.begin(), tokens.end(), 0);
     expect_error([&] { data::StreamBatcher(tokens, 0, 4); }, "StreamBatcher: .*batch_size = 0, bptt = 4");
     expect_error([&] { data::StreamBatcher(tokens, 2, 0); }, "StreamBatcher: .*batch_size = 2, bptt = 0");
     expect_error([&] { data::StreamBatcher(tokens, -1, -1); }, "StreamBatcher: .*batch_size = -1");
     expect_error([&] { data::StreamBatcher(tokens, 20, 4); }, "StreamBatcher: 10 tokens in 20 streams leave 0");
     expect_error([&] { data::StreamBatcher(tokens, kMax, 4); }, "StreamBatcher: 10 tokens in 9223372036854775807 streams");
     expect_error([&] { data::StreamBatcher({}, 1, 1); }, "StreamBatcher: 0 tokens");
     expect_error([&] { data::StreamBatcher(tokens, 6, 1); }, "leave 1 per stream");
   }},
  {"StreamBatcher: windows, a bptt of 2^62, index out of range", [] {
     Ids tokens(11);
     std::iota(tokens.begin(), tokens.end(), 0);
     const data::StreamBatcher sb(tokens, 2, 2);  // L = 5: [0..4], [5..9], token 10 dropped
     expect_values(sb.streams(), {0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
     expect(sb.size() == 2, "2 windows for L = 5, bptt 2");
     const auto w1 = sb.window(1);
     expect_values(w1.inputs, {2, 3, 7, 8});
     expect_values(w1.targets, {3, 4, 8, 9});
     expect_error([&] { sb.window(2); }, "StreamBatcher::window: index 2 is out of range for 2 windows");
     expect_error([&] { sb.window(-1); }, "StreamBatcher::window: index -1");
     const data::StreamBatcher huge(tokens, 2, std::int64_t{1} << 62);
     expect(huge.size() == 1, "one window for bptt 2^62");
     const auto w = huge.window(0);
     expect_values(w.inputs, {0, 1, 2, 3, 5, 6, 7, 8});
     expect_values(w.targets, {1, 2, 3, 4, 6, 7, 8, 9});
     const data::StreamBatcher maxed(tokens, 1, kMax);
     expect(maxed.size() == 1 && maxed.window(0).inputs.shape() == Shape{1, 10}, "bptt int64 max: one [1, 10] window");
   }},
  // --- TruncatedBPTT ----------------------------------------------------------------------------
  {"TruncatedBPTT: k1 = k2 = 2^62 and int64 max steps do not loop or overflow", [] {
     const nn::TruncatedBPTT t(std::int64_t{1} << 62, std::int64_t{1} << 62);
     const auto w = t.windows(10);
     expect(w.size() == 1 && w[0].begin == 0 && w[0].loss_begin == 0 && w[0].end == 10, "one window [0, 10)");
     const auto big = t.windows(kMax);
     expect(big.size() == 2 && big[0].end == std::int64_t{1} << 62 && big[1].begin == std::int64_t{1} << 62 &&
                big[1].loss_begin == std::int64_t{1} << 62 && big[1].end == kMax,
            "two windows [0, 2^62), [2^62, int64 max)");
     const nn::TruncatedBPTT m(kMax, kMax);
     expect(m.windows(kMax).size() == 1, "k1 = int64 max: one window over int64 max steps");
     expect_error([] { nn::TruncatedBPTT(1, 1).windows(kMax); }, "TruncatedBPTT::windows.*window list");
     expect(t.windows(0).empty(), "no windows over 0 steps");
   }},
  {"TruncatedBPTT: invalid k1, k2, steps and state lookups", [] {
     expect_error([] { nn::TruncatedBPTT(0, 0); }, "TruncatedBPTT: .*k1 = 0, k2 = 0");
     expect_error([] { nn::TruncatedBPTT(3, 2); }, "TruncatedBPTT: .*k1 = 3, k2 = 2");
     expect_error([] { nn::TruncatedBPTT(2, 3); }, "TruncatedBPTT: .*k1 = 2, k2 = 3");
     expect_error([] { nn::TruncatedBPTT(-2, -4); }, "TruncatedBPTT: .*k1 = -2");
     nn::TruncatedBPTT t(2, 4);
     expect_error([&] { t.windows(-1); }, "TruncatedBPTT::windows: steps must be non-negative, got -1");
     const auto w = t.windows(5);
     expect(w.size() == 3 && w[0].begin == 0 && w[0].end == 2 && w[1].begin == 0 && w[1].loss_begin == 2 &&
                w[1].end == 4 && w[2].begin == 2 && w[2].loss_begin == 4 && w[2].end == 5,
            "windows {0,0,2}, {0,2,4}, {2,4,5}");
     expect(t.state_at(0).empty(), "no state at step 0");
     expect_error([&] { t.state_at(3); }, "TruncatedBPTT: no state was kept at step 3");
     expect_error([&] { t.state_at(-1); }, "TruncatedBPTT::state_at: step must be non-negative, got -1");
     expect_error([&] { t.keep(-1, {}); }, "TruncatedBPTT::keep: step must be non-negative, got -1");
     Tensor h = ones({1, 2}).requires_grad_();
     t.keep(2, {{h * 2.0}});
     const auto& kept = t.state_at(2);
     expect(kept.size() == 1 && kept[0].size() == 1 && !kept[0][0].grad_fn(), "the state at 2 kept detached");
     expect_values(kept[0][0], {2, 2});
     t.keep(6, {{h}});  // forgets every step before 6 - (4 - 2) = 4
     expect_error([&] { t.state_at(2); }, "no state was kept at step 2");
   }},
  // --- Vocabulary and tokenizers ----------------------------------------------------------------
  {"Vocabulary: unknown tokens, ids out of range, bad build arguments", [] {
     const auto v = data::Vocabulary::build({{"a", "b", "a"}, {"c", "a", "b"}});
     expect(v.size() == 5, "5 tokens: <pad>, <unk>, a, b, c");
     expect_ids(v.encode({"a", "zzz", "", "c", "<pad>", "<unk>"}), {2, 1, 1, 4, 0, 1}, "encode with unknown tokens");
     expect_error([&] { v.token(5); }, "Vocabulary::token: id 5 is out of range for a vocabulary of 5 tokens");
     expect_error([&] { v.token(-1); }, "Vocabulary::token: id -1");
     expect_error([&] { v.decode({2, kMax}); }, "Vocabulary::token: id 9223372036854775807");
     expect_error([] { data::Vocabulary::build({{"a"}}, 0); }, "Vocabulary::build: min_count must be at least 1, got 0");
     expect_error([] { data::Vocabulary::build({{"a"}}, 1, 1); }, "Vocabulary::build: max_size.*got 1");
     expect_error([] { data::Vocabulary::build({{"a"}}, 1, -2); }, "Vocabulary::build: max_size.*got -2");
     expect(data::Vocabulary::build({}).size() == 2, "an empty corpus: the two specials");
     expect(data::Vocabulary::build({{"a", "b", "a"}}, 1, 3).tokens() ==
                std::vector<std::string>{"<pad>", "<unk>", "a"},
            "max_size 3 keeps the most frequent token");
     expect(data::Vocabulary::build({{"x", "<unk>", "<pad>", "x"}}, 2).tokens() ==
                std::vector<std::string>{"<pad>", "<unk>", "x"},
            "specials in the corpus keep ids 0 and 1; min_count 2");
   }},
  {"Vocabulary::from_tokens: missing specials, duplicates, round trip", [] {
     expect_error([] { data::Vocabulary::from_tokens({}); }, "Vocabulary::from_tokens: .*got 0 tokens");
     expect_error([] { data::Vocabulary::from_tokens({"<unk>", "<pad>"}); }, "Vocabulary::from_tokens: .*starting \"<unk>\"");
     expect_error([] { data::Vocabulary::from_tokens({"<pad>", "<unk>", "a", "a"}); }, "token \"a\" appears twice \\(ids 2 and 3\\)");
     expect_error([] { data::Vocabulary::from_tokens({"<pad>", "<unk>", "<pad>"}); }, "token \"<pad>\" appears twice");
     const auto v = data::Vocabulary::build({{"z", "y", "z", "\xff"}});
     const auto w = data::Vocabulary::from_tokens(v.tokens());
     expect(w.tokens() == v.tokens() && w.id("\xff") == v.id("\xff"), "a vocabulary round trip");
   }},
  {"words and characters: empty, whitespace only, invalid and truncated UTF-8", [] {
     expect(data::words("").empty() && data::words(" \t\n\r\v\f").empty(), "no words in empty or blank text");
     expect(data::words("Hi, you!") == std::vector<std::string>{"hi", ",", "you", "!"}, "hi , you !");
     expect(data::words("\xc3\x89T\xc3\x89", true) == std::vector<std::string>{"\xc3\x89t\xc3\x89"}, "only ASCII folded");
     expect(data::characters("").empty(), "no characters in empty text");
     expect(data::characters("n\xc3\xa9") == std::vector<std::string>{"n", "\xc3\xa9"}, "n, e-acute");
     expect(data::characters("\xe2\x82") == std::vector<std::string>{"\xe2", "\x82"}, "a truncated 3-byte sequence: 2 tokens");
     expect(data::characters("\xed\xa0\x80") == std::vector<std::string>{"\xed", "\xa0", "\x80"}, "a surrogate: 3 tokens");
     expect(data::characters("\xf4\x90\x80\x80").size() == 4, "above U+10FFFF: 4 tokens");
     expect(data::characters(std::string("a\0b", 3)).size() == 3, "a NUL byte is a token");
     expect(data::characters("\xf0\x9f\x98\x80x") == std::vector<std::string>{"\xf0\x9f\x98\x80", "x"}, "an emoji and x");
   }},
}};

}  // namespace
}  // namespace xgrad::attacks
