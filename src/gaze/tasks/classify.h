// Text classification: labelled texts -> tokenizer -> TransformerClassifier -> cross-entropy, with
// accuracy / macro-F1 validation, a scikit-learn-style report and top-k predictions. A model
// folder (config.json, weights, tokenizer, labels.json, task.json) holds everything to reload it.
#pragma once

#include <iosfwd>
#include <memory>

#include "gaze/data/classification.h"
#include "gaze/metrics/classification.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/task.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

struct Encoded {
  std::vector<std::vector<int64_t>> ids;
  std::vector<int64_t> labels;  // indices into the task's labels; -1 when unlabelled
  int64_t truncated = 0;        // texts cut to max_length
};

struct Prediction {
  std::vector<std::pair<std::string, double>> top;  // (label, probability), best first
};

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

  models::Model& model() override { return *model_; }
  std::vector<int64_t> train_lengths() const override;
  Tensor loss(const std::vector<int64_t>& batch, double label_smoothing, int64_t* tokens) override;
  std::map<std::string, double> validate() override;
  void save_assets(const std::string& dir) const override;
  std::string name() const override { return "classify"; }
  std::optional<Report> test_report() override;
  Report evaluate_file(const std::string& path, const EvalOptions& options) override;
  std::vector<std::string> read_inputs(const std::string& path) const override;
  // {"label", "score"}, or with top_k a list of the k best, as Hugging Face's pipeline.
  std::vector<nlohmann::json> predict(const std::vector<std::string>& texts,
                                      const PredictOptions& options) override;
  explain::Explanation explain(const std::string& text, const ExplainOptions& options) override;

  // Metrics on labelled examples (labels must be known to the model).
  metrics::ClassificationReport evaluate(const std::vector<data::LabeledText>& examples,
                                         const std::string& source, double* mean_loss = nullptr);
  std::vector<Prediction> predict_labels(const std::vector<std::string>& texts, int64_t top_k);
  // Whole-run helpers for the CLI.
  const std::vector<data::LabeledText>& test_examples() const { return test_; }
  const std::vector<std::string>& labels() const { return labels_; }
  const data::ClassificationFormat& format() const { return format_; }
  const text::Tokenizer& tokenizer() const { return *tokenizer_; }

 private:
  // The report of examples already encoded (validation reuses the dev encoding).
  metrics::ClassificationReport evaluate(const Encoded& enc, double* mean_loss);
  ClassifyTask() = default;
  void read_data(const RunConfig& c, std::FILE* log);
  // Encodes the training and dev examples and sets the loss weights (train.class_weights).
  void encode_data(const RunConfig& c);
  Encoded encode(const std::vector<data::LabeledText>& ex, const std::string& source,
                 bool labelled) const;
  // Padded token ids [B, T] and lengths [B] of the examples `batch` of `enc`.
  std::pair<Tensor, Tensor> batch_tensors(const Encoded& enc,
                                          const std::vector<int64_t>& batch) const;
  // Class probabilities [N, C] of encoded texts, in batches, without autograd.
  std::vector<std::vector<float>> probabilities(const Encoded& enc);

  data::ClassificationFormat format_;
  int64_t max_length_ = 256, batch_tokens_ = 4096;
  std::vector<std::string> labels_;
  std::unique_ptr<text::Tokenizer> tokenizer_;
  std::shared_ptr<models::TransformerClassifier> model_;
  std::string dev_source_ = "dev", test_source_ = "test";  // file names for messages
  std::vector<data::LabeledText> train_, dev_, test_;
  Encoded train_enc_, dev_enc_;
  Tensor class_weight_;  // [C] loss weights (train.class_weights), or undefined
};

}  // namespace gaze::tasks
