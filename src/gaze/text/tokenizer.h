// Tokenizers: text -> token ids and back. SentencePiece (trained from the training text or loaded
// from a .model), word-level and character-level with vocabularies built from data. Every
// tokenizer saves itself into a folder (tokenizer.json + its files) so a model folder is complete.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gaze/io/config.h"

namespace gaze::text {

// shared: a translation target side that uses the source tokenizer. use_lite: the Universal
// Sentence Encoder's (comes with an imported model; not trained).
// wordpiece: BERT's (likewise from an imported model).
enum class TokenizerKind { shared, sentencepiece, word, character, use_lite, wordpiece };
GAZE_ENUM_NAMES(TokenizerKind, {TokenizerKind::shared, "shared"},
                {TokenizerKind::sentencepiece, "sentencepiece"}, {TokenizerKind::word, "word"},
                {TokenizerKind::character, "char"}, {TokenizerKind::use_lite, "use_lite"},
                {TokenizerKind::wordpiece, "wordpiece"})
enum class PieceModel { unigram, bpe };
GAZE_ENUM_NAMES(PieceModel, {PieceModel::unigram, "unigram"}, {PieceModel::bpe, "bpe"})

struct TokenizerOptions {
  TokenizerKind kind = TokenizerKind::sentencepiece;
  std::string model;  // sentencepiece: an existing .model to use instead of training
  PieceModel model_type = PieceModel::unigram;  // sentencepiece training
  int64_t vocab_size =
      4000;               // sentencepiece: target size; word/char: the most frequent kept (0: all)
  int64_t min_count = 1;  // word/char: rarer tokens become <unk>
  double character_coverage = 1.0;  // sentencepiece training: share of characters covered
  bool lowercase = false;           // lower-case text before tokenizing
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;
  // Ids without special tokens.
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // The pieces encode() produces, as strings (for display and attention maps); by default each
  // id's piece.
  virtual std::vector<std::string> tokenize(std::string_view text) const;
  // The text of each piece as written, case kept (for models that read characters): tokenize()
  // unless the tokenizer lower-cases its lookups.
  virtual std::vector<std::string> surfaces(std::string_view text) const { return tokenize(text); }
  // The ids a model reads before and after every sequence (BERT's [CLS] and [SEP]); none unless
  // the model was trained with them.
  virtual std::vector<int64_t> prefix() const { return {}; }
  virtual std::vector<int64_t> suffix() const { return {}; }
  // Text from ids; special ids are skipped.
  virtual std::string decode(std::span<const int64_t> ids) const = 0;
  virtual std::string id_to_piece(int64_t id) const = 0;
  // Size of the id space, special tokens included: the model's embedding rows.
  virtual int64_t vocab_size() const = 0;
  // Writes tokenizer.json and the tokenizer's own files into `dir` (which must exist).
  virtual void save(const std::string& dir) const = 0;

  int64_t pad_id() const { return pad_; }
  int64_t unk_id() const { return unk_; }
  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  bool is_special(int64_t id) const { return id == pad_ || id == unk_ || id == bos_ || id == eos_; }

 protected:
  int64_t pad_ = 0, unk_ = 1, bos_ = 2, eos_ = 3;
};

// Words from a tokenizer's pieces, for word-level explanations: the word each piece belongs to
// (0, 1, ...; framing pieces are words of their own) and each word as shown (its pieces joined,
// without the "##" and "▁" markers). The rule follows the tokenizer: wordpiece continues a word
// with "##" pieces, sentencepiece and use_lite start one with "▁", char tokenizers split at their
// " " pieces (each a word of its own), and word tokenizers' pieces are words.
struct WordGroups {
  std::vector<int64_t> group;      // per piece
  std::vector<std::string> words;  // per word
};
WordGroups word_groups(const Tokenizer& tok, const std::vector<std::string>& pieces,
                       const std::vector<bool>& framing);
// The same by the tokenizer's kind() ("wordpiece", "sentencepiece", "use_lite", "char", "word").
WordGroups word_groups(const std::string& kind, const std::vector<std::string>& pieces,
                       const std::vector<bool>& framing);

// The `tokenizer` section's keys; `shared` allows kind: shared (a translation target side).
config::Fields config_fields(TokenizerOptions& o, bool shared = false);

// Builds a tokenizer from training texts (sentencepiece trains a model unless options.model names
// one; word/char count their vocabulary).
std::unique_ptr<Tokenizer> train_tokenizer(const TokenizerOptions& options,
                                           const std::vector<std::string>& texts);
// Loads the tokenizer saved in `dir`.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace gaze::text
