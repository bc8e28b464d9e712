// Classification inference: texts -> token ids (cut to max_length) -> batches by tokens -> class
// probabilities -> {"label", "score"} (top-k lists as Hugging Face's pipeline), and explanations.
// A model folder holds the tokenizer, labels.json, task.json, config.json and the weights.
#pragma once

#include <memory>

#include "gaze/data/classification.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/predictor.h"

namespace gaze::tasks {

struct Encoded {
  std::vector<std::vector<int64_t>> ids;
  std::vector<std::vector<std::string>>
      surfaces;                 // each token as written, for models reading chars
  std::vector<int64_t> labels;  // indices into the labels; -1 when unlabelled
  int64_t truncated = 0;        // texts cut to max_length
};

class ClassifyPredictor : public Predictor {
 public:
  ClassifyPredictor(std::shared_ptr<text::Tokenizer> tokenizer, std::vector<std::string> labels,
                    std::shared_ptr<models::TransformerClassifier> model, const DataConfig& data,
                    int64_t batch_tokens);
  static std::unique_ptr<ClassifyPredictor> load(const std::string& dir);
  // The model folder's files besides config.json and the weights.
  void save(const std::string& dir) const;

  TaskKind kind() const override { return TaskKind::classify; }
  std::vector<std::string> read_inputs(const std::string& path) const override;
  std::vector<nlohmann::json> predict_texts(const std::vector<std::string>& texts,
                                            const PredictOptions& options) override;
  // The pooled features the head reads.
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override;
  InputSize input_size(const std::string& text) const override;
  int64_t max_length() const override { return data_.max_length; }

  // Labelled examples must have labels the model knows (DataError naming source:line otherwise).
  Encoded encode(const std::vector<data::LabeledText>& examples, const std::string& source,
                 bool labelled) const;
  // The model inputs of the examples `batch` of `enc`.
  models::Inputs batch(const Encoded& enc, const std::vector<int64_t>& batch) const;
  // Class probabilities [N][C] of encoded texts, in batches, without autograd.
  std::vector<std::vector<float>> probabilities(const Encoded& enc);

  // The data settings of the run (format, columns, max_length) and its batch size in tokens.
  const DataConfig& data() const { return data_; }
  void set_data(const DataConfig& data, int64_t batch_tokens);
  int64_t batch_tokens() const { return batch_tokens_; }
  const std::vector<std::string>& labels() const { return labels_; }
  models::TransformerClassifier& model() { return *model_; }
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
  // The attributions and faithfulness curves options asks for, added to e (explain's second half).
  void attribute(explain::Explanation& e, const Encoded& enc, const ExplainOptions& options);
  // The ids the model reads of a text (framed, cut to max_length: *cut says whether it was) and,
  // when `surfaces` is given, the tokens as written.
  std::vector<int64_t> token_ids(const std::string& text, bool* cut,
                                 std::vector<std::string>* surfaces) const;

  std::shared_ptr<text::Tokenizer> tokenizer_;
  std::vector<std::string> labels_;
  std::shared_ptr<models::TransformerClassifier> model_;
  DataConfig data_;
  int64_t batch_tokens_ = 4096;
};

}  // namespace gaze::tasks
