// The Universal Sentence Encoder lite's tokenizer (tfjs-models' USE tokenizer, as the npm package
// @energetic-ai/embeddings runs it): NFKC, spaces as "▁", then the best-scoring segmentation into
// the vocabulary's pieces, reproduced quirk for quirk so imported models see the ids they were
// trained on.
#pragma once

#include <unordered_map>

#include "gaze/text/tokenizer.h"

namespace gaze::text {

class UseTokenizer : public Tokenizer {
 public:
  // pieces[i] with score scores[i] (a JSON null counts as 0, as in JavaScript); id_space: the
  // model's embedding rows (>= pieces), the last of which is the padding id.
  UseTokenizer(std::vector<std::string> pieces, std::vector<double> scores, int64_t id_space);
  // vocab.json: [[piece, score or null], ...] (the npm package's file). DataError naming the file.
  static std::unique_ptr<UseTokenizer> load(const std::string& vocab_path, int64_t id_space);

  std::string kind() const override { return "use_lite"; }
  std::vector<int64_t> encode(std::string_view text) const override;
  std::string decode(std::span<const int64_t> ids) const override;
  std::string id_to_piece(int64_t id) const override;
  int64_t vocab_size() const override { return id_space_; }
  void save(const std::string& dir) const override;

 private:
  std::vector<std::string> pieces_;
  std::vector<double> scores_;
  std::vector<bool> null_score_;  // kept to write vocab.json back as it came
  std::unordered_map<std::u32string, int64_t> ids_;
  size_t longest_ = 1;  // code points of the longest piece
  int64_t id_space_;
};

}  // namespace gaze::text
