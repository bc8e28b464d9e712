#include "gaze/tasks/classify_predictor.h"

#include <algorithm>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/explain/capture.h"
#include "gaze/ops/softmax.h"
#include "gaze/tasks/embed_predictor.h"
#include "gaze/tasks/task.h"
#include "gaze/text/utf8.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kLabelsFile = "labels.json";

// What task.json keeps of the run.
config::Fields saved_fields(DataConfig& d, int64_t& batch_tokens) {
  return config::join(config::select(config_fields(d, TaskKind::classify),
                                     {"format", "text_column", "label_column", "max_length"}),
                      {config::field("batch_tokens", batch_tokens, 1)});
}
}  // namespace

ClassifyPredictor::ClassifyPredictor(std::shared_ptr<text::Tokenizer> tokenizer,
                                     std::vector<std::string> labels,
                                     std::shared_ptr<models::TransformerClassifier> model,
                                     const DataConfig& data, int64_t batch_tokens)
    : tokenizer_(std::move(tokenizer)),
      labels_(std::move(labels)),
      model_(std::move(model)),
      data_(data),
      batch_tokens_(batch_tokens) {}

std::unique_ptr<ClassifyPredictor> ClassifyPredictor::load(const std::string& dir) {
  DataConfig data;
  int64_t batch_tokens = 4096;
  read_task_file(dir, TaskKind::classify, saved_fields(data, batch_tokens));
  std::vector<std::string> names = read_names(dir, kLabelsFile, "labels");
  auto model = models::load_classifier(dir);
  GAZE_CHECK(model->config.num_classes == static_cast<int64_t>(names.size()), DataError,
             "{}: the model has {} classes but labels.json lists {}", dir,
             model->config.num_classes, names.size());
  model->eval();
  return std::make_unique<ClassifyPredictor>(text::load_tokenizer(dir), std::move(names),
                                             std::move(model), data, batch_tokens);
}

void ClassifyPredictor::save(const std::string& dir) const {
  tokenizer_->save(dir);
  write_json_file((fs::path(dir) / kLabelsFile).string(), labels_);
  DataConfig d = data_;
  int64_t batch_tokens = batch_tokens_;
  write_task_file(dir, TaskKind::classify, saved_fields(d, batch_tokens));
}

void ClassifyPredictor::set_data(const DataConfig& data, int64_t batch_tokens) {
  data_ = data;
  batch_tokens_ = batch_tokens;
}

Encoded ClassifyPredictor::encode(const std::vector<data::LabeledText>& ex,
                                  const std::string& source, bool labelled) const {
  Encoded enc;
  const bool chars = model_->backbone->max_word_chars() > 0;
  for (const auto& e : ex) {
    bool cut = false;
    std::vector<std::string> surfaces;
    std::vector<int64_t> ids = token_ids(e.text, &cut, chars ? &surfaces : nullptr);
    enc.truncated += cut;
    enc.ids.push_back(std::move(ids));
    enc.surfaces.push_back(std::move(surfaces));
    if (!labelled) {
      enc.labels.push_back(-1);
      continue;
    }
    auto it = std::find(labels_.begin(), labels_.end(), e.label);
    GAZE_CHECK(it != labels_.end(), DataError,
               "{}:{}: label '{}' is not one the model was trained on ({})", source, e.line,
               e.label, fmt::join(labels_, ", "));
    enc.labels.push_back(it - labels_.begin());
  }
  return enc;
}

std::vector<int64_t> ClassifyPredictor::token_ids(const std::string& raw, bool* cut,
                                                  std::vector<std::string>* surfaces) const {
  bool clipped = false;
  const std::string_view text = text::clip_for_tokens(raw, data_.max_length, &clipped);
  std::vector<int64_t> ids = tokenizer_->encode(text);
  if (surfaces) *surfaces = tokenizer_->surfaces(text);
  if (ids.empty()) ids.push_back(tokenizer_->unk_id());  // e.g. only characters it drops
  bool framed_cut = false;
  ids = frame(*tokenizer_, std::move(ids), data_.max_length, &framed_cut, surfaces);
  *cut = clipped || framed_cut;
  return ids;
}

InputSize ClassifyPredictor::input_size(const std::string& text) const {
  InputSize size;
  size.tokens = std::ssize(token_ids(text, &size.cut, nullptr));
  return size;
}

json ClassifyPredictor::describe_task() const {
  return {{"labels", labels_}};
}

models::Inputs ClassifyPredictor::batch(const Encoded& enc,
                                        const std::vector<int64_t>& batch) const {
  return make_inputs(enc.ids, enc.surfaces, batch, tokenizer_->pad_id(),
                     model_->backbone->max_word_chars());
}

std::vector<std::vector<float>> ClassifyPredictor::probabilities(const Encoded& enc) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& ids : enc.ids) lengths.push_back(static_cast<int64_t>(ids.size()));
  const auto C = static_cast<int64_t>(labels_.size());
  std::vector<std::vector<float>> out(enc.ids.size());
  for (const auto& b : token_batches(lengths, batch_tokens_)) {
    const Tensor p = softmax(model_->forward(batch(enc, b)), -1);
    for (size_t i = 0; i < b.size(); ++i) {
      const float* row = p.data<float>() + static_cast<int64_t>(i) * C;
      out[static_cast<size_t>(b[i])].assign(row, row + C);
    }
  }
  return out;
}

std::vector<std::string> ClassifyPredictor::read_inputs(const std::string& path) const {
  std::vector<std::string> texts;
  for (auto& e : data::read_texts(path, {data_.format, data_.text_column, data_.label_column}))
    texts.push_back(std::move(e.text));
  return texts;
}

std::vector<json> ClassifyPredictor::predict_texts(const std::vector<std::string>& texts,
                                                   const PredictOptions& o) {
  std::vector<data::LabeledText> ex;
  for (const auto& t : texts) ex.push_back({t, "", 0});
  const auto probs = probabilities(encode(ex, "input", false));
  const auto k =
      static_cast<size_t>(std::clamp<int64_t>(o.top_k, 1, static_cast<int64_t>(labels_.size())));
  std::vector<json> out;
  for (const auto& p : probs) {
    std::vector<size_t> order(p.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return p[a] > p[b]; });
    json top = json::array();
    for (size_t i = 0; i < k; ++i)
      top.push_back({{"label", labels_[order[i]]}, {"score", p[order[i]]}});
    out.push_back(o.top_k > 0 ? top : top[0]);
  }
  return out;
}

std::vector<std::vector<float>> ClassifyPredictor::embed(const std::vector<std::string>& texts) {
  std::vector<data::LabeledText> ex;
  for (const auto& t : texts) ex.push_back({t, "", 0});
  const Encoded enc = encode(ex, "input", false);
  EvalScope eval(*model_);
  return batched_features(enc.ids, enc.surfaces, tokenizer_->pad_id(),
                          model_->backbone->max_word_chars(), batch_tokens_,
                          [&](const models::Inputs& in) { return model_->features(in); });
}

explain::Explanation ClassifyPredictor::explain(const std::string& text, const ExplainOptions& o) {
  explain::Explanation e = begin_explanation(kind(), text);
  EvalScope eval(*model_);
  const Encoded enc = encode({{text, "", 0}}, "input", false);
  e.truncated = enc.truncated > 0;
  e.architecture = "transformer";
  e.tokens = pieces(*tokenizer_, enc.ids[0]);
  e.token_ids = enc.ids[0];
  Tensor pooling_attention;
  e.blocks = {
      explain::capture(*model_, batch(enc, {0}), {o.layers, o.heads}, nullptr, &pooling_attention)};
  if (pooling_attention.defined()) e.pooling_attention = pooling_attention.to_vector<float>();
  PredictOptions p;
  p.top_k = std::min<int64_t>(5, static_cast<int64_t>(labels_.size()));
  e.prediction = predict({text}, p)[0];
  e.pooling = model_->config.pooling;
  explain::finish(e);
  return e;
}

}  // namespace gaze::tasks
