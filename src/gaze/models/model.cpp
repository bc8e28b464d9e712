#include "gaze/models/model.h"

#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/io/config.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"

namespace gaze::models {

std::shared_ptr<Model> build_model(const std::string& json) {
  const std::string type = config::model_type(json);
  if (type == "transformer_classifier")
    return std::make_shared<TransformerClassifier>(TransformerClassifier::parse_config(json));
  if (type == "transformer_tagger")
    return std::make_shared<TransformerTagger>(TransformerTagger::parse_config(json));
  if (type == "transformer_seq2seq")
    return std::make_shared<TransformerSeq2Seq>(TransformerSeq2Seq::parse_config(json));
  if (type == "rnn_seq2seq") return std::make_shared<RnnSeq2Seq>(RnnSeq2Seq::parse_config(json));
  throw DataError(fmt::format(
      "config: unknown model_type '{}'; known: transformer_classifier, transformer_tagger, "
      "transformer_seq2seq, rnn_seq2seq",
      type));
}

std::shared_ptr<Model> load_model(const std::string& dir) {
  const io::Checkpoint ck = io::load_checkpoint(dir);
  GAZE_CHECK(!ck.config_json.empty(), DataError,
             "{}: missing config.json (the model's configuration)", dir);
  std::shared_ptr<Model> m = build_model(ck.config_json);
  try {
    m->load_state_dict(ck.model);
  } catch (const ValueError& e) {
    throw DataError(
        fmt::format("{}: the weights do not fit the model in config.json: {}", dir, e.what()));
  }
  return m;
}

}  // namespace gaze::models
