// Neural date normalisation: an encoder-decoder with Bahdanau attention reads a date written in
// one of many human formats ("Saturday, the 21st of November, 2026", "nov twenty-one twenty
// twenty-six", "21.11.2026", ...) character by character and writes it in ISO form, "2026-11-21".
//
//   encoder:  e_j = Embedding(x_j);  k_1..k_T = BiGRU(e, lengths)            (padded steps masked)
//   decoder:  h_t = GRUCell([Embedding(y_{t-1}), c_{t-1}], h_{t-1}),  h_0 = tanh(W [h_fwd, h_bwd])
//             a_t = softmax_j(v^T tanh(W_q h_t + W_k k_j)), padding -> 0;  c_t = sum_j a_tj k_j
//             logits_t = Linear([h_t, c_t])
// Trained with teacher forcing, decoded greedily on dates that never occur in training, against the
// best constant answer (the most common training character at each position) as the baseline.
//
// Usage: seq2seq_attention [--steps N] [--hidden H] [--batch B] [--lr R] [--train N] [--test N] [--seed S]
//                          [--quick | --tiny] [--plot [--plot-dir DIR]]
//                          (--help: every flag and its default; --plot: the attention as a heat map, PNG)
#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <numbers>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/report.hpp"
#include <xgrad/viz/plot.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

namespace {

// --- dates and the ways people write them ---------------------------------------------------

struct Date { int year, month, day, weekday; };  // weekday 0 = Monday
Date date_of(std::chrono::sys_days day) {
  const std::chrono::year_month_day ymd{day};
  const unsigned month{ymd.month()}, d{ymd.day()}, weekday = std::chrono::weekday{day}.iso_encoding() - 1;
  return {static_cast<int>(ymd.year()), static_cast<int>(month), static_cast<int>(d), static_cast<int>(weekday)};
}

const char* const kMonths[] = {"January", "February", "March", "April", "May", "June", "July", "August",
                               "September", "October", "November", "December"};
const char* const kWeekdays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
const char* const kOnes[] = {"", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                             "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                             "eighteen", "nineteen"};
const char* const kTens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
const char* const kOrdinals[] = {"", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
                                 "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
                                 "sixteenth", "seventeenth", "eighteenth", "nineteenth"};

std::string number_words(int n) {  // 1 .. 99
  if (n < 20) return kOnes[n];
  return std::string(kTens[n / 10]) + (n % 10 ? std::string("-") + kOnes[n % 10] : "");
}
std::string ordinal_words(int n) {  // 1 .. 31
  if (n < 20) return kOrdinals[n];
  if (n % 10 == 0) return n == 20 ? "twentieth" : "thirtieth";
  return std::string(kTens[n / 10]) + "-" + kOrdinals[n % 10];
}
std::string year_words(int y) {  // 1950 .. 2049 as spoken
  if (y < 2000) return "nineteen " + number_words(y % 100);
  if (y < 2010) return y == 2000 ? "two thousand" : "two thousand " + number_words(y - 2000);
  return "twenty " + number_words(y % 100);
}
std::string suffixed(int d) {  // 1st 2nd 3rd 4th .. 11th 12th 13th .. 21st
  const int last = d / 10 == 1 ? 0 : d % 10;
  return std::to_string(d) + (last == 1 ? "st" : last == 2 ? "nd" : last == 3 ? "rd" : "th");
}
std::string cased(std::string s, int (*change)(int)) {
  for (char& c : s) c = static_cast<char>(change(static_cast<unsigned char>(c)));
  return s;
}

constexpr int kFormats = 9;

/// The date in human format `f`, e.g. for 2026-11-21 (a Saturday).
std::string written(const Date& d, int f) {
  const std::string month = kMonths[d.month - 1], mon = month.substr(0, 3), year = std::to_string(d.year),
                    weekday = kWeekdays[d.weekday];
  switch (f) {
    case 0: return fmt::format("{} {} {}", d.day, month, year);                      // 21 November 2026
    case 1: return fmt::format("{} {}, {}", mon, d.day, year);                       // Nov 21, 2026
    case 2: return fmt::format("{:02d}.{:02d}.{}", d.day, d.month, year);            // 21.11.2026
    case 3: return fmt::format("{}, the {} of {}, {}", weekday, suffixed(d.day), month, year);  // Saturday, the 21st..
    case 4: return fmt::format("{} of {} {}", ordinal_words(d.day), month, year);   // twenty-first of November 2026
    case 5: return fmt::format("{} {} {}", cased(month, ::tolower), number_words(d.day), year_words(d.year));
    case 6: return fmt::format("{} {} {} {:02d}", weekday.substr(0, 3), d.day, mon, d.year % 100);  // Sat 21 Nov 26
    case 7: return fmt::format("{} {}, {}", month, suffixed(d.day), year);           // November 21st, 2026
    default: return fmt::format("{:02d}-{}-{}", d.day, cased(mon, ::toupper), year);  // 21-NOV-2026
  }
}
std::string iso(const Date& d) { return fmt::format("{}-{:02d}-{:02d}", d.year, d.month, d.day); }

struct Example { std::string source, target; int format; };

// --- the model --------------------------------------------------------------------------------

constexpr std::int64_t kTargetLength = 10;  // "YYYY-MM-DD"

struct Seq2Seq : nn::Module {
  Seq2Seq(std::int64_t source_vocab, std::int64_t target_vocab, std::int64_t hidden)
      : S(source_vocab), V(target_vocab), H(hidden) {}
  const std::int64_t S, V, H;  // source and target vocabulary sizes, hidden size
  nn::Holder<nn::Embedding> source_embed{this, "source_embed", S, 32, 0};  // id 0 = <pad>
  nn::Holder<nn::GRU> encoder{this, "encoder", 32, H, nn::RNNOptions{.bidirectional = true}};
  nn::Holder<nn::Linear> bridge{this, "bridge", 2 * H, H};
  nn::Holder<nn::Embedding> target_embed{this, "target_embed", V, 16};
  nn::Holder<nn::GRUCell> cell{this, "cell", 16 + 2 * H, H};
  nn::Holder<nn::BahdanauAttention> attention{this, "attention", H, 2 * H, H};
  nn::Holder<nn::Linear> out{this, "out", 3 * H, V};

  struct Encoded {
    Tensor keys, mask;   // [B, T, 2H], i64 [B, T] (1 = padding)
    nn::State initial;   // {h_0 [B, H], context_0 = 0 [B, 2H]}
  };

  Encoded encode(const data::Padded& source) {
    auto run = encoder->run(source_embed(source.ids), source.lengths);  // masked by lengths
    Tensor h0 = tanh(bridge(concat({run.h(0, 0), run.h(0, 1)}, 1)));  // both directions' final h
    Tensor c0 = zeros({source.ids.size(0), run.output.size(2)});
    return {run.output, data::padding_mask(source.lengths, source.ids.size(1), data::Side::post), {h0, c0}};
  }

  /// A decoder step over the encoded batch; appends each step's attention weights [B, T] to `weights`.
  nn::DecoderStep decoder(const Encoded& e, std::vector<Tensor>* weights = nullptr) {
    return [this, e, weights](const Tensor& tokens, const nn::State& state) {
      Tensor x = concat({target_embed(tokens), state[1]}, 1);  // previous char and context
      Tensor h = cell(x, {state[0]})[0];
      nn::AttentionResult a = attention->forward(unsqueeze(h, 1), e.keys, e.keys, e.mask);
      Tensor context = squeeze(a.context, 1);
      if (weights) weights->push_back(squeeze(a.weights, 1));
      return std::pair{out(concat({h, context}, 1)), nn::State{h, context}};
    };
  }
};

struct Batch { data::Padded source; Tensor targets; };  // post-padded ids [B, T] and lengths; i64 [B, 10]

Batch make_batch(const std::vector<Example>& set, const std::vector<std::int64_t>& rows, const data::Vocabulary& sv,
                 const data::Vocabulary& tv) {
  std::vector<std::vector<std::int64_t>> sources;
  std::string targets;  // all of them, one after another
  for (auto r : rows) sources.push_back(sv.encode(data::characters(set[r].source))), targets += set[r].target;
  Tensor target_ids = data::index_tensor(tv.encode(data::characters(targets)));
  return {data::pad_sequences(sources, -1, data::Side::post, data::Side::post),
          reshape(target_ids, {static_cast<std::int64_t>(rows.size()), kTargetLength})};
}

}  // namespace

int main(int argc, char** argv) try {
  examples::Cli cli("seq2seq_attention",
                    "Dates written in words to ISO dates: a BiGRU encoder and a GRU decoder with Bahdanau attention, "
                    "scored by exact match on dates never trained on.");
  std::int64_t steps = 0, H = 0, B = 0, n_train = 0, n_test = 0;
  double lr = 3e-3;
  cli.add("--steps", steps, {3000, 700, 12}, "training steps (batches)")->check(examples::positive);
  cli.add("--hidden", H, {64, 64, 16}, "hidden units of the encoder (per direction) and decoder")
      ->check(examples::positive);
  cli.add("--batch", B, {64, 64, 16}, "examples per batch")->check(examples::positive);
  cli.add("--lr", lr, "Adam's peak learning rate (cosine-decayed)")->check(examples::positive);
  cli.add("--train", n_train, {20000, 20000, 512}, "training examples")->check(examples::positive);
  cli.add("--test", n_test, {1000, 1000, 64}, "held-out test dates")->check(examples::positive);
  cli.add_plot();
  if (auto done = cli.parse(argc, argv)) return *done;
  const std::uint64_t seed = cli.seed();
  manual_seed(seed);
  std::mt19937_64 rng(seed);

  // Every day of 1950-2049, shuffled: the first n_test are the test dates, never trained on.
  using namespace std::chrono;
  std::vector<sys_days> calendar;
  for (sys_days d = year(1950) / 1 / 1; d <= sys_days(year(2049) / 12 / 31); d += days{1}) calendar.push_back(d);
  check(n_test < static_cast<std::int64_t>(calendar.size()), "seq2seq_attention: --test {} leaves no date of the {} to train on",
        n_test, calendar.size());
  for (std::size_t i = calendar.size() - 1; i > 0; --i) std::swap(calendar[i], calendar[rng() % (i + 1)]);
  auto example = [&](sys_days day) {
    const Date d = date_of(day);
    const int f = static_cast<int>(rng() % kFormats);
    return Example{written(d, f), iso(d), f};
  };
  std::vector<Example> test, train;
  for (std::int64_t i = 0; i < n_test; ++i) test.push_back(example(calendar[i]));
  for (std::int64_t i = 0; i < n_train; ++i)
    train.push_back(example(calendar[n_test + rng() % (calendar.size() - n_test)]));

  std::vector<std::vector<std::string>> source_chars, target_chars{{"<s>"}};
  std::vector<std::int64_t> lengths;  // of the sources, for bucketing
  for (const auto& e : train) source_chars.push_back(data::characters(e.source)), lengths.push_back(e.source.size());
  for (const auto& e : train) target_chars.push_back(data::characters(e.target));
  const auto sv = data::Vocabulary::build(source_chars), tv = data::Vocabulary::build(target_chars);
  const double start_id = static_cast<double>(tv.id("<s>"));

  // Baseline: the one constant answer with the most common training character at each position.
  std::string constant(kTargetLength, ' ');
  for (std::int64_t p = 0; p < kTargetLength; ++p) {
    int counts[128] = {};
    for (const auto& e : train) ++counts[static_cast<unsigned char>(e.target[p]) % 128];
    constant[p] = static_cast<char>(std::max_element(counts, counts + 128) - counts);
  }

  Seq2Seq model(sv.size(), tv.size(), H);
  optim::Adam adam(model.parameters(), {.lr = lr});
  fmt::print("dates 1950-2049 in {} formats -> ISO; {} training examples, {} test dates never trained on\n"
             "e.g. \"{}\" -> {}; vocabularies {} source / {} target characters; {} parameters\n",
             kFormats, n_train, n_test, train[0].source, train[0].target, sv.size(), tv.size(),
             model.parameter_count());

  // Training: teacher forcing over length-bucketed batches, Adam with a cosine-decayed rate, clipping.
  optim::ProgressBar bar(steps);
  Generator shuffler(seed);
  std::vector<std::vector<std::int64_t>> epoch;
  double first_loss = 0, running = 0;
  for (std::int64_t step = 1; step <= steps; ++step) {
    if (epoch.empty()) epoch = data::bucket_batches(lengths, B, &shuffler);
    Batch batch = make_batch(train, epoch.back(), sv, tv);
    epoch.pop_back();
    Seq2Seq::Encoded e = model.encode(batch.source);
    Tensor start = full({batch.targets.size(0)}, start_id, i64);
    Tensor loss = nn::cross_entropy(nn::teacher_forcing(model.decoder(e), start, batch.targets, e.initial),
                                    batch.targets);
    adam.set_lr(lr * (0.05 + 0.475 * (1 + std::cos(std::numbers::pi * static_cast<double>(step - 1) / steps))));
    adam.zero_grad();
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    const double value = loss.item();
    if (step == 1) first_loss = running = value;
    running = 0.9 * running + 0.1 * value;  // smoothed: one batch is noisy
    bar.update(step, {{"loss", running}});
  }
  bar.finish({{"loss", running}});
  fmt::print("loss {:.4f} -> {:.4f} (smoothed), {} steps of {} in {:.1f} s\n", first_loss, running, steps, B,
             bar.elapsed_seconds());

  // Greedy decoding of the test set, 250 dates at a time; the first batch's attention is kept.
  model.eval();
  std::vector<std::string> predicted;
  std::vector<Tensor> attention;  // [250, T] per output step
  for (std::int64_t begin = 0; begin < n_test; begin += 250) {
    std::vector<std::int64_t> rows(static_cast<std::size_t>(std::min(n_test, begin + 250) - begin));
    std::iota(rows.begin(), rows.end(), begin);
    Batch batch = make_batch(test, rows, sv, tv);
    autograd::NoGradGuard no_grad;
    Seq2Seq::Encoded e = model.encode(batch.source);
    Tensor start = full({batch.targets.size(0), 1}, start_id, i64);
    auto ids = nn::generate(model.decoder(e, begin == 0 ? &attention : nullptr), start, e.initial, kTargetLength)
                   .to_vector<std::int64_t>();
    for (std::size_t r = 0; r < rows.size(); ++r) {
      predicted.emplace_back();
      for (std::int64_t t = 0; t < kTargetLength; ++t) predicted.back() += tv.token(ids[r * kTargetLength + t]);
    }
  }
  std::int64_t exact = 0, baseline_exact = 0, chars = 0, baseline_chars = 0;
  std::vector<int> right(kFormats), count(kFormats);
  for (std::int64_t i = 0; i < n_test; ++i) {
    const std::string& truth = test[i].target;
    exact += predicted[i] == truth;
    baseline_exact += constant == truth;
    right[test[i].format] += predicted[i] == truth;
    ++count[test[i].format];
    for (std::int64_t p = 0; p < kTargetLength; ++p) {
      chars += predicted[i][p] == truth[p];
      baseline_chars += constant[p] == truth[p];
    }
  }

  fmt::print("\nheld-out test dates, one per format (greedy decoding):\n");
  for (int f = 0; f < kFormats; ++f) {
    auto i = std::find_if(test.begin(), test.end(), [&](const Example& e) { return e.format == f; }) - test.begin();
    if (i == n_test) continue;
    fmt::print("  {:<38} -> {}  {}\n", test[i].source, predicted[i],
               predicted[i] == test[i].target ? "right" : "WRONG, truth " + test[i].target);
  }
  fmt::print("exact match by format:");
  for (int f = 0; f < kFormats; ++f) fmt::print(" {}: {:.0f}%", f, count[f] ? 100.0 * right[f] / count[f] : 0.0);
  fmt::print("\ncharacters right: model {:.1f}%, constant answer \"{}\" {:.1f}%\n",
             100.0 * chars / (n_test * kTargetLength), constant, 100.0 * baseline_chars / (n_test * kTargetLength));

  // The attention of one test date written in words: source characters across, output characters down.
  auto last_of_format = [&](int f) {  // the last date of format f in the first decoded batch; -1: none
    std::int64_t i = std::min<std::int64_t>(n_test, 250);
    while (i > 0 && test[--i].format != f) continue;
    return test[i].format == f ? i : -1;
  };
  auto weights_of = [&](std::int64_t i) {  // test date i's attention: [output step, source character]
    const auto T = static_cast<std::int64_t>(data::characters(test[i].source).size());
    xt::xarray<double> w = xt::xarray<double>::from_shape({static_cast<std::size_t>(kTargetLength), static_cast<std::size_t>(T)});
    for (std::int64_t t = 0; t < kTargetLength; ++t) {
      const auto row = attention[t].to_vector<double>();  // [250, padded length]
      for (std::int64_t j = 0; j < T; ++j) w(t, j) = row[static_cast<std::size_t>(i * attention[t].size(1) + j)];
    }
    return w;
  };
  const std::int64_t shown = std::max<std::int64_t>(0, last_of_format(5));
  const xt::xarray<double> shown_weights = weights_of(shown);
  const char* const shades[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
  fmt::print("\nattention weights (shades: < 0.05, < 0.25, < 0.5, < 0.75, >= 0.75)\n     {}\n", test[shown].source);
  for (std::int64_t t = 0; t < kTargetLength; ++t) {
    fmt::print("  {}  ", predicted[shown][t]);
    for (std::size_t j = 0; j < shown_weights.shape(1); ++j) {
      const double a = shown_weights(t, j);
      fmt::print("{}", shades[a < 0.05 ? 0 : 1 + std::min(3, static_cast<int>(a * 4))]);
    }
    fmt::print("\n");
  }
  if (cli.plot()) {  // --plot: the same for a date in words and one with a weekday, as heat maps
    std::vector<viz::HeatMap> maps;
    for (int f : {5, 3}) {
      const std::int64_t i = last_of_format(f);
      if (i < 0) continue;
      maps.push_back({.values = from_xarray(weights_of(i)),
                      .title = fmt::format("\"{}\" -> {}", test[i].source, predicted[i]),
                      .x_label = "source character (encoder step)",
                      .y_label = "output",
                      .col_labels = data::characters(test[i].source),
                      .row_labels = data::characters(predicted[i]),
                      .value_label = "weight",
                      .min = 0,
                      .max = 1});
    }
    const std::string path = cli.plot_path("seq2seq_attention.png");
    viz::heat_maps(maps, path,
                   {.width = 1100, .height = 40 + 330 * static_cast<int>(maps.size()),
                    .title = "Bahdanau attention of the decoder over the source, on held-out dates"});
    fmt::print("picture: {}\n", path);
  }

  examples::report({.example = "seq2seq_attention", .task = "dates in words -> ISO (held-out dates)",
                    .model = fmt::format("BiGRU({}) + Bahdanau-attention GRU decoder", H),
                    .metric = "exact-match accuracy", .value = static_cast<double>(exact) / n_test,
                    .baseline = static_cast<double>(baseline_exact) / n_test, .higher_is_better = true});
  return running < first_loss ? 0 : 1;  // false for a NaN or infinite loss too
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
