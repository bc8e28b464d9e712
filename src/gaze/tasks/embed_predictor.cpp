#include "gaze/tasks/embed_predictor.h"

#include "gaze/text/utf8.h"

#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/explain/capture.h"
#include "gaze/io/checkpoint.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {
namespace {
config::Fields saved_fields(int64_t& max_length, int64_t& batch_tokens) {
  return {config::field("max_length", max_length, 1),
          config::field("batch_tokens", batch_tokens, 1)};
}
}  // namespace

std::vector<std::vector<float>> batched_features(
    const std::vector<std::vector<int64_t>>& ids,
    const std::vector<std::vector<std::string>>& surfaces, int64_t pad_id, int64_t max_chars,
    int64_t batch_tokens, const std::function<Tensor(const models::Inputs&)>& features) {
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& s : ids) lengths.push_back(std::max<int64_t>(1, std::ssize(s)));
  std::vector<std::vector<float>> out(ids.size());
  for (const auto& b : token_batches(lengths, batch_tokens)) {
    const Tensor f = features(make_inputs(ids, surfaces, b, pad_id, max_chars));
    const int64_t d = f.size(1);
    for (size_t i = 0; i < b.size(); ++i) {
      const float* row = f.data<float>() + static_cast<int64_t>(i) * d;
      out[static_cast<size_t>(b[i])].assign(row, row + d);
    }
  }
  return out;
}

EmbedPredictor::EmbedPredictor(std::shared_ptr<text::Tokenizer> tokenizer,
                               std::shared_ptr<models::SentenceEncoder> model, int64_t max_length,
                               int64_t batch_tokens)
    : tokenizer_(std::move(tokenizer)),
      model_(std::move(model)),
      max_length_(max_length),
      batch_tokens_(batch_tokens) {}

std::unique_ptr<EmbedPredictor> EmbedPredictor::load(const std::string& dir) {
  int64_t max_length = 128, batch_tokens = 4096;
  read_task_file(dir, TaskKind::embed, saved_fields(max_length, batch_tokens));
  auto model = models::load_sentence_encoder(dir);
  auto tok = text::load_tokenizer(dir);
  GAZE_CHECK(tok->vocab_size() == model->config.vocab_size, DataError,
             "{}: the tokenizer has {} ids but the model's embedding has {} rows", dir,
             tok->vocab_size(), model->config.vocab_size);
  model->eval();
  return std::make_unique<EmbedPredictor>(std::move(tok), std::move(model), max_length,
                                          batch_tokens);
}

void EmbedPredictor::save(const std::string& dir) const {
  io::save_checkpoint(dir, *model_, model_->config_json(), nullptr, [&](const std::string& tmp) {
    tokenizer_->save(tmp);
    int64_t m = max_length_, b = batch_tokens_;
    write_task_file(tmp, TaskKind::embed, saved_fields(m, b));
  });
}

std::vector<int64_t> EmbedPredictor::ids(const std::string& text, bool* truncated) const {
  bool cut = false;
  auto ids = frame(*tokenizer_, tokenizer_->encode(text::clip_for_tokens(text, max_length_, &cut)),
                   max_length_, truncated);
  if (cut && truncated) *truncated = true;
  return ids;
}

InputSize EmbedPredictor::input_size(const std::string& text) const {
  InputSize size;
  size.tokens = std::ssize(ids(text, &size.cut));
  return size;
}

nlohmann::json EmbedPredictor::describe_task() const {
  return {{"dimension", model_->config.d_model}};
}

std::vector<std::vector<float>> EmbedPredictor::embed(const std::vector<std::string>& texts) {
  EvalScope eval(*model_);
  std::vector<std::vector<int64_t>> all;
  for (const auto& t : texts) all.push_back(ids(t));
  // An empty text (no tokens) reads as no tokens at all: its mean is zero, as the package's own
  // runtime gives for an empty sentence before a non-empty one.
  return batched_features(all, {}, tokenizer_->pad_id(), 0, batch_tokens_,
                          [&](const models::Inputs& in) { return model_->forward(in); });
}

std::vector<nlohmann::json> EmbedPredictor::predict_texts(const std::vector<std::string>& texts,
                                                          const PredictOptions&) {
  std::vector<nlohmann::json> out;
  for (auto& v : embed(texts)) out.push_back({{"embedding", std::move(v)}});
  return out;
}

explain::Explanation EmbedPredictor::explain_input(const std::string& text,
                                                   const ExplainOptions& o) {
  explain::Explanation e = begin_explanation(kind(), text, o);
  EvalScope eval(*model_);
  bool truncated = false;
  const std::vector<int64_t> tokens = ids(text, &truncated);
  GAZE_CHECK(!tokens.empty(), DataError, "explain: the input has no tokens");
  e.truncated = truncated;
  e.architecture = "transformer";
  e.tokens = pieces(*tokenizer_, tokens);
  e.framing = framing(*tokenizer_, tokens);
  e.token_ids = tokens;
  const std::vector<std::vector<int64_t>> one = {tokens};
  e.blocks = {explain::capture(*model_, make_inputs(one, {}, {0}, tokenizer_->pad_id(), 0),
                               {o.layers, o.heads})};
  e.prediction = {{"dimensions", model_->backbone->hidden_size()}};
  explain::finish(e);
  return e;
}

}  // namespace gaze::tasks
