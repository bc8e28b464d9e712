// Word-level and character-level tokenizers over a vocabulary counted from the training text
// (most frequent first, at least min_count occurrences, at most vocab_size entries; the rest map
// to <unk>). Words are maximal runs of letters and digits; punctuation and symbols stand alone,
// unless the whole space-separated chunk is itself in the vocabulary ("u.s.", "n't", ":)" of
// pretrained word vectors).
#pragma once

#include <unordered_map>

#include "gaze/text/tokenizer.h"

namespace gaze::text {

class VocabTokenizer : public Tokenizer {
 public:
  enum class Unit { word, character };
  VocabTokenizer(Unit unit, std::vector<std::string> pieces, bool lowercase);
  static std::unique_ptr<VocabTokenizer> train(Unit unit, const TokenizerOptions& options,
                                               const std::vector<std::string>& texts);
  // Reads vocab.txt (one piece per line, the four specials first).
  static std::unique_ptr<VocabTokenizer> load(Unit unit, const std::string& vocab_path,
                                              bool lowercase);

  std::string kind() const override { return unit_ == Unit::word ? "word" : "char"; }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::vector<std::string> tokenize(std::string_view text) const override;
  std::vector<std::string> surfaces(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(pieces_.size()); }
  void save(const std::string& dir) const override;

  // The units of `text` before vocabulary lookup.
  static std::vector<std::string> split(Unit unit, std::string_view text, bool lowercase);

 private:
  struct Piece {
    std::string key, surface;  // as looked up (lower-cased with lowercase) and as written
  };
  std::vector<Piece> segment(std::string_view text) const;

  Unit unit_;
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int64_t> ids_;
  bool lowercase_;
};

}  // namespace gaze::text
