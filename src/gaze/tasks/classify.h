// Text classification: labelled texts -> tokenizer -> TransformerClassifier -> cross-entropy, with
// accuracy / macro-F1 validation and a scikit-learn-style report. Inference is ClassifyPredictor's.
#pragma once

#include <memory>

#include "gaze/metrics/classification.h"
#include "gaze/tasks/classify_predictor.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {

struct ClassifySplits;  // the run's examples, as read

class ClassifyTask : public Task {
 public:
  // A new run: reads the data, builds the tokenizer (training it if needed), the label set and a
  // freshly initialised model. Notes (sizes, truncations) go to `log`.
  static std::unique_ptr<ClassifyTask> create(const RunConfig& config, std::FILE* log);
  // A trained model folder (a run's best/ or last/).
  static std::unique_ptr<ClassifyTask> load(const std::string& dir);
  // For --resume: the run's data with the model, tokenizer and labels of the checkpoint.
  static std::unique_ptr<ClassifyTask> resume(const RunConfig& config, const std::string& dir,
                                              std::FILE* log);

  TaskKind kind() const override { return TaskKind::classify; }
  ClassifyPredictor& predictor() override { return *p_; }
  models::Model& model() override { return p_->model(); }
  std::vector<int64_t> train_lengths() const override;
  BatchLoss loss(const std::vector<int64_t>& batch, double label_smoothing) override;
  // {"accuracy", "macro_f1", "loss"} on the dev set.
  std::string validate_part(int64_t part, int64_t parts) override;
  std::map<std::string, double> validate_merge(const std::vector<std::string>& parts) override;
  void save_assets(const std::string& dir) const override { p_->save(dir); }
  std::optional<Report> test_report() override;
  EvalOptions eval_defaults() const override;
  Report evaluate_file(const std::string& path, const EvalOptions& options) override;
  Report evaluate_split(const RunConfig& c, data::Split split, const EvalOptions& options) override;
  std::vector<std::string> training_inputs(const RunConfig& c) override;

  // Metrics on encoded labelled examples (mean_loss: their mean negative log-likelihood).
  metrics::ClassificationReport evaluate(const Encoded& enc, double* mean_loss = nullptr);

  // The predicted class and the negative log-likelihood of the gold one, per example.
  struct Scored {
    std::vector<int64_t> predicted;
    std::vector<double> nll;
  };
  Scored score(const Encoded& enc);
  // The report of labelled examples with each one's prediction (Report::predictions).
  Report report_with_predictions(const std::vector<data::LabeledText>& examples,
                                 const std::string& source);

 private:
  explicit ClassifyTask(std::unique_ptr<ClassifyPredictor> p) : p_(std::move(p)) {}
  // Keeps the test examples, encodes train and dev, sets the loss weights.
  void use_data(const RunConfig& c, ClassifySplits&& splits, std::FILE* log);

  std::unique_ptr<ClassifyPredictor> p_;
  std::string test_source_ = "test";  // file name for messages
  std::vector<data::LabeledText> test_;
  Encoded train_enc_, dev_enc_;
  Tensor class_weight_;  // [C] loss weights (train.class_weights), or undefined
};

}  // namespace gaze::tasks
