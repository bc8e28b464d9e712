// WordPiece, as Hugging Face's BertTokenizer: basic tokenization (control characters dropped,
// whitespace normalised, CJK ideographs split, lower-casing and accent stripping when the model
// was trained so, punctuation split off) then greedy longest-match-first pieces with "##"
// continuations, [UNK] for a word that cannot be covered or is over-long. Sequences are framed by
// [CLS] ... [SEP] for the model.
#pragma once

#include <unordered_map>

#include "gaze/text/tokenizer.h"

namespace gaze::text {

struct WordPieceOptions {
  bool lowercase = true;   // BERT's do_lower_case
  int strip_accents = -1;  // -1: as lowercase (Hugging Face's None), 0: no, 1: yes
  bool split_cjk = true;   // tokenize_chinese_chars
  int64_t max_input_chars_per_word = 100;
};

class WordPieceTokenizer : public Tokenizer {
 public:
  // vocab: one piece per id; it must hold [PAD], [UNK], [CLS] and [SEP].
  WordPieceTokenizer(std::vector<std::string> vocab, const WordPieceOptions& options);
  // vocab.txt (one piece per line), or a Hugging Face tokenizer.json with a WordPiece model.
  static std::unique_ptr<WordPieceTokenizer> load(const std::string& path,
                                                  const WordPieceOptions& options);

  std::string kind() const override { return "wordpiece"; }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  std::vector<int64_t> prefix() const override { return {cls_}; }
  std::vector<int64_t> suffix() const override { return {sep_}; }
  void save(const std::string& dir) const override;

  // The words of basic tokenization (before WordPiece).
  std::vector<std::string> basic_tokens(std::string_view text) const;

 private:
  void pieces_of(const std::string& word, std::vector<int64_t>& out) const;
  std::vector<std::string> basic_words(std::string_view text) const;  // no special tokens

  std::vector<std::string> vocab_;
  std::unordered_map<std::string, int64_t> ids_;
  WordPieceOptions o_;
  int64_t cls_ = -1, sep_ = -1, mask_ = -1;
};

}  // namespace gaze::text
