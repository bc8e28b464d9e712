// The models gaze trains: each is an nn::Module with a typed configuration that serialises to the
// checkpoint's config.json, so a model can be rebuilt from its checkpoint alone.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gaze/nn/module.h"

namespace gaze::models {

class Model : public nn::Module {
 public:
  using Module::Module;
  // The configuration as JSON, with "model_type" naming the class.
  virtual std::string config_json() const = 0;
};

class Seq2SeqModel;
class TransformerClassifier;
class TransformerTagger;
class SentenceEncoder;

// Builds a freshly initialised model from a configuration (as written by config_json()).
std::shared_ptr<Model> build_model(const std::string& config_json);
std::shared_ptr<Seq2SeqModel> build_seq2seq(const std::string& config_json);
// Builds the model described by dir/config.json and loads dir/model.safetensors into it (strict).
std::shared_ptr<Model> load_model(const std::string& dir);
// The same, for a task that needs a model of one family (DataError naming the model otherwise).
std::shared_ptr<TransformerClassifier> load_classifier(const std::string& dir);
std::shared_ptr<TransformerTagger> load_tagger(const std::string& dir);
std::shared_ptr<Seq2SeqModel> load_seq2seq(const std::string& dir);
std::shared_ptr<SentenceEncoder> load_sentence_encoder(const std::string& dir);

// [B, T] bool, true past each sequence's length (key padding); undefined if lengths is undefined.
Tensor padding_mask(const Tensor& lengths, int64_t T);

}  // namespace gaze::models
