// data/: Keras pad_sequences and timeseries windows (the documented examples and hand-computed
// cases), next-token windows, PyTorch word_language_model stream batching, vocabularies and
// tokenizers (UTF-8, invalid bytes), seeded permutations, batching and bucketing, errors.
#include <algorithm>
#include <map>
#include <numeric>
#include <set>

#include "testing.hpp"

using namespace xgrad;
using namespace xgrad::testing;
using namespace xgrad::data;

namespace {

using Ids = std::vector<std::int64_t>;
using Strings = std::vector<std::string>;
using Batches = std::vector<Ids>;

/// Checks an i64 tensor exactly (values compared as int64, not through double).
void check_ids(const Tensor& t, const Shape& shape, const Ids& values) {
  INFO("got ", to_string(t));
  CHECK(t.dtype() == i64);
  CHECK(t.shape() == shape);
  CHECK(t.to_vector<std::int64_t>() == values);
}

Ids flatten(const Batches& batches) {
  Ids all;
  for (const auto& b : batches) all.insert(all.end(), b.begin(), b.end());
  return all;
}

Ids sorted(Ids v) {
  std::sort(v.begin(), v.end());
  return v;
}

Ids iota_ids(std::int64_t n, std::int64_t start = 0) {
  Ids v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}

/// Total padding when each batch is padded to its own longest sequence.
std::int64_t padding_of(const Batches& batches, const Ids& lengths) {
  std::int64_t total = 0;
  for (const auto& b : batches) {
    std::int64_t longest = 0;
    for (auto i : b) longest = std::max(longest, lengths[i]);
    for (auto i : b) total += longest - lengths[i];
  }
  return total;
}

}  // namespace

static_assert(Side::pre == nn::PadSide::pre, "padded batches pass straight to the recurrent layers");

TEST_CASE("pad_sequences: the Keras examples") {
  const std::vector<Ids> seqs{{1}, {2, 3}, {4, 5, 6}};
  Padded p = pad_sequences(seqs);
  check_ids(p.ids, {3, 3}, {0, 0, 1, 0, 2, 3, 4, 5, 6});
  check_ids(p.lengths, {3}, {1, 2, 3});
  check_ids(pad_sequences(seqs, -1, Side::pre, Side::pre, -1).ids, {3, 3}, {-1, -1, 1, -1, 2, 3, 4, 5, 6});
  check_ids(pad_sequences(seqs, -1, Side::post).ids, {3, 3}, {1, 0, 0, 2, 3, 0, 4, 5, 6});
  p = pad_sequences(seqs, 2);  // truncating "pre" drops from the start
  check_ids(p.ids, {3, 2}, {0, 1, 2, 3, 5, 6});
  check_ids(p.lengths, {3}, {1, 2, 2});
  check_ids(pad_sequences(seqs, 2, Side::pre, Side::post).ids, {3, 2}, {0, 1, 2, 3, 4, 5});
  check_ids(pad_sequences(seqs, 2, Side::post, Side::post).ids, {3, 2}, {1, 0, 2, 3, 4, 5});
  check_ids(pad_sequences(seqs, 2, Side::post, Side::pre).ids, {3, 2}, {1, 0, 2, 3, 5, 6});
  check_ids(pad_sequences(seqs, 4).ids, {3, 4}, {0, 0, 0, 1, 0, 0, 2, 3, 0, 4, 5, 6});
}

TEST_CASE("pad_sequences: edge cases and errors") {
  Padded p = pad_sequences({{}, {7}});
  check_ids(p.ids, {2, 1}, {0, 7});
  check_ids(p.lengths, {2}, {0, 1});
  check_ids(pad_sequences({}).ids, {0, 0}, {});
  check_ids(pad_sequences({{}, {}}).ids, {2, 0}, {});
  Padded zero = pad_sequences({{1, 2}, {3}}, 0);
  check_ids(zero.ids, {2, 0}, {});
  check_ids(zero.lengths, {2}, {0, 0});
  const std::int64_t big = (std::int64_t{1} << 62) + 1;  // not a double: the values never pass through one
  check_ids(pad_sequences({{big}, {}}, 2, Side::post, Side::pre, -big).ids, {2, 2}, {big, -big, -big, -big});
  CHECK(matches(error_of([] { pad_sequences({{1}}, -2); }),
                R"(pad_sequences: maxlen must be -1 \(the longest\) or non-negative, got -2)"));
}

TEST_CASE("pad_sequences: feature sequences, differentiable") {
  Tensor a = tensor({{1, 2}}, f64), b = tensor({{3, 4}, {5, 6}, {7, 8}}, f64);
  PaddedFeatures p = pad_feature_sequences({a, b});
  check_values(p.values, {2, 3, 2}, {0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8});
  check_ids(p.lengths, {2}, {1, 3});
  p = pad_feature_sequences({a, b}, 2, Side::post, Side::post, -1);
  check_values(p.values, {2, 2, 2}, {1, 2, -1, -1, 3, 4, 5, 6});
  check_ids(p.lengths, {2}, {1, 2});
  check_values(pad_feature_sequences({a, b}, 2).values, {2, 2, 2}, {0, 0, 1, 2, 5, 6, 7, 8});
  check_gradients([](const std::vector<Tensor>& in) { return pad_feature_sequences(in, 2, Side::post, Side::pre, 9).values; },
                  {input({1, 3}), input({3, 3}, -1, 1, 2), input({0, 3}, -1, 1, 3)});
  CHECK(matches(error_of([&] { pad_feature_sequences({a, tensor({1, 2, 3}, f64)}); }),
                R"(pad_feature_sequences: sequence 1 is f64 \[3\] but sequence 0 is f64 \[1, 2\]; feature shapes)"));
  CHECK(matches(error_of([&] { pad_feature_sequences({a, b.to(f32)}); }),
                R"(pad_feature_sequences: sequence 1 is f32 \[3, 2\] but sequence 0 is f64 \[1, 2\])"));
  CHECK(matches(error_of([&] { pad_feature_sequences({scalar(1)}); }),
                R"(pad_feature_sequences: sequence 0 has shape \[\]; expected \[length, ...\])"));
  CHECK(matches(error_of([&] { pad_feature_sequences({}); }), R"(pad_feature_sequences: no sequences)"));
}

TEST_CASE("padding_mask: 1 at padded steps, pre and post") {
  Tensor lengths = tensor({1, 3, 0}, i64);
  check_ids(padding_mask(lengths, 3, Side::post), {3, 3}, {0, 1, 1, 0, 0, 0, 1, 1, 1});
  check_ids(padding_mask(lengths, 3), {3, 3}, {1, 1, 0, 0, 0, 0, 1, 1, 1});
  Padded p = pad_sequences({{5}, {6, 7, 8}, {}, {9, 9}}, 3, Side::post);  // no id 0 inside: mask == (ids == 0)
  check_close(padding_mask(p.lengths, 3, Side::post), eq(p.ids, scalar(0, i64)), 0);
  p = pad_sequences({{5}, {6, 7, 8}, {}, {9, 9}}, 3);
  check_close(padding_mask(p.lengths, 3, Side::pre), eq(p.ids, scalar(0, i64)), 0);
  CHECK(matches(error_of([&] { padding_mask(lengths, 2); }), R"(padding_mask: lengths\[1\] = 3 is outside \[0, 2\])"));
  CHECK(matches(error_of([&] { padding_mask(tensor({1, 2}), 2); }), R"(padding_mask: lengths must be i64 \[N\], got f32 \[2\])"));
}

TEST_CASE("window_starts and timeseries_windows: Keras' examples") {
  // Example 1 of timeseries_dataset_from_array: indices 0..98, sequence_length 10, sampling_rate 2,
  // sequence_stride 3: [0 2 .. 18], [3 5 .. 21], ..., the last [78 80 .. 96].
  Ids starts = window_starts(99, 10, 3, 2);
  REQUIRE(starts.size() == 27);
  for (std::size_t i = 0; i < starts.size(); ++i) CHECK(starts[i] == 3 * static_cast<std::int64_t>(i));
  Tensor w = timeseries_windows(arange(99, i64), 10, 3, 2);
  CHECK(w.shape() == Shape{27, 10});
  check_ids(slice(w, 0, 0, 2), {2, 10}, {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21});
  check_ids(slice(w, 0, 26, 27), {1, 10}, {78, 80, 82, 84, 86, 88, 90, 92, 94, 96});
  // Example 2: data 1..20, input_data = data[:10], targets = data[10:], sequence_length 10 -> ([1..10], 11)
  Tensor data = arange(1, 21, 1, f64);
  Windows d = timeseries_windows(slice(data, 0, 0, 10), slice(data, 0, 10, 20), 10);
  check_values(d.inputs, {1, 10}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10});
  check_values(d.targets, {1}, {11});
}

TEST_CASE("timeseries_windows: stride, sampling rate, features, targets, gradients") {
  CHECK(window_starts(5, 2) == Ids{0, 1, 2, 3});
  CHECK(window_starts(3, 5).empty());
  CHECK(window_starts(0, 1).empty());
  // 10 steps, length 3, stride 2, rate 2: starts s with s + 4 < 10
  check_values(timeseries_windows(arange(10, f64), 3, 2, 2), {3, 3}, {0, 2, 4, 2, 4, 6, 4, 6, 8});
  // [6, 2] features: length 2, stride 3 -> starts 0, 3
  check_values(timeseries_windows(iota({6, 2}), 2, 3), {2, 2, 2}, {0, 1, 2, 3, 6, 7, 8, 9});
  check_values(timeseries_windows(iota({6, 2}), 2, 1, 2), {4, 2, 2},
               {0, 1, 4, 5, 2, 3, 6, 7, 4, 5, 8, 9, 6, 7, 10, 11});
  check_values(timeseries_windows(iota({3, 2}), 5), {0, 5, 2}, {});
  check_ids(timeseries_windows(arange(4, i64), 4), {1, 4}, {0, 1, 2, 3});
  CHECK(timeseries_windows(arange(4, f32), 2).dtype() == f32);
  // targets[s] for the window starting at s; windows starting past the targets are dropped
  Windows d = timeseries_windows(arange(10, f64), arange(100, 103, 1, i64), 2);
  check_values(d.inputs, {3, 2}, {0, 1, 1, 2, 2, 3});
  check_ids(d.targets, {3}, {100, 101, 102});
  d = timeseries_windows(iota({8, 2}), arange(8, i64), 3, 2, 2);  // starts 0, 2 (4 + 4 = 8 is past the end)
  check_values(d.inputs, {2, 3, 2}, {0, 1, 4, 5, 8, 9, 4, 5, 8, 9, 12, 13});
  check_ids(d.targets, {2}, {0, 2});
  check_gradients([](const std::vector<Tensor>& in) { return timeseries_windows(in[0], 3, 2, 2); }, {input({7, 2})});
  Tensor series = arange(5, f64);
  check_gradients([=](const std::vector<Tensor>& in) { return timeseries_windows(series, in[0], 2).targets; },
                  {input({4, 2})});
  CHECK(matches(error_of([] { timeseries_windows(arange(5), 0); }),
                R"(timeseries_windows: sequence_length, sequence_stride and sampling_rate must be positive, got 0, 1, 1)"));
  CHECK(matches(error_of([] { timeseries_windows(scalar(1), 1); }),
                R"(timeseries_windows: expects a time axis first, got shape \[\])"));
  CHECK(matches(error_of([] { timeseries_windows(arange(5), scalar(1), 1); }),
                R"(timeseries_windows: expects a time axis first, got shape \[\])"));
  CHECK(matches(error_of([] { window_starts(5, 2, 1, -1); }),
                R"(window_starts: sequence_length, sequence_stride and sampling_rate must be positive, got 2, 1, -1)"));
  CHECK(matches(error_of([] { window_starts(-1, 2); }), R"(window_starts: length must be non-negative, got -1)"));
}

TEST_CASE("next_token_windows: k tokens in, the next one out") {
  const Ids tokens{10, 11, 12, 13, 14, 15};
  Windows w = next_token_windows(tokens, 2);
  check_ids(w.inputs, {4, 2}, {10, 11, 11, 12, 12, 13, 13, 14});
  check_ids(w.targets, {4}, {12, 13, 14, 15});
  w = next_token_windows(tokens, 3, 2);
  check_ids(w.inputs, {2, 3}, {10, 11, 12, 12, 13, 14});
  check_ids(w.targets, {2}, {13, 15});
  w = next_token_windows(tokens, 5);
  check_ids(w.inputs, {1, 5}, {10, 11, 12, 13, 14});
  check_ids(w.targets, {1}, {15});
  w = next_token_windows(tokens, 6);
  check_ids(w.inputs, {0, 6}, {});
  check_ids(w.targets, {0}, {});
  CHECK(matches(error_of([&] { next_token_windows(tokens, 0); }),
                R"(next_token_windows: k and stride must be positive, got k = 0, stride = 1)"));
}

TEST_CASE("StreamBatcher: PyTorch word_language_model batchify / get_batch") {
  StreamBatcher s(iota_ids(26), 3, 4);  // streams of 26 / 3 = 8: tokens 24 and 25 are dropped
  check_ids(s.streams(), {3, 8}, iota_ids(24));
  CHECK(s.batch_size() == 3);
  CHECK(s.bptt() == 4);
  REQUIRE(s.size() == 2);  // get_batch at i = 0, 4 (range(0, 8 - 1, 4))
  Windows w = s.window(0);
  check_ids(w.inputs, {3, 4}, {0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19});
  check_ids(w.targets, {3, 4}, {1, 2, 3, 4, 9, 10, 11, 12, 17, 18, 19, 20});
  w = s.window(1);  // the last window is shorter: min(4, 8 - 1 - 4) = 3 steps
  check_ids(w.inputs, {3, 3}, {4, 5, 6, 12, 13, 14, 20, 21, 22});
  check_ids(w.targets, {3, 3}, {5, 6, 7, 13, 14, 15, 21, 22, 23});

  StreamBatcher exact(iota_ids(9), 2, 3);  // L = 4: one full window, token 8 dropped
  REQUIRE(exact.size() == 1);
  check_ids(exact.window(0).inputs, {2, 3}, {0, 1, 2, 4, 5, 6});
  check_ids(exact.window(0).targets, {2, 3}, {1, 2, 3, 5, 6, 7});

  SUBCASE("the windows tile each stream: inputs cover [0, L-1), targets [1, L)") {
    StreamBatcher b(iota_ids(103), 4, 5);  // L = 25, windows of 5, 5, 5, 5, 4
    std::vector<Tensor> inputs, targets;
    for (std::int64_t i = 0; i < b.size(); ++i) {
      inputs.push_back(b.window(i).inputs);
      targets.push_back(b.window(i).targets);
    }
    CHECK(b.size() == 5);
    CHECK(inputs.back().shape() == Shape{4, 4});
    check_close(concat(inputs, 1), slice(b.streams(), 1, 0, 24), 0);
    check_close(concat(targets, 1), slice(b.streams(), 1, 1, 25), 0);
  }
  CHECK(matches(error_of([] { StreamBatcher(iota_ids(5), 3, 2); }),
                R"(StreamBatcher: 5 tokens in 3 streams leave 1 per stream; each needs at least 2)"));
  CHECK(matches(error_of([] { StreamBatcher(iota_ids(5), 0, 2); }),
                R"(StreamBatcher: batch_size and bptt must be positive, got batch_size = 0, bptt = 2)"));
  CHECK(matches(error_of([&] { s.window(2); }), R"(StreamBatcher::window: index 2 is out of range for 2 windows)"));
  CHECK(matches(error_of([&] { s.window(-1); }), R"(StreamBatcher::window: index -1 is out of range for 2 windows)"));
}

TEST_CASE("Vocabulary: specials, frequency order, unknown tokens, round trip") {
  Vocabulary empty_vocab;
  CHECK(empty_vocab.tokens() == Strings{"<pad>", "<unk>"});
  const std::vector<Strings> corpus{{"the", "cat", "sat"}, {"the", "dog", "sat"}, {"a", "cat"}, {"the"}};
  Vocabulary v = Vocabulary::build(corpus);  // the 3, cat 2, sat 2, a 1, dog 1
  CHECK(v.tokens() == Strings{"<pad>", "<unk>", "the", "cat", "sat", "a", "dog"});
  CHECK(v.size() == 7);
  CHECK(v.id("the") == 2);
  CHECK(v.id("zebra") == Vocabulary::unk_id);
  CHECK(v.id("<pad>") == Vocabulary::pad_id);
  CHECK(v.contains("dog"));
  CHECK_FALSE(v.contains("zebra"));
  CHECK(v.token(6) == "dog");
  CHECK(v.encode({"the", "zebra", "dog"}) == Ids{2, 1, 6});
  CHECK(v.decode({2, 1, 6, 0}) == Strings{"the", "<unk>", "dog", "<pad>"});
  for (const auto& sentence : corpus) CHECK(v.decode(v.encode(sentence)) == sentence);
  CHECK(Vocabulary::build(corpus, 2).tokens() == Strings{"<pad>", "<unk>", "the", "cat", "sat"});
  CHECK(Vocabulary::build(corpus, 1, 4).tokens() == Strings{"<pad>", "<unk>", "the", "cat"});
  CHECK(Vocabulary::build(corpus, 1, 2).size() == 2);
  // ties by byte order (case-sensitive: "B" < "a" < "b"); specials in the corpus are not added twice
  CHECK(Vocabulary::build({{"b", "B", "a", "<unk>", "<pad>", "<unk>"}}).tokens() ==
        Strings{"<pad>", "<unk>", "B", "a", "b"});
  CHECK(Vocabulary::from_tokens(v.tokens()).tokens() == v.tokens());
  CHECK(Vocabulary::from_tokens(v.tokens()).id("sat") == 4);

  CHECK(matches(error_of([&] { v.token(7); }), R"(Vocabulary::token: id 7 is out of range for a vocabulary of 7 tokens)"));
  CHECK(matches(error_of([&] { v.decode({2, -1}); }), R"(Vocabulary::token: id -1 is out of range)"));
  CHECK(matches(error_of([&] { Vocabulary::build(corpus, 0); }), R"(Vocabulary::build: min_count must be at least 1, got 0)"));
  CHECK(matches(error_of([&] { Vocabulary::build(corpus, 1, 1); }),
                R"(Vocabulary::build: max_size must be -1 \(no limit\) or at least 2 \(the specials\), got 1)"));
  CHECK(matches(error_of([] { Vocabulary::from_tokens({"a", "<unk>"}); }),
                R"(Vocabulary::from_tokens: the tokens must start with "<pad>", "<unk>"; got 2 tokens starting "a")"));
  CHECK(matches(error_of([] { Vocabulary::from_tokens({"<pad>", "<unk>", "x", "x"}); }),
                R"(Vocabulary::from_tokens: token "x" appears twice \(ids 2 and 3\))"));
}

TEST_CASE("words: whitespace and punctuation") {
  CHECK(words("Hello, World! (It's 3:30.)") ==
        Strings{"hello", ",", "world", "!", "(", "it's", "3", ":", "30", ".", ")"});
  CHECK(words("  several   spaces\tand\nlines\r\n") == Strings{"several", "spaces", "and", "lines"});
  CHECK(words("\"Quoted\" text; state-of-the-art?") ==
        Strings{"\"", "quoted", "\"", "text", ";", "state-of-the-art", "?"});
  CHECK(words("Hi THERE", false) == Strings{"Hi", "THERE"});
  CHECK(words("ÉLAN Élan") == Strings{"Élan", "Élan"});  // only ASCII letters are folded
  CHECK(words("").empty());
  CHECK(words(" \t\n").empty());
}

TEST_CASE("characters: UTF-8 code points, invalid bytes one by one") {
  CHECK(characters("héllo") == Strings{"h", "é", "l", "l", "o"});
  CHECK(characters("a€😀日本") == Strings{"a", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "日", "本"});
  CHECK(characters("").empty());
  CHECK(characters("a\xFF" "b") == Strings{"a", "\xFF", "b"});
  CHECK(characters("\xE2\x82") == Strings{"\xE2", "\x82"});            // truncated at the end
  CHECK(characters("\xE2\x82" "a") == Strings{"\xE2", "\x82", "a"});   // truncated in the middle
  CHECK(characters("\x80\xBF") == Strings{"\x80", "\xBF"});            // stray continuation bytes
  CHECK(characters("\xC0\xAF") == Strings{"\xC0", "\xAF"});            // overlong '/'
  CHECK(characters("\xE0\x80\xAF").size() == 3);                       // overlong, 3 bytes
  CHECK(characters("\xED\xA0\x80").size() == 3);                       // a UTF-16 surrogate
  CHECK(characters("\xF4\x90\x80\x80").size() == 4);                   // above U+10FFFF
  CHECK(characters("\xF4\x8F\xBF\xBF").size() == 1);                   // U+10FFFF itself
  SUBCASE("random bytes: never a crash, the tokens concatenate back to the text") {
    Generator gen(5);
    Tensor bytes = randint(0, 256, {4000}, &gen);
    std::string text;
    for (auto b : bytes.to_vector<std::int64_t>()) text.push_back(static_cast<char>(b));
    std::string joined;
    for (const auto& c : characters(text)) {
      CHECK((c.size() >= 1 && c.size() <= 4));
      joined += c;
    }
    CHECK(joined == text);
  }
  Vocabulary v = Vocabulary::build({characters("abracadabra")});  // a 5, b 2, r 2, c 1, d 1
  CHECK(v.tokens() == Strings{"<pad>", "<unk>", "a", "b", "r", "c", "d"});
}

TEST_CASE("permutation: a seeded Fisher-Yates shuffle") {
  Generator g(42), same(42), other(43);
  Ids p = permutation(10, &g);
  CHECK(sorted(p) == iota_ids(10));
  CHECK(p == permutation(10, &same));
  CHECK(p != permutation(10, &other));
  CHECK(permutation(10, &g) != p);  // the generator moves on
  // the same numbers on every platform (the engine's raw output, no std distribution): checked
  // against an independent Python MT19937-64 with the same rejection sampling and Fisher-Yates
  CHECK(p == Ids{1, 7, 9, 0, 3, 8, 4, 2, 5, 6});
  CHECK(permutation(0, &g).empty());
  CHECK(permutation(1, &g) == Ids{0});
  SUBCASE("the default generator, reseeded with manual_seed") {
    Generator saved = default_generator();
    manual_seed(7);
    Ids q = permutation(20);
    Generator seven(7);
    CHECK(q == permutation(20, &seven));
    default_generator() = saved;
  }
  SUBCASE("uniform over the 6 orders of 3 (an off-by-one would give Sattolo's 2 cycles)") {
    Generator gen(1);
    std::map<Ids, int> counts;
    for (int i = 0; i < 6000; ++i) ++counts[permutation(3, &gen)];
    CHECK(counts.size() == 6);
    for (const auto& [order, count] : counts) CHECK((count > 850 && count < 1150));
  }
  CHECK(matches(error_of([] { permutation(-1); }), R"(permutation: n must be non-negative, got -1)"));
}

TEST_CASE("batches: every index once, shuffled or in order, drop_last") {
  CHECK(batches(10, 3, false) == Batches{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}, {9}});
  CHECK(batches(10, 3, false, nullptr, true) == Batches{{0, 1, 2}, {3, 4, 5}, {6, 7, 8}});
  CHECK(batches(10, 5, false, nullptr, true).size() == 2);
  Generator g(3), same(3);
  Batches b = batches(10, 3, true, &g);
  REQUIRE(b.size() == 4);
  CHECK(b.back().size() == 1);
  CHECK(sorted(flatten(b)) == iota_ids(10));
  CHECK(flatten(b) == permutation(10, &same));  // the shuffled order, cut
  CHECK(flatten(b) != iota_ids(10));
  Generator h(3);
  const Ids order = flatten(b);
  CHECK(flatten(batches(10, 3, true, &h, true)) == Ids(order.begin(), order.begin() + 9));
  CHECK(batches(0, 4).empty());
  CHECK(batches(2, 5, true, &g, true).empty());
  CHECK(matches(error_of([] { batches(4, 0); }), R"(batches: batch_size must be positive, got 0)"));
  CHECK(matches(error_of([] { batches(-3, 2); }), R"(batches: n must be non-negative, got -3)"));
}

TEST_CASE("bucket_batches: similar lengths together, far less padding") {
  Generator gen(3);
  const Ids lengths = randint(1, 51, {203}, &gen).to_vector<std::int64_t>();
  Generator g(11), same(11), shuffled(11);
  Batches buckets = bucket_batches(lengths, 8, &g);
  CHECK(buckets == bucket_batches(lengths, 8, &same));
  REQUIRE(buckets.size() == 26);
  CHECK(sorted(flatten(buckets)) == iota_ids(203));
  // exactly the padding of the sorted lengths cut into runs of 8: the least any batching gets
  Ids by_length = sorted(lengths);
  const Batches runs = batches(203, 8, false);  // positions in by_length
  const std::int64_t bucketed = padding_of(buckets, lengths);
  CHECK(bucketed == padding_of(runs, by_length));
  const std::int64_t random = padding_of(batches(203, 8, true, &shuffled), lengths);
  INFO("bucketed padding ", bucketed, ", random batches ", random);
  CHECK(bucketed * 10 < random);
  // the batch order is shuffled, not sorted by length
  Ids firsts;
  for (const auto& b : buckets) firsts.push_back(lengths[b.front()]);
  CHECK_FALSE(std::is_sorted(firsts.begin(), firsts.end()));
  // equal lengths are split at random
  Generator a(1), b(2);
  CHECK(bucket_batches(Ids(6, 5), 2, &a) != bucket_batches(Ids(6, 5), 2, &b));
  CHECK(bucket_batches({}, 3, &a).empty());
  CHECK(matches(error_of([] { bucket_batches({3, -1}, 2); }), R"(bucket_batches: lengths\[1\] is negative \(-1\))"));
  CHECK(matches(error_of([] { bucket_batches({3}, 0); }), R"(bucket_batches: batch_size must be positive, got 0)"));
}

TEST_CASE("take and index_tensor: rows by index") {
  check_ids(index_tensor({5, -1, 7}), {3}, {5, -1, 7});
  check_ids(index_tensor({}), {0}, {});
  check_values(take(iota({3, 2}), {2, 0, 2}), {3, 2}, {4, 5, 0, 1, 4, 5});
  check_values(take(iota({3, 2}), {}), {0, 2}, {});
  check_gradients([](const std::vector<Tensor>& in) { return take(in[0], {1, 1, 0}); }, {input({2, 3})});
  CHECK(matches(error_of([] { take(iota({3, 2}), {3}); }),
                R"(index_select: index 3 is out of range for axis 0 of size 3 \(shape \[3, 2\]\))"));
}

TEST_CASE("data: text to a masked batch") {
  const std::vector<std::string> texts{"The cat sat.", "A dog!", "The cat saw the dog."};
  std::vector<Strings> tokens;
  for (const auto& t : texts) tokens.push_back(words(t));
  Vocabulary v = Vocabulary::build(tokens);  // the 3; . cat dog 2; ! a sat saw 1
  CHECK(v.tokens() == Strings{"<pad>", "<unk>", "the", ".", "cat", "dog", "!", "a", "sat", "saw"});
  std::vector<Ids> ids;
  for (const auto& t : tokens) ids.push_back(v.encode(t));
  Padded p = pad_sequences(ids, -1, Side::post);
  check_ids(p.ids, {3, 6}, {2, 4, 8, 3, 0, 0, 7, 5, 6, 0, 0, 0, 2, 4, 9, 2, 5, 3});
  check_ids(p.lengths, {3}, {4, 3, 6});
  check_close(padding_mask(p.lengths, 6, Side::post), eq(p.ids, scalar(Vocabulary::pad_id, i64)), 0);
}
