// Text classification: which fortunes file does a quotation come from?
//
// Each record of the chosen category files (Debian's `fortunes` package) is labelled by its file.
// The classes are balanced (each capped at the same number of records) and split per class,
// with a seed, into training and a held-out test set. The model is the course notes' one:
//
//   ids [B, T] -> Embedding -> (Bi)LSTM or GRU, masked by the lengths -> last state -> Linear -> logits [B, C]
//
// Words come from data::words (lowercased, punctuation split off); words seen fewer than
// --min-count times in training become <unk>. Records are padded (or cut) to --maxlen words
// at the end, and the recurrent layer skips the padding, so the last state is each record's own.
// The score is test accuracy against the majority-class baseline (1 / classes, balanced).
//
// Usage: fortune_topics [--categories a,b,...] [--per-class N] [--cell lstm|gru|gru-before|rnn]
//                       [--bidirectional 0|1] [--embed E] [--hidden H] [--maxlen T] [--min-count K]
//                       [--dropout P] [--lr LR] [--batch B] [--epochs N] [--seed S] [--quick | --tiny]
//                       (--help: every flag and its default)
#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/fortunes.hpp"
#include "common/report.hpp"
#include <xgrad/xgrad.hpp>

using namespace xgrad;

/// The recurrent cell of hidden size H, by name.
nn::CellFactory cell_factory(const std::string& name, std::int64_t H) {
  return [name, H](std::int64_t, std::int64_t in) -> std::shared_ptr<nn::Cell> {
    if (name == "lstm") return std::make_shared<nn::LSTMCell>(in, H);
    if (name == "gru") return std::make_shared<nn::GRUCell>(in, H);
    if (name == "gru-before") return std::make_shared<nn::GRUResetBeforeCell>(in, H);
    if (name == "rnn") return std::make_shared<nn::SimpleRNNCell>(in, H);
    fail("fortune_topics: unknown --cell {} (lstm, gru, gru-before, rnn)", name);
  };
}

struct TopicClassifier : nn::Module {
  nn::Holder<nn::Embedding> embed;
  nn::Holder<nn::Recurrent> rnn;
  nn::Holder<nn::Dropout> drop;
  nn::Holder<nn::Linear> head;

  TopicClassifier(std::int64_t V, std::int64_t E, std::int64_t H, std::int64_t C, const std::string& cell,
                  bool bidirectional, double p)
      : embed(this, "embed", V, E, data::Vocabulary::pad_id),
        rnn(this, "rnn", cell_factory(cell, H), E,
            nn::RecurrentOptions{.bidirectional = bidirectional, .return_sequences = false, .input_dropout = p}),
        drop(this, "drop", p),
        head(this, "head", H * rnn->directions(), C) {}
  /// ids i64 [B, T] padded at the end, lengths i64 [B] -> logits [B, C].
  Tensor operator()(const Tensor& ids, const Tensor& lengths) {
    Tensor last = rnn->run(embed(ids), lengths, {}, nn::PadSide::post).output;  // [B, D H]
    return head(drop(last));
  }
};

int main(int argc, char** argv) try {
  examples::Cli cli("fortune_topics",
                    "Which fortunes file does a quotation come from? Embedding, a lengths-masked (Bi)LSTM or GRU, "
                    "Linear; test accuracy and a confusion matrix.");
  std::vector<std::string> categories{"computers", "food", "law", "love", "sports", "startrek"};
  std::string cell = "lstm";
  bool bidirectional = true;
  std::int64_t per_class = 0, E = 0, H = 0, maxlen = 0, min_count = 2, batch = 32, epochs = 0;
  double lr = 3e-3, p = 0.3;
  cli.add("--categories", categories, "fortune files, one class each (comma-separated)")->delimiter(',');
  cli.add("--per-class", per_class, {145, 145, 40}, "records per class (a fifth of them held out)")
      ->check(examples::positive);
  cli.add("--cell", cell, "the recurrent cell")->check(CLI::IsMember({"lstm", "gru", "gru-before", "rnn"}));
  cli.add("--bidirectional", bidirectional, "read both ways (0: one direction)");
  cli.add("--embed", E, {64, 64, 16}, "size of a word's embedding")->check(examples::positive);
  cli.add("--hidden", H, {48, 48, 16}, "hidden units per direction")->check(examples::positive);
  cli.add("--maxlen", maxlen, {60, 60, 30}, "words kept per record (the first ones)")->check(examples::positive);
  cli.add("--min-count", min_count, "words seen fewer times in training become <unk>")->check(examples::positive);
  cli.add("--dropout", p, "dropout on the embeddings and the last state")->check(examples::probability);
  cli.add("--lr", lr, "Adam's learning rate")->check(examples::positive);
  cli.add("--batch", batch, "records per batch")->check(examples::positive);
  cli.add("--epochs", epochs, {25, 15, 5}, "passes over the training records")->check(examples::positive);
  if (auto done = cli.parse(argc, argv)) return *done;
  const bool tiny = cli.tiny();
  const std::uint64_t seed = cli.seed();
  manual_seed(seed);
  Generator gen(seed);
  const auto start = std::chrono::steady_clock::now();

  // --- data: a balanced, per-class seeded split; 20% of every class is held out -------------
  const auto C = static_cast<std::int64_t>(categories.size());
  std::vector<std::vector<std::string>> train_words, test_words;
  std::vector<std::int64_t> train_labels, test_labels;
  for (std::int64_t c = 0; c < C; ++c) {
    std::vector<examples::Fortune> records = examples::load_fortunes({categories[c]});
    if (static_cast<std::int64_t>(records.size()) < per_class)
      fail("fortune_topics: {} has {} records, fewer than --per-class {}", categories[c], records.size(), per_class);
    std::vector<std::int64_t> order = data::permutation(static_cast<std::int64_t>(records.size()), &gen);
    for (std::int64_t k = 0; k < per_class; ++k) {
      const bool test = k < per_class / 5;
      (test ? test_words : train_words).push_back(data::words(records[order[k]].text));
      (test ? test_labels : train_labels).push_back(c);
    }
  }
  const data::Vocabulary vocab = data::Vocabulary::build(train_words, min_count);
  auto encode = [&](const std::vector<std::vector<std::string>>& texts) {
    std::vector<std::vector<std::int64_t>> ids;
    for (const auto& t : texts) ids.push_back(vocab.encode(t));
    return data::pad_sequences(ids, maxlen, data::Side::post, data::Side::post);  // keep the first maxlen words
  };
  const data::Padded train = encode(train_words), test = encode(test_words);
  const Tensor train_y = data::index_tensor(train_labels);
  const auto N = static_cast<std::int64_t>(train_labels.size());
  fmt::print("fortunes: {} classes x {} records ({} train, {} test), vocabulary {} words (min count {}), maxlen {}\n",
             C, per_class, N, test_labels.size(), vocab.size(), min_count, maxlen);

  // --- model and training -----------------------------------------------------------------
  TopicClassifier model(vocab.size(), E, H, C, cell, bidirectional, p);
  optim::Adam adam(model.parameters(), {.lr = lr});
  fmt::print("model: embedding {} -> {}{} {} (masked by lengths) -> linear {}; {} parameters\n", E,
             bidirectional ? "bidirectional " : "", cell, H, C, model.parameter_count());
  auto accuracy = [](const Tensor& logits, const Tensor& y) { return mean(eq(max(logits, 1).indices, y).to(f32)).item(); };
  std::vector<std::vector<std::int64_t>> order;
  optim::Batches batches{
      .count = (N + batch - 1) / batch,
      .run = [&](std::int64_t i) {
        Tensor y = data::take(train_y, order[i]);
        Tensor logits = model(data::take(train.ids, order[i]), data::take(train.lengths, order[i]));
        return optim::StepResult{nn::cross_entropy(logits, y), {{"acc", accuracy(logits, y)}}, y.numel()};
      },
      .on_epoch_begin = [&](std::int64_t) { order = data::batches(N, batch, /*shuffle=*/true, &gen); }};
  const optim::History history = optim::fit(model, adam, batches, {.epochs = epochs, .clip_norm = 1.0});

  // --- held-out test: accuracy and the confusion matrix ----------------------------------
  model.eval();
  std::vector<std::int64_t> predicted;
  {
    autograd::NoGradGuard no_grad;
    predicted = max(model(test.ids, test.lengths), 1).indices.to_vector<std::int64_t>();
  }
  std::vector<std::vector<std::int64_t>> confusion(C, std::vector<std::int64_t>(C, 0));
  std::int64_t correct = 0;
  for (std::size_t k = 0; k < predicted.size(); ++k) {
    confusion[test_labels[k]][predicted[k]] += 1;
    correct += predicted[k] == test_labels[k];
  }
  const double test_accuracy = static_cast<double>(correct) / static_cast<double>(predicted.size());
  const double majority = 1.0 / static_cast<double>(C);  // every class has the same count

  std::size_t width = 6;
  for (const auto& name : categories) width = std::max(width, name.size() + 1);
  fmt::print("\nconfusion matrix on the test set (rows: true, columns: predicted)\n{:>{}}", "", width);
  for (const auto& name : categories) fmt::print("{:>{}}", name, width);
  fmt::print("\n");
  for (std::int64_t c = 0; c < C; ++c) {
    fmt::print("{:>{}}", categories[c], width);
    for (std::int64_t k = 0; k < C; ++k) fmt::print("{:>{}}", confusion[c][k], width);
    fmt::print("\n");
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double first_loss = history.epochs.front().at("loss"), last_loss = history.epochs.back().at("loss");
  fmt::print("\ntraining loss {:.4f} -> {:.4f}; test accuracy {:.1f}% ({} / {}), majority class {:.1f}%, in {:.1f} s\n",
             first_loss, last_loss, 100 * test_accuracy, correct, predicted.size(), 100 * majority, seconds);
  examples::report({.example = "fortune_topics",
                    .task = fmt::format("fortunes, {} topics", C),
                    .model = fmt::format("{}{} {}", bidirectional ? "bidirectional " : "", cell, H),
                    .metric = "test accuracy",
                    .value = test_accuracy,
                    .baseline = majority,
                    .higher_is_better = true});
  const bool ok = std::isfinite(last_loss) && (tiny ? last_loss < first_loss : test_accuracy > majority + 0.1);
  return ok ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
