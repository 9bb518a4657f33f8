#include "xgrad/data/vocab.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "xgrad/core/error.hpp"

namespace xgrad::data {

Vocabulary::Vocabulary() {
  add(pad_token);
  add(unk_token);
}

void Vocabulary::add(const std::string& token) {
  ids_.emplace(token, size());
  tokens_.push_back(token);
}

Vocabulary Vocabulary::build(const std::vector<std::vector<std::string>>& token_lists, std::int64_t min_count,
                             std::int64_t max_size) {
  if (min_count < 1) fail("Vocabulary::build: min_count must be at least 1, got {}", min_count);
  if (max_size != -1 && max_size < 2)
    fail("Vocabulary::build: max_size must be -1 (no limit) or at least 2 (the specials), got {}", max_size);
  Vocabulary vocab;
  std::map<std::string, std::int64_t> counts;  // ordered: ties come out lexicographically
  for (const auto& list : token_lists)
    for (const auto& t : list)
      if (!vocab.contains(t)) ++counts[t];
  std::vector<std::pair<std::string, std::int64_t>> ranked(counts.begin(), counts.end());
  std::stable_sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  for (const auto& [t, count] : ranked) {
    if (count < min_count || (max_size != -1 && vocab.size() >= max_size)) break;
    vocab.add(t);
  }
  return vocab;
}

Vocabulary Vocabulary::from_tokens(const std::vector<std::string>& tokens) {
  if (tokens.size() < 2 || tokens[0] != pad_token || tokens[1] != unk_token)
    fail("Vocabulary::from_tokens: the tokens must start with \"{}\", \"{}\"; got {} tokens starting \"{}\"", pad_token,
         unk_token, tokens.size(), tokens.empty() ? "" : tokens[0]);
  Vocabulary vocab;
  for (std::size_t i = 2; i < tokens.size(); ++i) {
    if (vocab.contains(tokens[i]))
      fail("Vocabulary::from_tokens: token \"{}\" appears twice (ids {} and {})", tokens[i], vocab.id(tokens[i]), i);
    vocab.add(tokens[i]);
  }
  return vocab;
}

std::int64_t Vocabulary::id(const std::string& token) const {
  auto it = ids_.find(token);
  return it == ids_.end() ? unk_id : it->second;
}

const std::string& Vocabulary::token(std::int64_t id) const {
  if (id < 0 || id >= size()) fail("Vocabulary::token: id {} is out of range for a vocabulary of {} tokens", id, size());
  return tokens_[id];
}

std::vector<std::int64_t> Vocabulary::encode(const std::vector<std::string>& tokens) const {
  std::vector<std::int64_t> out;
  out.reserve(tokens.size());
  for (const auto& t : tokens) out.push_back(id(t));
  return out;
}

std::vector<std::string> Vocabulary::decode(const std::vector<std::int64_t>& ids) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (std::int64_t i : ids) out.push_back(token(i));
  return out;
}

// --- tokenizers -------------------------------------------------------------------------------------

std::vector<std::string> words(const std::string& text, bool lowercase) {
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; };
  auto is_punct = [](char c) { return std::string_view(".,!?;:\"()").find(c) != std::string_view::npos; };
  std::vector<std::string> out;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) out.push_back(std::move(word));
    word.clear();
  };
  for (char c : text) {
    if (is_space(c)) {
      flush();
    } else if (is_punct(c)) {
      flush();
      out.emplace_back(1, c);
    } else {
      word.push_back(lowercase && c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
  }
  flush();
  return out;
}

namespace {

/// Length of the well-formed UTF-8 sequence at s[i] (Unicode Table 3-7), or 0 if there is none.
std::size_t utf8_length(const std::string& s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b = byte(i);
  if (b < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b >= 0xC2 && b <= 0xDF) n = 2;
  else if (b == 0xE0) n = 3, lo = 0xA0;               // no overlong forms
  else if (b == 0xED) n = 3, hi = 0x9F;               // no surrogates
  else if (b >= 0xE1 && b <= 0xEF) n = 3;
  else if (b == 0xF0) n = 4, lo = 0x90;               // no overlong forms
  else if (b == 0xF4) n = 4, hi = 0x8F;               // nothing above U+10FFFF
  else if (b >= 0xF1 && b <= 0xF3) n = 4;
  else return 0;                                      // continuation byte, C0, C1, F5..FF
  if (i + n > s.size() || byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = i + 2; k < i + n; ++k)
    if (byte(k) < 0x80 || byte(k) > 0xBF) return 0;
  return n;
}

}  // namespace

std::vector<std::string> characters(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = std::max<std::size_t>(utf8_length(text, i), 1);  // a stray byte: a token of its own
    out.push_back(text.substr(i, n));
    i += n;
  }
  return out;
}

}  // namespace xgrad::data
