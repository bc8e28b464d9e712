// Sequence-tagging inference: words -> subword pieces (cut to max_length) -> tag probabilities per
// piece -> one tag per word (by its first piece, or aggregated over its pieces), with entity groups
// shaped like Hugging Face's token-classification pipeline, and explanations.
#pragma once

#include <memory>

#include "gaze/data/conll.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/predictor.h"
#include "gaze/tasks/word_pieces.h"

namespace gaze::tasks {

class TagPredictor : public Predictor {
 public:
  // scheme: resolved (iob2, bioes or none); fallback_tag: the tag of words past the cut.
  TagPredictor(std::shared_ptr<text::Tokenizer> tokenizer, std::vector<std::string> tags,
               std::shared_ptr<models::TransformerTagger> model, TagScheme scheme,
               int64_t fallback_tag, const DataConfig& data, int64_t batch_tokens);
  static std::unique_ptr<TagPredictor> load(const std::string& dir);
  void save(const std::string& dir) const;

  TaskKind kind() const override { return TaskKind::tag; }
  // {"words", "tags", "scores", "entities": [{"entity_group", "score", "word", "start", "end"}]}
  std::vector<nlohmann::json> predict(const std::vector<std::string>& lines,
                                      const PredictOptions& options) override;
  explain::Explanation explain(const std::string& text, const ExplainOptions& options) override;

  TagEncoded encode(const std::vector<data::TaggedSentence>& sentences, const std::string& source,
                    bool labelled) const;
  // Tag probabilities of every piece, [sentence][piece][tag], without autograd.
  std::vector<std::vector<std::vector<float>>> probabilities(const TagEncoded& enc);
  // Per word: (tag index, score) read from the piece probabilities as `aggregation` says.
  std::vector<std::pair<int64_t, float>> word_tags(const TagEncoded& enc, size_t sentence,
                                                   const std::vector<std::vector<float>>& probs,
                                                   Aggregation aggregation) const;

  const DataConfig& data() const { return data_; }
  void set_data(const DataConfig& data, int64_t batch_tokens);
  int64_t batch_tokens() const { return batch_tokens_; }
  const std::vector<std::string>& tags() const { return tags_; }
  bool entities() const { return scheme_ != TagScheme::none; }
  int64_t pad_id() const { return tokenizer_->pad_id(); }
  models::TransformerTagger& model() { return *model_; }

 private:
  std::shared_ptr<text::Tokenizer> tokenizer_;
  std::vector<std::string> tags_;
  std::shared_ptr<models::TransformerTagger> model_;
  TagScheme scheme_ = TagScheme::none;
  int64_t fallback_tag_ = 0;
  DataConfig data_;
  int64_t batch_tokens_ = 4096;
};

}  // namespace gaze::tasks
