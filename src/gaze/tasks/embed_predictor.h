// Sentence embeddings: texts -> token ids (cut to max_length) -> batches by tokens -> one vector
// per text from a sentence encoder ({"embedding": [...]} per input for predict), and the attention
// of its encoder for explain. A model folder holds the tokenizer, task.json, config.json and
// weights.
#pragma once

#include <memory>

#include "gaze/models/transformer_models.h"
#include "gaze/tasks/predictor.h"

namespace gaze::tasks {

class EmbedPredictor : public Predictor {
 public:
  EmbedPredictor(std::shared_ptr<text::Tokenizer> tokenizer,
                 std::shared_ptr<models::SentenceEncoder> model, int64_t max_length,
                 int64_t batch_tokens);
  static std::unique_ptr<EmbedPredictor> load(const std::string& dir);
  // Writes the whole model folder (weights, config, tokenizer, task.json) atomically.
  void save(const std::string& dir) const;

  TaskKind kind() const override { return TaskKind::embed; }
  std::vector<nlohmann::json> predict_texts(const std::vector<std::string>& texts,
                                            const PredictOptions& options) override;
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts) override;
  InputSize input_size(const std::string& text) const override;
  int64_t max_length() const override { return max_length_; }

  const text::Tokenizer& tokenizer() const { return *tokenizer_; }
  models::SentenceEncoder& model() { return *model_; }
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
  std::vector<int64_t> ids(const std::string& text, bool* truncated = nullptr) const;

  std::shared_ptr<text::Tokenizer> tokenizer_;
  std::shared_ptr<models::SentenceEncoder> model_;
  int64_t max_length_, batch_tokens_;
};

// The sentence vectors [N][d] of a model's `features` over texts, in batches by tokens without
// autograd (shared by sentence encoders and classifiers).
std::vector<std::vector<float>> batched_features(
    const std::vector<std::vector<int64_t>>& ids,
    const std::vector<std::vector<std::string>>& surfaces, int64_t pad_id, int64_t max_chars,
    int64_t batch_tokens, const std::function<Tensor(const models::Inputs&)>& features);

}  // namespace gaze::tasks
