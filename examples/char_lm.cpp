// A character-level language model on the fortunes corpus (Debian's `fortunes` package).
//
// The records are shuffled (seeded) and joined into one text; the last 10% of it is held out
// for validation. The model reads one character at a time and predicts the next:
//
//   e_t = Embedding(c_t);  h_t = RNN(e_t, h_{t-1}) (any shipped cell, stacked);  p(c_{t+1}) = softmax(W h_t + b)
//
// Training is truncated BPTT over B parallel streams (data::StreamBatcher): each window of
// --bptt steps starts from the state the previous window ended in, detached from its graph.
// The score is validation bits per character (mean cross-entropy / ln 2) against the unigram
// entropy of the training text (what a model that ignores context achieves). The best epoch
// is saved as safetensors, reloaded, and finally sampled from a prompt with a temperature.
//
// Usage: char_lm [--cell lstm|gru|gru-before|rnn|peephole|coupled|gen1|dglstm] [--layers L]
//                [--hidden H] [--embed E] [--batch B] [--bptt K] [--chars N] [--lr LR]
//                [--epochs N] [--seed S] [--checkpoint PATH] [--prompt TEXT]
//                [--temperature T] [--sample N] [--distributed [--no-overlap] [--bucket-kb K]] [--quick | --tiny] [--plot [--plot-dir DIR]]
//                (--help: every flag and its default; --plot: curves and the embedding matrix as PNGs)
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include <fmt/core.h>

#include "common/cli.hpp"
#include "common/distributed.hpp"
#include "common/fortunes.hpp"
#include "common/report.hpp"
#include <xgrad/viz/plot.hpp>
#include <xgrad/xgrad.hpp>

using namespace xgrad;

const std::vector<std::string> kCells{"lstm", "gru", "gru-before", "rnn", "peephole", "coupled", "gen1", "dglstm"};

/// One recurrent cell of hidden size H per layer, chosen by name (one of kCells).
nn::CellFactory cell_factory(const std::string& name, std::int64_t H) {
  return [name, H](std::int64_t layer, std::int64_t in) -> std::shared_ptr<nn::Cell> {
    if (name == "lstm") return std::make_shared<nn::LSTMCell>(in, H);
    if (name == "gru") return std::make_shared<nn::GRUCell>(in, H);
    if (name == "gru-before") return std::make_shared<nn::GRUResetBeforeCell>(in, H);
    if (name == "rnn") return std::make_shared<nn::SimpleRNNCell>(in, H);
    if (name == "peephole") return std::make_shared<nn::PeepholeLSTMCell>(in, H);
    if (name == "coupled") return std::make_shared<nn::CoupledLSTMCell>(in, H);
    if (name == "gen1") return std::make_shared<nn::Gen1LSTMCell>(in, H);
    // depth-gated: a plain LSTM at the bottom, each layer above reads the cell state beneath
    if (name == "dglstm") {
      if (layer == 0) return std::make_shared<nn::LSTMCell>(in, H);
      return std::make_shared<nn::DepthGatedLSTMCell>(in, H);
    }
    fail("char_lm: unknown --cell {} (lstm, gru, gru-before, rnn, peephole, coupled, gen1, dglstm)", name);
  };
}

struct CharLM : nn::Module {
  nn::Holder<nn::Embedding> embed;
  nn::Holder<nn::Recurrent> rnn;
  nn::Holder<nn::Linear> head;

  CharLM(std::int64_t V, std::int64_t E, std::int64_t H, std::int64_t layers, const std::string& cell)
      : embed(this, "embed", V, E),
        rnn(this, "rnn", cell_factory(cell, H), E, nn::RecurrentOptions{.num_layers = layers}),
        head(this, "head", H, V) {}
  /// ids i64 [B, T] from the states of each layer -> logits [B, T, V] and the new states.
  std::pair<Tensor, std::vector<nn::State>> operator()(const Tensor& ids, const std::vector<nn::State>& states) {
    nn::RecurrentResult r = rnn->run(embed(ids), {}, states);
    return {head(r.output), r.states};
  }
};

/// --plot: the curves per epoch, and the learned embedding matrix as a heat map: a column per
/// character, grouped (space, lower case, upper case, digits, punctuation, the rest), a row per
/// dimension, the dimensions that tell the groups apart best on top, so that what the model
/// learned about each group shows as bands.
void plot(const examples::Cli& cli, const optim::History& history, CharLM& model, const data::Vocabulary& vocab,
          const std::vector<double>& counts, const std::string& cell) {
  std::string path = cli.plot_path("char_lm_curves.png");
  viz::training_curves(history, path,
                       {.width = 900, .height = 380,
                        .title = fmt::format("Character language model ({}) on fortunes, per epoch", cell)});
  fmt::print("picture: {}\n", path);

  auto group = [](const std::string& c) {
    const auto u = static_cast<unsigned char>(c[0]);
    if (c.size() > 1) return 5;  // anything not ASCII
    return c == " " ? 0 : std::islower(u) ? 1 : std::isupper(u) ? 2 : std::isdigit(u) ? 3 : std::isgraph(u) ? 4 : 5;
  };
  // the characters seen at least once per 10 000 in training (<pad>, <unk> and rare ones left out)
  const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
  std::vector<std::int64_t> ids;
  for (std::int64_t id = 0; id < vocab.size(); ++id)
    if (id != data::Vocabulary::pad_id && id != data::Vocabulary::unk_id && counts[id] >= 1e-4 * total) ids.push_back(id);
  std::stable_sort(ids.begin(), ids.end(), [&](std::int64_t a, std::int64_t b) {
    return std::pair(group(vocab.token(a)), vocab.token(a)) < std::pair(group(vocab.token(b)), vocab.token(b));
  });
  std::vector<std::string> labels;
  std::vector<int> groups;
  for (std::int64_t id : ids) {
    const std::string& c = vocab.token(id);
    labels.push_back(c == " " ? "\u2423" : c == "\n" ? "\u21b5" : c);  // visible space, return
    groups.push_back(group(c));
  }
  const Tensor table = index_select(model.embed->weight.detach(), 0, data::index_tensor(ids));  // [C, E]
  const auto C = static_cast<std::size_t>(table.size(0)), E = static_cast<std::size_t>(table.size(1));
  const std::vector<double> v = table.to_vector<double>();

  // dimensions by the share of their variance that lies between the groups' means
  std::vector<double> separation(E);
  for (std::size_t e = 0; e < E; ++e) {
    double mean = 0, total = 0, between = 0;
    for (std::size_t c = 0; c < C; ++c) mean += v[c * E + e] / static_cast<double>(C);
    for (int g = 0; g <= 5; ++g) {
      double sum = 0, n = 0;
      for (std::size_t c = 0; c < C; ++c)
        if (groups[c] == g) sum += v[c * E + e], n += 1;
      if (n > 0) between += n * (sum / n - mean) * (sum / n - mean);
    }
    for (std::size_t c = 0; c < C; ++c) total += (v[c * E + e] - mean) * (v[c * E + e] - mean);
    separation[e] = total > 0 ? between / total : 0;
  }
  std::vector<std::size_t> order(E);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return separation[a] > separation[b]; });
  xt::xarray<double> m = xt::xarray<double>::from_shape({E, C});
  std::vector<std::string> dims;
  std::vector<double> magnitudes;
  for (std::size_t r = 0; r < E; ++r) {
    dims.push_back(std::to_string(order[r]));
    for (std::size_t c = 0; c < C; ++c) m(r, c) = v[c * E + order[r]], magnitudes.push_back(std::abs(m(r, c)));
  }
  // the colour scale ends at the 98th percentile of |value|, so that a few large entries do not wash out the rest
  std::nth_element(magnitudes.begin(), magnitudes.begin() + static_cast<std::ptrdiff_t>(magnitudes.size() * 98 / 100),
                   magnitudes.end());
  const double scale = magnitudes[magnitudes.size() * 98 / 100];
  path = cli.plot_path("char_lm_embedding.png");
  viz::heat_map({.values = from_xarray(m),
                 .title = "learned character embedding: a column per character, a row per dimension",
                 .x_label = "character seen once in 10 000 or more (space, lower case, upper case, digits, punctuation)",
                 .y_label = "dimension (best at telling the groups apart first)",
                 .col_labels = labels,
                 .row_labels = dims,
                 .value_label = "value",
                 .min = -scale,
                 .max = scale,
                 .diverging = true},
                path, {.width = 1400, .height = 560});
  fmt::print("picture: {}\n", path);
}

int main(int argc, char** argv) try {
  examples::Cli cli("char_lm",
                    "A character-level language model on the fortunes corpus: truncated BPTT, validation "
                    "bits/char against the unigram entropy, the best checkpoint, sampled text.");
  std::string cell = "lstm", checkpoint, prompt = "The ";
  std::int64_t layers = 1, H = 0, E = 0, B = 0, bptt = 0, max_chars = 0, epochs = 0, sample = 0;
  double lr = 0, temperature = 0.7;
  cli.add("--cell", cell, "the recurrent cell")->check(CLI::IsMember(kCells));
  cli.add("--layers", layers, "stacked recurrent layers (2 for dglstm)")->check(examples::positive);
  cli.add("--hidden", H, {256, 128, 32}, "hidden units per layer")->check(examples::positive);
  cli.add("--embed", E, {32, 32, 16}, "size of a character's embedding")->check(examples::positive);
  cli.add("--batch", B, {32, 32, 8}, "parallel streams of text")->check(examples::positive);
  cli.add("--bptt", bptt, {64, 48, 16}, "characters per window of truncated BPTT")->check(examples::positive);
  cli.add("--chars", max_chars, {-1, 400000, 6000}, "characters of the corpus to use (-1: all)");
  cli.add("--epochs", epochs, {10, 3, 2}, "passes over the training text")->check(examples::positive);
  cli.add("--lr", lr, {3e-3, 6e-3, 6e-3}, "Adam's learning rate")->check(examples::positive);
  cli.add("--checkpoint", checkpoint, "where the best epoch is saved (default /tmp/xgrad_char_lm_<cell>.safetensors)");
  cli.add("--prompt", prompt, "the text sampling starts from");
  cli.add("--temperature", temperature, "sampling temperature (lower: more likely characters)")->check(examples::positive);
  cli.add("--sample", sample, {300, 300, 40}, "characters to sample")->check(examples::nonnegative);
  bool distributed = false;
  bool after_backward = false;
  double bucket_kb = 4096;
  cli.add_switch("--distributed", distributed,
                 "under mpirun -np N: data-parallel training, the --batch streams split across the N ranks");
  cli.add_switch("--no-overlap", after_backward,
                 "with --distributed: start the allreduces after backward, not during it (to measure the overlap)");
  cli.add("--bucket-kb", bucket_kb, "with --distributed: gradient KiB per allreduce")->check(examples::positive);
  cli.add_plot();
  if (auto done = cli.parse(argc, argv)) return *done;
  examples::Distributed ranks(distributed, {.bucket_mb = bucket_kb / 1024, .overlap = !after_backward}, argc, argv);
  const bool tiny = cli.tiny();
  const std::uint64_t seed = cli.seed();
  if (!cli.given("--layers") && cell == "dglstm") layers = 2;  // a depth gate needs a layer beneath
  if (checkpoint.empty()) checkpoint = "/tmp/xgrad_char_lm_" + cell + ".safetensors";
  manual_seed(seed);
  const auto start = std::chrono::steady_clock::now();

  // --- data: shuffled records -> one text -> characters -> ids; the last 10% validates ------
  std::vector<examples::Fortune> records = examples::load_fortunes();
  Generator shuffle(seed);
  std::string text;
  for (std::int64_t i : data::permutation(static_cast<std::int64_t>(records.size()), &shuffle)) {
    text += records[i].text + "\n\n";
    if (max_chars > 0 && static_cast<std::int64_t>(text.size()) >= max_chars) break;
  }
  const std::vector<std::string> chars = data::characters(text);
  const auto split = static_cast<std::ptrdiff_t>(chars.size() * 9 / 10);
  const data::Vocabulary vocab = data::Vocabulary::build({{chars.begin(), chars.begin() + split}});  // training only
  const std::vector<std::int64_t> ids = vocab.encode(chars);
  const std::vector<std::int64_t> train_ids(ids.begin(), ids.begin() + split), valid_ids(ids.begin() + split, ids.end());
  const std::int64_t V = vocab.size();

  // Baseline: the unigram entropy of the training text, -sum p(c) log2 p(c)
  std::vector<double> counts(V, 0.0);
  for (std::int64_t id : train_ids) counts[id] += 1;
  double unigram_bits = 0;
  for (double n : counts)
    if (n > 0) unigram_bits -= n / static_cast<double>(split) * std::log2(n / static_cast<double>(split));
  fmt::print("fortunes: {} characters for training, {} for validation, vocabulary {}; unigram entropy {:.3f} bits/char\n",
             train_ids.size(), valid_ids.size(), V, unigram_bits);

  // --- model ------------------------------------------------------------------------------
  CharLM model(V, E, H, layers, cell);
  ranks.wrap(model);  // --distributed: rank 0's weights everywhere, gradients averaged
  optim::Adam adam(model.parameters(), {.lr = lr});
  fmt::print("model: embedding {} -> {} x {} ({} cells) -> linear {}; {} parameters\n", E, layers, H, cell, V,
             model.parameter_count());

  // --- truncated BPTT over B streams: the state is carried from one window to the next -----
  // (--distributed: each rank runs its share of the streams; fit reduces the logs over ranks)
  auto stream_batches = [&](const std::vector<std::int64_t>& part, std::vector<nn::State>& carried) {
    auto streams = std::make_shared<data::StreamBatcher>(part, B, bptt);
    return optim::Batches{
        .count = streams->size(),
        .run = [&model, &carried, &ranks, streams](std::int64_t i) {
          data::Windows w = streams->window(i);
          const Tensor inputs = ranks.shard(w.inputs), targets = ranks.shard(w.targets);
          auto [logits, states] = model(inputs, carried);
          carried = nn::detach(states);  // the next window continues the text, without this graph
          Tensor loss = nn::cross_entropy(logits, targets);
          return optim::StepResult{loss, {{"bpc", loss.item() / std::log(2.0)}}, targets.numel()};
        },
        .on_epoch_begin = [&carried](std::int64_t) { carried.clear(); }};
  };
  std::vector<nn::State> train_state, valid_state;
  optim::Batches train = stream_batches(train_ids, train_state);
  optim::Batches valid = stream_batches(valid_ids, valid_state);

  valid.on_epoch_begin(0);
  const double untrained_bpc = optim::evaluate(model, valid).at("bpc");
  fmt::print("untrained: validation {:.3f} bits/char; {} windows of {} x {} characters per epoch\n", untrained_bpc,
             train.count, B, bptt);
  auto best = std::make_shared<optim::ModelCheckpoint>(model, checkpoint, "val_bpc");
  auto announce = std::make_shared<optim::LambdaCallback>([&](std::int64_t epoch, const optim::Logs& logs, bool&) {
    fmt::print("epoch {}: validation {:.3f} bits/char{}\n", epoch + 1, logs.at("val_bpc"),
               best->saved_epoch() == epoch ? fmt::format(" (best so far, saved to {})", checkpoint) : "");
  });
  const optim::History history =
      optim::fit(model, adam, train, {.epochs = epochs, .clip_norm = 1.0, .callbacks = {best, announce}}, &valid);

  // --- the best checkpoint, sampled from a prompt -----------------------------------------
  if (best->saved_epoch() >= 0) model.load(checkpoint);
  if (cli.plot()) plot(cli, history, model, vocab, counts, cell);
  valid.on_epoch_begin(0);
  const double bpc = optim::evaluate(model, valid).at("bpc");
  // generate() works on one flat state; the model keeps one state per layer
  auto step = [&](const Tensor& tokens, const nn::State& flat) {
    std::vector<nn::State> states;
    for (std::int64_t layer = 0, at = 0; at < static_cast<std::int64_t>(flat.size()); ++layer) {
      const auto n = static_cast<std::int64_t>(model.rnn->cell(layer).state_count());
      states.emplace_back(flat.begin() + at, flat.begin() + at + n);
      at += n;
    }
    auto [logits, next] = model(unsqueeze(tokens, 1), states);
    nn::State out;
    for (const auto& s : next) out.insert(out.end(), s.begin(), s.end());
    return std::pair{squeeze(logits, 1), out};
  };
  Generator sampler(seed);
  model.eval();
  Tensor context = unsqueeze(data::index_tensor(vocab.encode(data::characters(prompt))), 0);  // [1, C]
  Tensor sampled = nn::generate(step, context, {}, sample, {.temperature = temperature, .generator = &sampler});
  std::string continuation;
  for (const auto& c : vocab.decode(sampled.to_vector<std::int64_t>())) continuation += c;
  fmt::print("\nsample (temperature {}):\n{}{}\n", temperature, prompt, continuation);

  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  fmt::print("\nvalidation {:.3f} bits/char (untrained {:.3f}, unigram {:.3f}) in {:.1f} s\n", bpc, untrained_bpc,
             unigram_bits, seconds);
  double train_seconds = 0;  // the epochs, validation included
  for (const auto& logs : history.epochs) train_seconds += logs.at("seconds");
  const double trained = static_cast<double>(history.epochs.size()) * static_cast<double>(train_ids.size());
  fmt::print("training: {:.2f} s, {:.0f} characters/s\n", train_seconds, trained / train_seconds);
  if (ranks.on()) fmt::print("{}\n", ranks.summary(train_seconds));
  examples::report({.example = "char_lm",
                    .task = "fortunes, next character",
                    .model = fmt::format("{}x{} {}", layers, H, cell),
                    .metric = "validation bits/char",
                    .value = bpc,
                    .baseline = unigram_bits});
  const bool ok = std::isfinite(bpc) && (tiny ? bpc < untrained_bpc : bpc < unigram_bits - 0.5);
  return ok ? 0 : 1;
} catch (const Error& e) {
  fmt::print(stderr, "error: {}\n", e.what());
  return 2;
}
