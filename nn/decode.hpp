#pragma once
// Training and running autoregressive decoders: teacher forcing, and free-running generation
// with a warm-start context (greedy or sampled with a temperature).
#include <functional>
#include <utility>

#include "xgrad/core/random.hpp"
#include "xgrad/nn/cell.hpp"

namespace xgrad::nn {

/// One decoder step: the previous tokens (i64 [B]) and state -> logits [B, V] and the new state.
/// Attention decoders capture their encoder outputs in the function.
using DecoderStep = std::function<std::pair<Tensor, State>(const Tensor& tokens, const State& state)>;

/// Teacher forcing: step t reads the true token t - 1 (the first reads `start` [B]), whatever the
/// decoder predicted. Returns the logits [B, T, V] for targets [B, T].
Tensor teacher_forcing(const DecoderStep& step, const Tensor& start, const Tensor& targets, State state);

/// How generate() and choose_tokens() pick each token.
struct GenerateOptions {
  double temperature = 0;        ///< 0: greedy (argmax); > 0: sample from softmax(logits / temperature)
  Generator* generator = nullptr;  ///< for sampling (the default generator when null)
};

/// Free-running generation: first feeds the warm-start `context` tokens [B, C] (C >= 1) one by
/// one, then feeds back its own choices for `steps` more tokens. Returns them, i64 [B, steps].
/// Runs without recording a graph.
Tensor generate(const DecoderStep& step, const Tensor& context, State state, std::int64_t steps,
                const GenerateOptions& options = {});

/// Picks one token per row of logits [B, V]: argmax when temperature is 0, else a sample.
/// NaN or +inf logits are an error naming the row (no token can honestly be chosen).
Tensor choose_tokens(const Tensor& logits, const GenerateOptions& options = {});

}  // namespace xgrad::nn
