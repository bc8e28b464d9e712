#include "gaze/models/model.h"

#include "gaze/core/enums.h"
#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/config.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/nn/init.h"
#include "gaze/ops/lowp.h"

namespace gaze::models {
namespace {

// config.json's "model_type": which class a model folder holds.
enum class ModelType {
  transformer_classifier,
  transformer_tagger,
  transformer_seq2seq,
  rnn_seq2seq,
  sentence_encoder
};
GAZE_ENUM_NAMES(ModelType, {ModelType::transformer_classifier, "transformer_classifier"},
                {ModelType::transformer_tagger, "transformer_tagger"},
                {ModelType::transformer_seq2seq, "transformer_seq2seq"},
                {ModelType::rnn_seq2seq, "rnn_seq2seq"},
                {ModelType::sentence_encoder, "sentence_encoder"})

ModelType model_type(const std::string& json) {
  const std::string type = config::model_type(json);
  const auto t = enum_from_name<ModelType>(type);
  GAZE_CHECK(t.has_value(), DataError, "config: unknown model_type '{}'; known: {}", type,
             fmt::join(enum_name_list<ModelType>(), ", "));
  return *t;
}

io::Checkpoint read_folder(const std::string& dir) {
  io::Checkpoint ck = io::load_checkpoint(dir);
  GAZE_CHECK(!ck.config_json.empty(), DataError,
             "{}: missing config.json (the model's configuration)", dir);
  return ck;
}

template <class M>
std::shared_ptr<M> with_weights(std::shared_ptr<M> m, io::Checkpoint&& ck, const std::string& dir) {
  try {
    m->load_state_dict(ck.model, /*strict=*/true, /*assign=*/true);  // ck is not kept
  } catch (const ValueError& e) {
    throw DataError(
        fmt::format("{}: the weights do not fit the model in config.json: {}", dir, e.what()));
  }
  if (!ck.lowp.empty()) {
    // A quantized folder: its matrices multiply in the precision they were saved in.
    const NamedTensors params = m->named_parameters();
    for (auto& [name, q] : ck.lowp) {
      const Tensor p = find(params, name);
      GAZE_CHECK(p.defined(), DataError, "{}: quantized tensor '{}' is not a parameter", dir, name);
      set_weight_lowp(p, q);
    }
  }
  return m;
}

// Builds the model config.json describes, without random initial weights (the checkpoint's
// replace every one: loading is strict); its errors (bad values, sizes that do not fit together)
// name the file.
template <class F>
auto build_from(const std::string& dir, F&& build) {
  try {
    nn::init::SkipRandomInitGuard weights_come_from_the_checkpoint;
    return build();
  } catch (const Error& e) {
    if (dynamic_cast<const StateError*>(&e)) throw;
    throw DataError(fmt::format("{}/config.json: {}", dir, e.what()));
  }
}

[[noreturn]] void wrong_kind(const std::string& dir, const std::string& json, const char* wanted) {
  throw DataError(
      fmt::format("{}: the model is a {}, not {}", dir, config::model_type(json), wanted));
}

// A model folder that must hold an M (config.json's model_type is `type`).
template <class M>
std::shared_ptr<M> load_as(const std::string& dir, ModelType type, const char* what) {
  io::Checkpoint ck = read_folder(dir);
  if (build_from(dir, [&] { return model_type(ck.config_json); }) != type)
    wrong_kind(dir, ck.config_json, what);
  return with_weights(
      build_from(dir, [&] { return std::make_shared<M>(M::parse_config(ck.config_json)); }),
      std::move(ck), dir);
}

}  // namespace

std::shared_ptr<Model> build_model(const std::string& json) {
  const ModelType type = model_type(json);
  if (type == ModelType::transformer_classifier)
    return std::make_shared<TransformerClassifier>(TransformerClassifier::parse_config(json));
  if (type == ModelType::transformer_tagger)
    return std::make_shared<TransformerTagger>(TransformerTagger::parse_config(json));
  if (type == ModelType::sentence_encoder)
    return std::make_shared<SentenceEncoder>(SentenceEncoder::parse_config(json));
  return build_seq2seq(json);
}

std::shared_ptr<Seq2SeqModel> build_seq2seq(const std::string& json) {
  switch (model_type(json)) {
    case ModelType::transformer_seq2seq:
      return std::make_shared<TransformerSeq2Seq>(TransformerSeq2Seq::parse_config(json));
    case ModelType::rnn_seq2seq:
      return std::make_shared<RnnSeq2Seq>(RnnSeq2Seq::parse_config(json));
    default:
      throw DataError(fmt::format("config: model_type '{}' is not an encoder-decoder",
                                  config::model_type(json)));
  }
}

std::shared_ptr<Model> load_model(const std::string& dir) {
  io::Checkpoint ck = read_folder(dir);
  return with_weights(build_from(dir, [&] { return build_model(ck.config_json); }), std::move(ck),
                      dir);
}

std::shared_ptr<TransformerClassifier> load_classifier(const std::string& dir) {
  return load_as<TransformerClassifier>(dir, ModelType::transformer_classifier, "a classifier");
}

std::shared_ptr<TransformerTagger> load_tagger(const std::string& dir) {
  return load_as<TransformerTagger>(dir, ModelType::transformer_tagger, "a tagger");
}

std::shared_ptr<SentenceEncoder> load_sentence_encoder(const std::string& dir) {
  return load_as<SentenceEncoder>(dir, ModelType::sentence_encoder, "a sentence encoder");
}

std::shared_ptr<Seq2SeqModel> load_seq2seq(const std::string& dir) {
  io::Checkpoint ck = read_folder(dir);
  const ModelType t = build_from(dir, [&] { return model_type(ck.config_json); });
  if (t != ModelType::transformer_seq2seq && t != ModelType::rnn_seq2seq)
    wrong_kind(dir, ck.config_json, "an encoder-decoder");
  return with_weights(build_from(dir, [&] { return build_seq2seq(ck.config_json); }), std::move(ck),
                      dir);
}

}  // namespace gaze::models
