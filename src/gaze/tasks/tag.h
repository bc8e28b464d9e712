// Sequence tagging (named entities, part of speech): CoNLL sentences -> subword tokenizer ->
// TransformerTagger trained on each word's first piece -> entity-level (seqeval) or token-level
// validation and reports. Inference is TagPredictor's.
#pragma once

#include <memory>

#include "gaze/metrics/entities.h"
#include "gaze/tasks/tag_predictor.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {

// The scheme of a tagset: as configured (checked; DataError naming `source`), or detected (BIOES
// when any tag starts with E- or S-, IOB2 for other entity tagsets, none otherwise).
TagScheme resolve_scheme(TagScheme configured, const std::vector<std::string>& tags,
                         const std::string& source);

struct TagSplits;  // the run's sentences, as read

class TagTask : public Task {
 public:
  static std::unique_ptr<TagTask> create(const RunConfig& config, std::FILE* log);
  static std::unique_ptr<TagTask> load(const std::string& dir);
  static std::unique_ptr<TagTask> resume(const RunConfig& config, const std::string& dir,
                                         std::FILE* log);

  TaskKind kind() const override { return TaskKind::tag; }
  TagPredictor& predictor() override { return *p_; }
  models::Model& model() override { return p_->model(); }
  std::vector<int64_t> train_lengths() const override;
  BatchLoss loss(const std::vector<int64_t>& batch, double label_smoothing) override;
  // {"f1" (entity micro F1, entity tagsets only), "accuracy" (tokens), "loss"}
  std::string validate_part(int64_t part, int64_t parts) override;
  std::map<std::string, double> validate_merge(const std::vector<std::string>& parts) override;
  void save_assets(const std::string& dir) const override { p_->save(dir); }
  std::optional<Report> test_report() override;
  EvalOptions eval_defaults() const override;
  Report evaluate_file(const std::string& path, const EvalOptions& options) override;
  std::vector<std::string> training_inputs(const RunConfig& c) override;

  // The report of sentences encoded as `enc` (mean_loss: the mean NLL of their known tags).
  metrics::TaggingReport evaluate(const std::vector<data::TaggedSentence>& sentences,
                                  const TagEncoded& enc, const std::string& source,
                                  double* mean_loss = nullptr);

  // Per sentence: the predicted tags, the summed NLL of its known gold tags and their count; a
  // CRF's NLL and words in total.
  struct Scored {
    std::vector<std::vector<std::string>> predicted;
    std::vector<double> nll;
    std::vector<int64_t> known;
    bool crf = false;
    double crf_nll = 0;
    int64_t crf_words = 0;
    double mean_loss() const;
  };
  Scored score(const TagEncoded& enc);
  // The report of tagged sentences with each one's predicted tags (Report::predictions).
  Report report_with_predictions(const std::vector<data::TaggedSentence>& sentences,
                                 const std::string& source);

 private:
  explicit TagTask(std::unique_ptr<TagPredictor> p) : p_(std::move(p)) {}
  // Encodes train and dev, keeps dev and test, sets the loss weights.
  void use_data(const RunConfig& c, TagSplits&& splits, std::FILE* log);

  std::unique_ptr<TagPredictor> p_;
  std::string dev_source_ = "dev", test_source_ = "test";  // file names for messages
  std::vector<data::TaggedSentence> dev_, test_;
  TagEncoded train_enc_, dev_enc_;
  Tensor class_weight_;  // [K] loss weights (train.class_weights), or undefined
};

}  // namespace gaze::tasks
