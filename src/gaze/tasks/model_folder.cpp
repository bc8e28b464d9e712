#include "gaze/tasks/model_folder.h"

#include <algorithm>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/io/checkpoint.h"
#include "gaze/models/seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/classify_predictor.h"
#include "gaze/tasks/tag.h"
#include "gaze/tasks/tag_predictor.h"
#include "gaze/tasks/translate_predictor.h"

namespace gaze::tasks {
namespace fs = std::filesystem;

namespace {

void check_vocab(const text::Tokenizer& tok, int64_t model_vocab, const char* side) {
  GAZE_CHECK(tok.vocab_size() <= model_vocab, DataError,
             "save_pipeline: the {}tokenizer has {} ids but the model's embedding only {}", side,
             tok.vocab_size(), model_vocab);
}

void check_names(const std::vector<std::string>& names, int64_t outputs, const char* what) {
  GAZE_CHECK(static_cast<int64_t>(names.size()) == outputs, DataError,
             "save_pipeline: the model has {} outputs but {} {} were given", outputs, names.size(),
             what);
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());
  GAZE_CHECK(std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end(), DataError,
             "save_pipeline: the {} must differ from each other", what);
}

}  // namespace

void save_model_folder(const std::shared_ptr<models::Model>& model,
                       const std::shared_ptr<text::Tokenizer>& tokenizer, const std::string& dir,
                       const ModelFolderOptions& o) {
  GAZE_CHECK(model && tokenizer, ValueError, "save_pipeline: a model and a tokenizer are needed");
  GAZE_CHECK(o.max_length >= 1 && o.max_length <= config::kMaxSize && o.batch_tokens >= 1,
             DataError,
             "save_pipeline: max_length must be in [1, {}] and batch_tokens >= 1, got {}",
             config::kMaxSize, o.max_length);
  std::error_code ec;
  GAZE_CHECK(o.overwrite || !fs::exists(dir, ec), DataError,
             "{}: already exists; pass overwrite to replace the model folder there", dir);
  io::check_checkpoint_target(dir);  // even with overwrite, only a gaze model folder is replaced
  DataConfig data;
  data.max_length = o.max_length;
  std::unique_ptr<Predictor> p;
  if (auto c = std::dynamic_pointer_cast<models::TransformerClassifier>(model)) {
    check_vocab(*tokenizer, c->config.vocab_size, "");
    check_names(o.labels, c->config.num_classes, "labels");
    p = std::make_unique<ClassifyPredictor>(tokenizer, o.labels, c, data, o.batch_tokens);
  } else if (auto t = std::dynamic_pointer_cast<models::TransformerTagger>(model)) {
    check_vocab(*tokenizer, t->config.vocab_size, "");
    check_names(o.labels, t->config.num_tags, "tags");
    const TagScheme scheme = resolve_scheme(TagScheme::detect, o.labels, "save_pipeline");
    const auto o_tag = std::find(o.labels.begin(), o.labels.end(), "O");
    p = std::make_unique<TagPredictor>(tokenizer, o.labels, t, scheme,
                                       o_tag == o.labels.end() ? 0 : o_tag - o.labels.begin(), data,
                                       o.batch_tokens);
  } else if (auto s = std::dynamic_pointer_cast<models::Seq2SeqModel>(model)) {
    GAZE_CHECK(o.labels.empty(), DataError,
               "save_pipeline: a translation model has no labels (give target_tokenizer instead)");
    const auto target = o.target_tokenizer ? o.target_tokenizer : tokenizer;
    data.max_target_length = o.max_length;
    p = std::make_unique<TranslatePredictor>(tokenizer, target, s, data, o.batch_tokens,
                                             decode::SearchOptions{});
  } else {
    throw DataError(
        "save_pipeline: the model must be a TransformerClassifier, TransformerTagger or a "
        "sequence-to-sequence model");
  }
  io::save_checkpoint(dir, *model, model->config_json(), nullptr, [&](const std::string& tmp) {
    if (auto* c = dynamic_cast<ClassifyPredictor*>(p.get())) c->save(tmp);
    if (auto* t = dynamic_cast<TagPredictor*>(p.get())) t->save(tmp);
    if (auto* s = dynamic_cast<TranslatePredictor*>(p.get())) s->save(tmp);
  });
}

}  // namespace gaze::tasks
