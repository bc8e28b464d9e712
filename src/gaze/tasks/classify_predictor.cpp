#include "gaze/tasks/classify_predictor.h"

#include <algorithm>
#include <filesystem>

#include <fmt/ranges.h>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/explain/aggregate.h"
#include "gaze/explain/attribution.h"
#include "gaze/explain/capture.h"
#include "gaze/ops/shape_ops.h"
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
  return config::join(
      config::select(config_fields(d, TaskKind::classify),
                     {"format", "text_column", "label_column", "label_names", "max_length"}),
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

explain::Explanation ClassifyPredictor::explain_input(const std::string& text,
                                                      const ExplainOptions& o) {
  explain::Explanation e = begin_explanation(kind(), text, o);
  EvalScope eval(*model_);
  const Encoded enc = encode({{text, "", 0}}, "input", false);
  e.truncated = enc.truncated > 0;
  e.architecture = "transformer";
  e.tokens = pieces(*tokenizer_, enc.ids[0]);
  e.framing = framing(*tokenizer_, enc.ids[0]);
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
  if (o.method != explain::Method::attention || o.faithfulness) attribute(e, enc, o);
  return e;
}

void ClassifyPredictor::attribute(explain::Explanation& e, const Encoded& enc,
                                  const ExplainOptions& o) {
  using explain::Method;
  EvalScope eval(*model_);
  const models::Inputs one = batch(enc, {0});
  // The class explained: the predicted one (the first of e.prediction's top labels) unless
  // --target names another.
  const std::string label =
      o.target.empty() ? e.prediction.at(0).at("label").get<std::string>() : o.target;
  const auto at = std::find(labels_.begin(), labels_.end(), label);
  GAZE_CHECK(at != labels_.end(), DataError,
             "explain: target '{}' is not a label of this model ({})", label,
             fmt::join(labels_, ", "));
  const int64_t target = at - labels_.begin();
  e.explained_output = fmt::format("p({})", labels_[size_t(target)]);
  explain::Objective f;
  {
    NoGradGuard no_grad;
    f.embeddings = model_->backbone->lookup(one.tokens).detach();
  }
  f.output = [&](const Tensor& x, nn::AttentionCapture* capture) {
    models::Inputs in = models::repeat(one, x.size(0));
    in.token_embeddings = x;
    return select(softmax(model_->forward(in, capture), -1), 1, target);
  };
  const bool all = o.method == Method::all;
  // The attention-based rankings first, as the baselines the gradient methods are judged against.
  if (const explain::AttentionBlock* b = e.block(explain::Stack::encoder);
      b && !b->weights.empty()) {
    e.attributions.push_back(
        {"attention", explain::token_importance(explain::mean_heads(b->weights.back()), *e.pooling,
                                                e.pooling_attention)});
    e.attributions.push_back({"rollout", e.importance});
  } else if (!e.pooling_attention.empty()) {
    e.attributions.push_back({"attention", e.pooling_attention});
  }
  add_gradient_attributions(e, f, o, tokenizer_->unk_id(),
                            [&](const Tensor& ids) { return model_->backbone->lookup(ids); });
  if ((all || o.method == Method::attention_x_gradient) && model_->backbone->num_heads() > 0) {
    e.attributions.push_back(explain::attention_x_gradient(f, {o.layers, o.heads}));
    // Its matrices give the gradient-weighted rollout for free.
    const std::vector<float> r = explain::token_importance(
        explain::gradient_rollout(e.attributions.back().per_head), *e.pooling, e.pooling_attention);
    e.attributions.push_back({"gradient_rollout", r});
  }
  for (const auto& p : model_->parameters()) p.zero_grad();  // gradients were a means, not a step

  if (!all && !o.faithfulness) return;
  const std::vector<bool>& fixed = e.framing;  // never removed nor ranked
  // The tokens as written, when the model reads their characters (then one per id).
  const bool chars = !enc.surfaces.empty() && enc.surfaces[0].size() == enc.ids[0].size();
  const explain::KeepEvaluator evaluate = [&](const std::vector<std::vector<bool>>& keep) {
    Encoded variants;
    for (const auto& k : keep) {
      std::vector<int64_t> ids;
      std::vector<std::string> surfaces;
      for (size_t t = 0; t < k.size(); ++t)
        if (k[t]) {
          ids.push_back(enc.ids[0][t]);
          if (chars) surfaces.push_back(enc.surfaces[0][t]);
        }
      if (ids.empty()) {  // nothing left: the model reads one unknown token
        ids.push_back(tokenizer_->unk_id());
        if (chars) surfaces.emplace_back();
      }
      variants.ids.push_back(std::move(ids));
      if (chars) variants.surfaces.push_back(std::move(surfaces));
    }
    std::vector<double> out;
    for (const auto& p : probabilities(variants)) out.push_back(p[size_t(target)]);
    return out;
  };
  for (const auto& a : e.attributions)
    e.faithfulness.push_back(explain::faithfulness(a.method, a.scores, fixed, evaluate));
  e.faithfulness.push_back(explain::random_faithfulness(fixed, evaluate));
}

}  // namespace gaze::tasks
