// Sequence tagging (named entities, part of speech): CoNLL sentences -> subword pieces per word ->
// TransformerTagger, trained on the first piece of every word (the other pieces are ignored in the
// loss) and read back per word. Entity tagsets (BIO/IOB2, BIOES) are scored per entity as seqeval
// does; others by token accuracy. Predictions carry Hugging Face-style entity groups.
#pragma once

#include <memory>

#include "gaze/data/conll.h"
#include "gaze/metrics/entities.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/task.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

struct TagEncoded {
  std::vector<std::vector<int64_t>> ids;    // subword pieces of each sentence
  std::vector<std::vector<int64_t>> first;  // per word: its first piece, -1 when cut off
  std::vector<std::vector<int64_t>> tags;   // per word: tag index (-1: unlabelled)
  int64_t truncated = 0;                    // sentences cut to max_length pieces
  int64_t unknown = 0;  // gold tags the model does not know (with unknown_tags: wrong)
};

class TagTask : public Task {
 public:
  static std::unique_ptr<TagTask> create(const RunConfig& config, std::FILE* log);
  static std::unique_ptr<TagTask> load(const std::string& dir);
  static std::unique_ptr<TagTask> resume(const RunConfig& config, const std::string& dir,
                                         std::FILE* log);

  models::Model& model() override { return *model_; }
  std::vector<int64_t> train_lengths() const override;
  Tensor loss(const std::vector<int64_t>& batch, double label_smoothing, int64_t* tokens) override;
  // {"f1" (entity micro F1, entity tagsets only), "accuracy" (tokens), "loss"}
  std::map<std::string, double> validate() override;
  void save_assets(const std::string& dir) const override;
  std::string name() const override { return "tag"; }
  std::optional<Report> test_report() override;
  Report evaluate_file(const std::string& path, const EvalOptions& options) override;
  // {"words", "tags", "scores", "entities": [{"entity_group", "score", "word", "start", "end"}]}
  std::vector<nlohmann::json> predict(const std::vector<std::string>& lines,
                                      const PredictOptions& options) override;
  explain::Explanation explain(const std::string& text, const ExplainOptions& options) override;

  metrics::TaggingReport evaluate(const std::vector<data::TaggedSentence>& sentences,
                                  const std::string& source, double* mean_loss = nullptr);
  // The predicted tags of each sentence's words.
  std::vector<std::vector<std::string>> tag(const std::vector<std::vector<std::string>>& words);
  const std::vector<std::string>& tags() const { return tags_; }
  bool has_entities() const { return entities_; }

 private:
  // The report of sentences already encoded as `enc` (validation reuses the dev encoding).
  metrics::TaggingReport evaluate(const std::vector<data::TaggedSentence>& sentences,
                                  const TagEncoded& enc, const std::string& source,
                                  double* mean_loss);
  TagTask() = default;
  void read_data(const RunConfig& c, std::FILE* log);
  // Encodes the training and dev sentences and sets the loss weights (train.class_weights).
  void encode_data(const RunConfig& c);
  TagEncoded encode(const std::vector<data::TaggedSentence>& sentences, const std::string& source,
                    bool labelled) const;
  // Tag probabilities of every piece, [sentence][piece][tag], without autograd.
  std::vector<std::vector<std::vector<float>>> probabilities(const TagEncoded& enc);
  // Per word: (tag index, score) read from the piece probabilities as `aggregation` says.
  std::vector<std::pair<int64_t, float>> word_tags(const TagEncoded& enc, size_t sentence,
                                                   const std::vector<std::vector<float>>& probs,
                                                   const std::string& aggregation) const;

  data::ConllFormat format_;
  std::string scheme_ = "none";         // iob2 | bioes | none, resolved from the training tags
  std::string unknown_tags_ = "error";  // gold tags outside the tagset: error | wrong
  bool entities_ = false;
  int64_t max_length_ = 256, batch_tokens_ = 4096, fallback_tag_ = 0;
  std::vector<std::string> tags_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::shared_ptr<models::TransformerTagger> model_;
  std::string dev_source_ = "dev", test_source_ = "test";  // file names for messages
  std::vector<data::TaggedSentence> train_, dev_, test_;
  TagEncoded train_enc_, dev_enc_;
  Tensor class_weight_;  // [K] loss weights (train.class_weights), or undefined
};

// Hugging Face's entity grouping over words (tag, score, character span): consecutive words of one
// type form a group unless a word starts a new entity (B- or S-); O words end groups and are
// dropped. The group's score is the mean of its words'; `text` gives the group's word.
nlohmann::json group_entities(const std::string& text, const std::vector<data::WordSpan>& words,
                              const std::vector<std::string>& tags,
                              const std::vector<float>& scores);

}  // namespace gaze::tasks
