#pragma once
// Token vocabularies and the two tokenizers of the course: words and characters.
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace xgrad::data {

/// Tokens <-> ids. Id 0 is always "<pad>" (what pad_sequences fills with) and id 1 "<unk>"
/// (every token the vocabulary does not hold); the corpus tokens follow.
class Vocabulary {
 public:
  static constexpr std::int64_t pad_id = 0;
  static constexpr std::int64_t unk_id = 1;
  static constexpr const char* pad_token = "<pad>";
  static constexpr const char* unk_token = "<unk>";

  /// Only the two special tokens.
  Vocabulary();
  /// From the tokens of a corpus: those seen at least min_count times, by descending count,
  /// ties in lexicographic (byte) order, so the same corpus always gives the same ids; at most
  /// max_size entries counting the specials (-1: no limit), like torchtext's max_tokens.
  /// "<pad>" and "<unk>" met in the corpus keep ids 0 and 1.
  static Vocabulary build(const std::vector<std::vector<std::string>>& token_lists, std::int64_t min_count = 1,
                          std::int64_t max_size = -1);
  /// From the id-ordered token list of a saved vocabulary (tokens()): "<pad>", "<unk>", ...
  static Vocabulary from_tokens(const std::vector<std::string>& tokens);

  std::int64_t size() const { return static_cast<std::int64_t>(tokens_.size()); }
  bool contains(const std::string& token) const { return ids_.count(token) != 0; }
  /// The id of a token; unk_id (1) for one the vocabulary does not hold.
  std::int64_t id(const std::string& token) const;
  /// The token of an id; throws for one outside [0, size()).
  const std::string& token(std::int64_t id) const;
  /// id() of each token.
  std::vector<std::int64_t> encode(const std::vector<std::string>& tokens) const;
  /// token() of each id.
  std::vector<std::string> decode(const std::vector<std::int64_t>& ids) const;
  /// All tokens, in id order.
  const std::vector<std::string>& tokens() const { return tokens_; }

 private:
  void add(const std::string& token);
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, std::int64_t> ids_;
};

/// Word tokens: split at ASCII whitespace, with each of , ! ? ; : " ( ) and the period a token
/// of its own ("Hi, you!" -> hi , you !); lowercase folds ASCII letters only.
std::vector<std::string> words(const std::string& text, bool lowercase = true);

/// Character tokens: one per UTF-8 code point ("né" -> n, é); each byte that is not part of a
/// well-formed UTF-8 sequence becomes a token of its own.
std::vector<std::string> characters(const std::string& text);

}  // namespace xgrad::data
