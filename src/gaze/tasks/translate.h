// Translation (and other sequence-to-sequence tasks such as spelling -> phonemes): sentence pairs
// -> source and target tokenizers (shared or separate) -> a Seq2SeqModel (Transformer or RNN with
// attention) trained with teacher forcing -> decoded by TranslatePredictor and scored by BLEU,
// chrF and error rates. Sources that occur several times are decoded once and scored against all
// their targets.
#pragma once

#include <memory>

#include "gaze/tasks/task.h"
#include "gaze/tasks/translate_predictor.h"
#include "gaze/tasks/translate_report.h"

namespace gaze::tasks {

struct TranslateSplits;  // the run's pairs, as read

class TranslateTask : public Task {
 public:
  static std::unique_ptr<TranslateTask> create(const RunConfig& config, std::FILE* log);
  static std::unique_ptr<TranslateTask> load(const std::string& dir);
  static std::unique_ptr<TranslateTask> resume(const RunConfig& config, const std::string& dir,
                                               std::FILE* log);

  TaskKind kind() const override { return TaskKind::translate; }
  TranslatePredictor& predictor() override { return *p_; }
  models::Model& model() override { return p_->model(); }
  std::vector<int64_t> train_lengths() const override;
  BatchLoss loss(const std::vector<int64_t>& batch, double label_smoothing) override;
  // {"bleu", "chrf", "wer", "per", "loss"} on the dev set, decoded with the run's decode options.
  std::string validate_part(int64_t part, int64_t parts) override;
  std::map<std::string, double> validate_merge(const std::vector<std::string>& parts) override;
  void save_assets(const std::string& dir) const override { p_->save(dir); }
  std::optional<Report> test_report() override;
  EvalOptions eval_defaults() const override;
  Report evaluate_file(const std::string& path, const EvalOptions& options) override;
  std::vector<std::string> training_inputs(const RunConfig& c) override;

 private:
  explicit TranslateTask(std::unique_ptr<TranslatePredictor> p) : p_(std::move(p)) {}
  // Keeps dev and test, encodes train and dev.
  void use_data(const RunConfig& c, TranslateSplits&& splits, std::FILE* log);
  // Teacher-forced logits [B, T, V] of target inputs (BOS + ids) for a batch of pairs.
  Tensor logits(const PairEncoded& enc, const std::vector<int64_t>& batch, Tensor* target,
                int64_t* tokens) const;
  // The summed token NLL of encoded pairs and the number of target tokens.
  std::pair<double, int64_t> loss_sum(const PairEncoded& enc);
  // The report of sentence pairs with each distinct source's translation (Report::predictions).
  Report report_with_predictions(const std::vector<data::SentencePair>& pairs,
                                 const decode::SearchOptions& search);

  std::vector<data::SentencePair> dev_, test_;
  DistinctSources dev_sources_;
  PairEncoded train_enc_, dev_enc_;
  std::unique_ptr<TranslatePredictor> p_;
};

// Reads a run's parallel file: two aligned files when `target` is set, else columns of `path`.
std::vector<data::SentencePair> read_pairs(const std::string& path, const std::string& target,
                                           const DataConfig& data);

}  // namespace gaze::tasks
