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

// What the model says of encoded sentences: tag probabilities of every piece ([sentence][piece]
// [tag]) and, for a CRF tagger, the Viterbi tags of each sentence's kept words with the CRF's mean
// negative log-likelihood per word of the gold tags (labelled sentences).
struct TagScores {
  std::vector<std::vector<std::vector<float>>> probs;
  std::vector<std::vector<int64_t>> paths;  // empty without a CRF
  double nll = 0;
  int64_t words = 0;
};

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
  std::vector<nlohmann::json> predict_texts(const std::vector<std::string>& lines,
                                            const PredictOptions& options) override;
  // No words, no tags.
  nlohmann::json blank_prediction(const PredictOptions& options) const override;
  InputSize input_size(const std::string& line) const override;
  int64_t max_length() const override { return data_.max_length; }

  TagEncoded encode(const std::vector<data::TaggedSentence>& sentences, const std::string& source,
                    bool labelled) const;
  // The model inputs of the sentences `batch` of `enc` (an empty one reads as <unk>).
  models::Inputs inputs(const TagEncoded& enc, const std::vector<int64_t>& batch) const;
  // explain --method: each piece's tag log-probability attributed to the input pieces.
  void attribute(explain::Explanation& e, const models::Inputs& one, const ExplainOptions& o);
  // The model's scores of encoded sentences, in batches, without autograd.
  TagScores scores(const TagEncoded& enc);
  // Per word: (tag index, score). A CRF tagger's words take their Viterbi tags (scored by the
  // first piece's probability of it); otherwise the piece probabilities decide as `aggregation`
  // says.
  std::vector<std::pair<int64_t, float>> word_tags(const TagEncoded& enc, size_t sentence,
                                                   const TagScores& scores,
                                                   Aggregation aggregation) const;

  const DataConfig& data() const { return data_; }
  void set_data(const DataConfig& data, int64_t batch_tokens);
  int64_t batch_tokens() const { return batch_tokens_; }
  const std::vector<std::string>& tags() const { return tags_; }
  bool entities() const { return scheme_ != TagScheme::none; }
  int64_t pad_id() const { return tokenizer_->pad_id(); }
  models::TransformerTagger& model() { return *model_; }
  nn::Module& module() override { return *model_; }
  const nn::Module& module() const override { return *model_; }

 protected:
  explain::Explanation explain_input(const std::string& text,
                                     const ExplainOptions& options) override;
  const text::Tokenizer* explain_tokenizer(bool target) const override {
    return target ? nullptr : tokenizer_.get();
  }
  nlohmann::json describe_task() const override;

 private:
  // The Viterbi paths (and gold NLL) of one batch's sentences from their piece logits.
  void crf_batch(const TagEncoded& enc, const std::vector<int64_t>& batch, const Tensor& logits,
                 const std::vector<const std::vector<int64_t>*>& firsts, TagScores& out) const;

  std::shared_ptr<text::Tokenizer> tokenizer_;
  std::vector<std::string> tags_;
  std::shared_ptr<models::TransformerTagger> model_;
  TagScheme scheme_ = TagScheme::none;
  int64_t fallback_tag_ = 0;
  DataConfig data_;
  int64_t batch_tokens_ = 4096;
};

}  // namespace gaze::tasks
