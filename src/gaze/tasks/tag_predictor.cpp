#include "gaze/tasks/tag_predictor.h"

#include <algorithm>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/explain/capture.h"
#include "gaze/ops/softmax.h"
#include "gaze/tasks/entity_groups.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kTagsFile = "tags.json";

// What task.json keeps of the run (scheme: as resolved from the training tags).
config::Fields saved_fields(DataConfig& d, int64_t& batch_tokens, int64_t& fallback_tag) {
  return config::join(config::select(config_fields(d, TaskKind::tag),
                                     {"token_column", "tag_column", "scheme", "max_length"}),
                      {config::field("batch_tokens", batch_tokens, 1),
                       config::field("fallback_tag", fallback_tag, 0)});
}
}  // namespace

TagPredictor::TagPredictor(std::shared_ptr<text::Tokenizer> tokenizer,
                           std::vector<std::string> tags,
                           std::shared_ptr<models::TransformerTagger> model, TagScheme scheme,
                           int64_t fallback_tag, const DataConfig& data, int64_t batch_tokens)
    : tokenizer_(std::move(tokenizer)),
      tags_(std::move(tags)),
      model_(std::move(model)),
      scheme_(scheme),
      fallback_tag_(fallback_tag),
      data_(data),
      batch_tokens_(batch_tokens) {}

std::unique_ptr<TagPredictor> TagPredictor::load(const std::string& dir) {
  DataConfig data;
  data.scheme = TagScheme::none;
  int64_t batch_tokens = 4096, fallback = 0;
  read_task_file(dir, TaskKind::tag, saved_fields(data, batch_tokens, fallback));
  std::vector<std::string> tags = read_names(dir, kTagsFile, "tags");
  auto model = models::load_tagger(dir);
  GAZE_CHECK(model->config.num_tags == static_cast<int64_t>(tags.size()), DataError,
             "{}: the model has {} tags but {} lists {}", dir, model->config.num_tags, kTagsFile,
             tags.size());
  GAZE_CHECK(fallback < static_cast<int64_t>(tags.size()), DataError,
             "{}: task.json's fallback_tag is out of range", dir);
  GAZE_CHECK(data.scheme != TagScheme::detect, DataError,
             "{}: task.json's scheme must be iob2, bioes or none", dir);
  model->eval();
  return std::make_unique<TagPredictor>(text::load_tokenizer(dir), std::move(tags),
                                        std::move(model), data.scheme, fallback, data,
                                        batch_tokens);
}

void TagPredictor::save(const std::string& dir) const {
  tokenizer_->save(dir);
  write_json_file((fs::path(dir) / kTagsFile).string(), tags_);
  DataConfig d = data_;
  d.scheme = scheme_;
  int64_t batch_tokens = batch_tokens_, fallback = fallback_tag_;
  write_task_file(dir, TaskKind::tag, saved_fields(d, batch_tokens, fallback));
}

void TagPredictor::set_data(const DataConfig& data, int64_t batch_tokens) {
  data_ = data;
  batch_tokens_ = batch_tokens;
}

TagEncoded TagPredictor::encode(const std::vector<data::TaggedSentence>& sentences,
                                const std::string& source, bool labelled) const {
  return encode_words(*tokenizer_, sentences, labelled ? &tags_ : nullptr, data_.max_length,
                      data_.unknown_tags, source);
}

std::vector<std::vector<std::vector<float>>> TagPredictor::probabilities(const TagEncoded& enc) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& ids : enc.ids)
    lengths.push_back(std::max<int64_t>(1, static_cast<int64_t>(ids.size())));
  const auto K = static_cast<int64_t>(tags_.size());
  std::vector<std::vector<std::vector<float>>> out(enc.ids.size());
  const std::vector<int64_t> unk{tokenizer_->unk_id()};
  for (const auto& batch : token_batches(lengths, batch_tokens_)) {
    std::vector<const std::vector<int64_t>*> seqs;
    for (const int64_t i : batch) {
      const auto& ids = enc.ids[static_cast<size_t>(i)];
      seqs.push_back(ids.empty() ? &unk : &ids);
    }
    const auto [ids, lens] = pad_batch(seqs, tokenizer_->pad_id());
    const Tensor p = softmax(model_->forward(ids, lens), -1);
    const int64_t T = ids.size(1);
    for (size_t b = 0; b < batch.size(); ++b) {
      auto& rows = out[static_cast<size_t>(batch[b])];
      for (int64_t t = 0; t < lens.data<int64_t>()[b]; ++t) {
        const float* row = p.data<float>() + (static_cast<int64_t>(b) * T + t) * K;
        rows.emplace_back(row, row + K);
      }
    }
  }
  return out;
}

std::vector<std::pair<int64_t, float>> TagPredictor::word_tags(
    const TagEncoded& enc, size_t s, const std::vector<std::vector<float>>& probs,
    Aggregation aggregation) const {
  return tasks::word_tags(enc.first[s], static_cast<int64_t>(enc.ids[s].size()), probs, aggregation,
                          fallback_tag_);
}

std::vector<json> TagPredictor::predict(const std::vector<std::string>& lines,
                                        const PredictOptions& o) {
  std::vector<std::vector<data::WordSpan>> spans;
  std::vector<data::TaggedSentence> sentences;
  for (const auto& line : lines) {
    spans.push_back(data::split_words(line));
    data::TaggedSentence s;
    for (const auto& w : spans.back()) s.words.push_back(w.word);
    sentences.push_back(std::move(s));
  }
  const TagEncoded enc = encode(sentences, "input", false);
  const auto probs = probabilities(enc);
  std::vector<json> out;
  for (size_t s = 0; s < lines.size(); ++s) {
    std::vector<std::string> tags;
    std::vector<float> scores;
    for (const auto& [k, score] : word_tags(enc, s, probs[s], o.aggregation)) {
      tags.push_back(tags_[static_cast<size_t>(k)]);
      scores.push_back(score);
    }
    json j = {{"words", sentences[s].words}, {"tags", tags}, {"scores", scores}};
    if (entities()) j["entities"] = group_entities(lines[s], spans[s], tags, scores);
    out.push_back(std::move(j));
  }
  return out;
}

explain::Explanation TagPredictor::explain(const std::string& text, const ExplainOptions& o) {
  explain::Explanation e = begin_explanation(kind(), text);
  EvalScope eval(*model_);
  data::TaggedSentence s;
  for (const auto& w : data::split_words(text)) s.words.push_back(w.word);
  GAZE_CHECK(!s.words.empty(), DataError, "explain: the input has no words");
  const TagEncoded enc = encode({s}, "input", false);
  e.truncated = enc.truncated > 0;
  e.architecture = "transformer";
  e.tokens = pieces(*tokenizer_, enc.ids[0]);
  e.token_ids = enc.ids[0];
  e.blocks = {explain::capture(*model_, enc.ids[0], {o.layers, o.heads})};
  e.prediction = predict({text}, {})[0];
  explain::finish(e);
  return e;
}

}  // namespace gaze::tasks
