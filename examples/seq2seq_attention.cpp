// Neural date normalisation: an encoder-decoder with Bahdanau attention reads a date written in
// one of many human formats ("Saturday, the 21st of November, 2026", "nov twenty-one twenty
// twenty-six", "21.11.2026", ...) character by character and writes it in ISO form, "2026-11-21".
//
//   encoder:  e_j = Embedding(x_j);  k_1..k_T = BiGRU(e, lengths)            (padded steps masked)
//   decoder:  h_t = GRUCell([Embedding(y_{t-1}), c_{t-1}], h_{t-1}),  h_0 = tanh(W [h_fwd, h_bwd])
//             a_t = softmax_j(v^T tanh(W_q h_t + W_k k_j)), padding -> 0;  c_t = sum_j a_tj k_j
//             logits_t = Linear([h_t, c_t])
// Trained with teacher forcing (nn::teacher_forcing), decoded greedily (nn::generate) on dates
// that never occur in training. The baseline is the best constant answer: the most common
// character at each position of the training targets.
//
// Usage: seq2seq_attention [--steps N] [--hidden H] [--batch B] [--lr R] [--seed S] [--quick | --tiny]
#include <algorithm>
#include <chrono>
#include <cctype>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/report.hpp"
#include "xgrad.hpp"

using namespace xgrad;

namespace {

// --- dates and the ways people write them ---------------------------------------------------

struct Date {
  int year, month, day, weekday;  // weekday 0 = Monday
};

/// The date `z` days after 1970-01-01 (H. Hinnant's civil_from_days).
Date civil_from_days(long z) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097, doe = z - era * 146097;
  const long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
  const long weekday = ((z - 719468 + 3) % 7 + 7) % 7;  // 1970-01-01 was a Thursday
  return {static_cast<int>(yoe + era * 400 + (m <= 2)), static_cast<int>(m), static_cast<int>(d),
          static_cast<int>(weekday)};
}

const char* const kMonths[] = {"January", "February", "March",     "April",   "May",      "June",
                               "July",    "August",   "September", "October", "November", "December"};
const char* const kWeekdays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
const char* const kOnes[] = {"",        "one",     "two",       "three",    "four",     "five",    "six",
                             "seven",   "eight",   "nine",      "ten",      "eleven",   "twelve",  "thirteen",
                             "fourteen", "fifteen", "sixteen",  "seventeen", "eighteen", "nineteen"};
const char* const kTens[] = {"", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"};
const char* const kOrdinals[] = {"",           "first",       "second",     "third",      "fourth",
                                 "fifth",      "sixth",       "seventh",    "eighth",     "ninth",
                                 "tenth",      "eleventh",    "twelfth",    "thirteenth", "fourteenth",
                                 "fifteenth",  "sixteenth",   "seventeenth", "eighteenth", "nineteenth"};

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
  const char* suffix = (d / 10 == 1 || d % 10 > 3 || d % 10 == 0) ? "th" : d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : "rd";
  return std::to_string(d) + suffix;
}
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

constexpr int kFormats = 9;

/// The date in human format `f`, e.g. for 2026-11-21 (a Saturday).
std::string written(const Date& d, int f) {
  const std::string month = kMonths[d.month - 1], mon = month.substr(0, 3), year = std::to_string(d.year);
  switch (f) {
    case 0: return fmt::format("{} {} {}", d.day, month, year);                     // 21 November 2026
    case 1: return fmt::format("{} {}, {}", mon, d.day, year);                      // Nov 21, 2026
    case 2: return fmt::format("{:02d}.{:02d}.{}", d.day, d.month, year);           // 21.11.2026
    case 3: return fmt::format("{}, the {} of {}, {}", kWeekdays[d.weekday], suffixed(d.day), month, year);
    case 4: return fmt::format("{} of {} {}", ordinal_words(d.day), month, year);  // twenty-first of November 2026
    case 5: return lower(month) + " " + number_words(d.day) + " " + year_words(d.year);
    case 6: return fmt::format("{} {} {} {:02d}", std::string(kWeekdays[d.weekday]).substr(0, 3), d.day, mon, d.year % 100);
    case 7: return fmt::format("{} {}, {}", month, suffixed(d.day), year);          // November 21st, 2026
    default: return fmt::format("{:02d}-{}-{}", d.day, upper(mon), year);           // 21-NOV-2026
  }
}
std::string iso(const Date& d) { return fmt::format("{}-{:02d}-{:02d}", d.year, d.month, d.day); }

struct Example {
  std::string source, target;
  int format;
};

// --- the model --------------------------------------------------------------------------------

constexpr std::int64_t kTargetLength = 10;  // "YYYY-MM-DD"

struct Seq2Seq : nn::Module {
  Seq2Seq(std::int64_t source_vocab, std::int64_t target_vocab, std::int64_t H)
      : source_embed(register_module("source_embed", std::make_shared<nn::Embedding>(source_vocab, 32, 0))),
        encoder(register_module("encoder", std::make_shared<nn::GRU>(32, H, nn::RNNOptions{.bidirectional = true}))),
        bridge(register_module("bridge", std::make_shared<nn::Linear>(2 * H, H))),
        target_embed(register_module("target_embed", std::make_shared<nn::Embedding>(target_vocab, 16))),
        cell(register_module("cell", std::make_shared<nn::GRUCell>(16 + 2 * H, H))),
        attention(register_module("attention", std::make_shared<nn::BahdanauAttention>(H, 2 * H, H))),
        out(register_module("out", std::make_shared<nn::Linear>(3 * H, target_vocab))) {}

  struct Encoded {
    Tensor keys, mask;   // [B, T, 2H], i64 [B, T] (1 = padding)
    nn::State initial;   // {h_0 [B, H], c_0 [B, 2H]}
  };

  Encoded encode(const data::Padded& source) {
    auto run = encoder->run((*source_embed)(source.ids), source.lengths);  // masked by lengths
    Tensor h0 = tanh((*bridge)(concat({run.states[0][0], run.states[1][0]}, 1)));
    Tensor c0 = zeros({source.ids.size(0), run.output.size(2)});
    return {run.output, data::padding_mask(source.lengths, source.ids.size(1), data::Side::post), {h0, c0}};
  }

  /// One decoder step over the encoded batch; appends each step's attention weights [B, T] to
  /// `weights` when given.
  nn::DecoderStep decoder(const Encoded& e, std::vector<Tensor>* weights = nullptr) {
    return [this, e, weights](const Tensor& tokens, const nn::State& state) {
      Tensor x = concat({(*target_embed)(tokens), state[1]}, 1);  // previous char and context
      Tensor h = cell->step(cell->project_input(x), {state[0]})[0];
      nn::AttentionResult a = attention->forward(unsqueeze(h, 1), e.keys, e.keys, e.mask);
      Tensor context = squeeze(a.context, 1);
      if (weights) weights->push_back(squeeze(a.weights, 1));
      return std::pair{(*out)(concat({h, context}, 1)), nn::State{h, context}};
    };
  }

  std::shared_ptr<nn::Embedding> source_embed;
  std::shared_ptr<nn::GRU> encoder;
  std::shared_ptr<nn::Linear> bridge;
  std::shared_ptr<nn::Embedding> target_embed;
  std::shared_ptr<nn::GRUCell> cell;
  std::shared_ptr<nn::BahdanauAttention> attention;
  std::shared_ptr<nn::Linear> out;
};

struct Batch {
  data::Padded source;
  Tensor targets;  // i64 [B, 10]
};

Batch make_batch(const std::vector<Example>& set, const std::vector<std::int64_t>& rows, const data::Vocabulary& sv,
                 const data::Vocabulary& tv) {
  std::vector<std::vector<std::int64_t>> sources;
  std::vector<std::int64_t> targets;
  for (auto r : rows) {
    sources.push_back(sv.encode(data::characters(set[r].source)));
    for (auto id : tv.encode(data::characters(set[r].target))) targets.push_back(id);
  }
  auto padded = data::pad_sequences(sources, -1, data::Side::post, data::Side::post);
  return {padded, reshape(data::index_tensor(targets), {static_cast<std::int64_t>(rows.size()), kTargetLength})};
}

}  // namespace

int main(int argc, char** argv) try {
  examples::Flags flags(argc, argv, {"steps", "hidden", "batch", "lr", "seed", "train", "test", "quick", "tiny"});
  const bool tiny = flags.has("tiny"), quick = flags.has("quick");
  const std::int64_t steps = flags.integer("steps", tiny ? 12 : quick ? 700 : 3000);
  const std::int64_t H = flags.integer("hidden", tiny ? 16 : 64), B = flags.integer("batch", tiny ? 16 : 64);
  const std::int64_t n_train = flags.integer("train", tiny ? 512 : 20000), n_test = flags.integer("test", tiny ? 64 : 1000);
  const double lr = flags.number("lr", 3e-3);
  const auto seed = static_cast<std::uint64_t>(flags.integer("seed", 1));
  manual_seed(seed);
  std::mt19937_64 rng(seed);

  // Every day of 1950-2049, shuffled: the first n_test are the test dates, never trained on.
  const long first = -7305, last = 29219;  // 1950-01-01 and 2049-12-31, in days since 1970-01-01
  std::vector<long> days;
  for (long z = first; z <= last; ++z) days.push_back(z);
  for (std::size_t i = days.size() - 1; i > 0; --i) std::swap(days[i], days[rng() % (i + 1)]);
  auto example = [&](long z) {
    const Date d = civil_from_days(z);
    const int f = static_cast<int>(rng() % kFormats);
    return Example{written(d, f), iso(d), f};
  };
  std::vector<Example> test, train;
  for (std::int64_t i = 0; i < n_test; ++i) test.push_back(example(days[i]));
  for (std::int64_t i = 0; i < n_train; ++i) train.push_back(example(days[n_test + rng() % (days.size() - n_test)]));

  std::vector<std::vector<std::string>> source_chars, target_chars{{"<s>"}};
  std::vector<std::int64_t> lengths;
  for (const auto& e : train) {
    source_chars.push_back(data::characters(e.source));
    target_chars.push_back(data::characters(e.target));
    lengths.push_back(static_cast<std::int64_t>(source_chars.back().size()));
  }
  const auto sv = data::Vocabulary::build(source_chars), tv = data::Vocabulary::build(target_chars);
  const std::int64_t start_id = tv.id("<s>");

  // Baseline: the one constant answer with the most common training character at each position.
  std::string constant(kTargetLength, ' ');
  for (std::int64_t p = 0; p < kTargetLength; ++p) {
    std::map<char, int> counts;
    for (const auto& e : train) ++counts[e.target[p]];
    constant[p] = std::max_element(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
  }

  Seq2Seq model(sv.size(), tv.size(), H);
  optim::Adam adam(model.parameters(), {.lr = lr});
  fmt::print("dates 1950-2049 in {} formats -> ISO; {} training examples, {} test dates never trained on\n", kFormats,
             n_train, n_test);
  fmt::print("e.g. \"{}\" -> {}; vocabularies {} source / {} target characters; {} parameters\n", train[0].source,
             train[0].target, sv.size(), tv.size(), model.parameter_count());

  // Training: teacher forcing over length-bucketed batches, Adam with a cosine-decayed rate, clipping.
  const auto t0 = std::chrono::steady_clock::now();
  optim::ProgressBar bar(steps);
  Generator shuffler(seed);
  std::vector<std::vector<std::int64_t>> epoch;
  double first_loss = 0, loss_value = 0, running = 0;
  bool finite = true;
  for (std::int64_t step = 1; step <= steps; ++step) {
    if (epoch.empty()) epoch = data::bucket_batches(lengths, B, &shuffler);
    Batch batch = make_batch(train, epoch.back(), sv, tv);
    epoch.pop_back();
    Seq2Seq::Encoded e = model.encode(batch.source);
    Tensor start = full({batch.targets.size(0)}, static_cast<double>(start_id), i64);
    Tensor logits = nn::teacher_forcing(model.decoder(e), start, batch.targets, e.initial);
    Tensor loss = nn::cross_entropy(logits, batch.targets);
    adam.set_lr(lr * (0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step - 1) / steps))));
    adam.zero_grad();
    loss.backward();
    optim::clip_grad_norm(model.parameters(), 1.0);
    adam.step();
    loss_value = loss.item();
    finite = finite && std::isfinite(loss_value);
    if (step == 1) first_loss = running = loss_value;
    running = 0.9 * running + 0.1 * loss_value;
    bar.update(step, {{"loss", running}});
  }
  bar.finish({{"loss", running}});
  const double train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Greedy decoding of the test set; the attention of the first test row is kept for the map.
  model.eval();
  std::vector<std::string> predicted;
  std::vector<Tensor> shown_weights;
  for (std::int64_t begin = 0; begin < n_test; begin += 250) {
    std::vector<std::int64_t> rows;
    for (std::int64_t r = begin; r < std::min(n_test, begin + 250); ++r) rows.push_back(r);
    Batch batch = make_batch(test, rows, sv, tv);
    autograd::NoGradGuard no_grad;
    Seq2Seq::Encoded e = model.encode(batch.source);
    Tensor start = full({batch.targets.size(0), 1}, static_cast<double>(start_id), i64);
    Tensor ids = nn::generate(model.decoder(e, begin == 0 ? &shown_weights : nullptr), start, e.initial, kTargetLength);
    auto flat = ids.to_vector<std::int64_t>();
    for (std::size_t r = 0; r < rows.size(); ++r) {
      std::string s;
      for (std::int64_t t = 0; t < kTargetLength; ++t) s += tv.token(flat[r * kTargetLength + t]);
      predicted.push_back(s);
    }
  }
  std::int64_t exact = 0, chars = 0, baseline_exact = 0, baseline_chars = 0;
  std::vector<int> per_format(kFormats), format_count(kFormats);
  for (std::int64_t i = 0; i < n_test; ++i) {
    const std::string& truth = test[i].target;
    exact += predicted[i] == truth;
    baseline_exact += constant == truth;
    per_format[test[i].format] += predicted[i] == truth;
    ++format_count[test[i].format];
    for (std::int64_t p = 0; p < kTargetLength; ++p) {
      chars += predicted[i][p] == truth[p];
      baseline_chars += constant[p] == truth[p];
    }
  }
  const double accuracy = static_cast<double>(exact) / n_test, baseline = static_cast<double>(baseline_exact) / n_test;

  fmt::print("\nheld-out test dates (greedy decoding):\n");
  for (int f = 0, shown = 0; f < kFormats && shown < 9; ++f)
    for (std::int64_t i = 0; i < n_test; ++i)
      if (test[i].format == f) {
        fmt::print("  {:<40} -> {}  {} {}\n", test[i].source, predicted[i], predicted[i] == test[i].target ? "ok   " : "WRONG",
                   test[i].target);
        ++shown;
        break;
      }
  fmt::print("exact match by format:");
  for (int f = 0; f < kFormats; ++f)
    fmt::print(" {}:{:.0f}%", f, format_count[f] ? 100.0 * per_format[f] / format_count[f] : 0.0);
  fmt::print("\ncharacters right: model {:.1f}%, constant answer \"{}\" {:.1f}%\n", 100.0 * chars / (n_test * kTargetLength),
             constant, 100.0 * baseline_chars / (n_test * kTargetLength));

  // The attention of test row 0 as a shaded grid: source characters across, output characters down.
  const char* const shades[] = {" ", "\u2591", "\u2592", "\u2593", "\u2588"};
  const auto source = data::characters(test[0].source);
  fmt::print("\nattention (row: output character, column: source character; shade: weight 0.05 .. 1)\n     ");
  for (const auto& c : source) fmt::print("{}", c);
  fmt::print("\n");
  for (std::int64_t t = 0; t < kTargetLength && t < static_cast<std::int64_t>(shown_weights.size()); ++t) {
    auto w = shown_weights[t].to_vector<float>();  // [250 or fewer, T]
    fmt::print("  {}  ", predicted[0][t]);
    for (std::size_t j = 0; j < source.size(); ++j) {
      const double a = w[j];
      fmt::print("{}", shades[a < 0.05 ? 0 : 1 + std::min(3, static_cast<int>(a * 4))]);
    }
    fmt::print("\n");
  }
  fmt::print("loss {:.4f} -> {:.4f}, {} steps of {} in {:.1f} s\n", first_loss, loss_value, steps, B, train_seconds);

  examples::report({.example = "seq2seq_attention",
                    .task = "dates in words -> ISO, held-out dates",
                    .model = fmt::format("BiGRU({}) encoder + Bahdanau-attention GRU decoder", H),
                    .metric = "exact-match accuracy",
                    .value = accuracy,
                    .baseline = baseline,
                    .higher_is_better = true});
  return finite && loss_value < first_loss ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
