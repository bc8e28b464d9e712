#include "gaze/tasks/tag_predictor.h"

#include <algorithm>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/explain/attribution.h"
#include "gaze/explain/capture.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/crf.h"
#include "gaze/ops/reduce.h"
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
      batch_tokens_(batch_tokens) {
  if (model_->crf && model_->config.crf_constraints && scheme_ != TagScheme::none) {
    const SchemeConstraints c = scheme_constraints(tags_, scheme_);
    model_->crf->constrain(c.allowed, c.start, c.end);
  }
}

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
                      data_.unknown_tags, source, model_->backbone->max_word_chars() > 0);
}

models::Inputs TagPredictor::inputs(const TagEncoded& enc,
                                    const std::vector<int64_t>& batch) const {
  const std::vector<int64_t> unk{tokenizer_->unk_id()};
  return make_inputs(enc.ids, enc.surfaces, batch, tokenizer_->pad_id(),
                     model_->backbone->max_word_chars(), &unk);
}

TagScores TagPredictor::scores(const TagEncoded& enc) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& ids : enc.ids)
    lengths.push_back(std::max<int64_t>(1, static_cast<int64_t>(ids.size())));
  const auto K = static_cast<int64_t>(tags_.size());
  TagScores out;
  out.probs.resize(enc.ids.size());
  if (model_->crf) out.paths.resize(enc.ids.size());
  for (const auto& batch : token_batches(lengths, batch_tokens_)) {
    std::vector<const std::vector<int64_t>*> firsts;
    for (const int64_t i : batch) firsts.push_back(&enc.first[static_cast<size_t>(i)]);
    const models::Inputs in = inputs(enc, batch);
    const Tensor &ids = in.tokens, &lens = in.lengths;
    const Tensor logits = model_->forward(in);
    const Tensor p = softmax(logits, -1);
    const int64_t T = ids.size(1);
    for (size_t b = 0; b < batch.size(); ++b) {
      auto& rows = out.probs[static_cast<size_t>(batch[b])];
      for (int64_t t = 0; t < lens.data<int64_t>()[b]; ++t) {
        const float* row = p.data<float>() + (static_cast<int64_t>(b) * T + t) * K;
        rows.emplace_back(row, row + K);
      }
    }
    if (model_->crf) crf_batch(enc, batch, logits, firsts, out);
  }
  return out;
}

void TagPredictor::crf_batch(const TagEncoded& enc, const std::vector<int64_t>& batch,
                             const Tensor& logits,
                             const std::vector<const std::vector<int64_t>*>& firsts,
                             TagScores& out) const {
  auto [emissions, words] = word_emissions(logits, firsts);
  const int64_t B = emissions.size(0), W = emissions.size(1);
  // A sentence without words decodes nothing; the CRF still needs a first step to run on.
  Tensor steps = Tensor::empty(Shape{B}, DType::i64);
  for (int64_t b = 0; b < B; ++b)
    steps.data<int64_t>()[b] = std::max<int64_t>(1, words.data<int64_t>()[b]);
  const CrfScores crf = model_->crf->scores();
  const auto paths = crf_decode(emissions, steps, crf);
  bool scored = true;  // labelled, with every tag known and at least one word
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = words.data<int64_t>()[b];
    const auto& path = paths[static_cast<size_t>(b)];
    out.paths[static_cast<size_t>(batch[static_cast<size_t>(b)])].assign(path.begin(),
                                                                         path.begin() + n);
    scored = scored && n > 0;
  }
  bool known = false;
  const Tensor gold = word_gold(enc, batch, words, W, &known);
  if (!scored || !known) return;
  const Tensor nll = crf_nll(emissions, gold, words, crf).to_dtype(DType::f64);
  for (int64_t b = 0; b < B; ++b) {
    out.nll += nll.data<double>()[b];
    out.words += words.data<int64_t>()[b];
  }
}

std::vector<std::pair<int64_t, float>> TagPredictor::word_tags(const TagEncoded& enc, size_t s,
                                                               const TagScores& scores,
                                                               Aggregation aggregation) const {
  const auto& first = enc.first[s];
  if (scores.paths.empty())
    return tasks::word_tags(first, static_cast<int64_t>(enc.ids[s].size()), scores.probs[s],
                            aggregation, fallback_tag_);
  std::vector<std::pair<int64_t, float>> out;
  for (size_t w = 0; w < first.size(); ++w) {
    if (first[w] < 0 || w >= scores.paths[s].size()) {
      out.emplace_back(fallback_tag_, 0.0f);
      continue;
    }
    const int64_t k = scores.paths[s][w];
    out.emplace_back(k, scores.probs[s][static_cast<size_t>(first[w])][static_cast<size_t>(k)]);
  }
  return out;
}

std::vector<json> TagPredictor::predict_texts(const std::vector<std::string>& lines,
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
  const TagScores model_scores = scores(enc);
  std::vector<json> out;
  for (size_t s = 0; s < lines.size(); ++s) {
    std::vector<std::string> tags;
    std::vector<float> scores;
    for (const auto& [k, score] : word_tags(enc, s, model_scores, o.aggregation)) {
      tags.push_back(tags_[static_cast<size_t>(k)]);
      scores.push_back(score);
    }
    json j = {{"words", sentences[s].words}, {"tags", tags}, {"scores", scores}};
    if (entities()) j["entities"] = group_entities(lines[s], spans[s], tags, scores);
    out.push_back(std::move(j));
  }
  return out;
}

InputSize TagPredictor::input_size(const std::string& line) const {
  data::TaggedSentence s;
  for (const auto& w : data::split_words(line)) s.words.push_back(w.word);
  const TagEncoded enc = encode({s}, "input", false);
  return {std::ssize(enc.ids[0]), enc.truncated > 0};
}

json TagPredictor::describe_task() const {
  return {{"tags", tags_}, {"entities", entities()}};
}

json TagPredictor::blank_prediction(const PredictOptions&) const {
  json j = {{"words", json::array()}, {"tags", json::array()}, {"scores", json::array()}};
  if (entities()) j["entities"] = json::array();
  return j;
}

explain::Explanation TagPredictor::explain_input(const std::string& text, const ExplainOptions& o) {
  explain::Explanation e = begin_explanation(kind(), text, o);
  EvalScope eval(*model_);
  data::TaggedSentence s;
  for (const auto& w : data::split_words(text)) s.words.push_back(w.word);
  GAZE_CHECK(!s.words.empty(), DataError, "explain: the input has no words");
  const TagEncoded enc = encode({s}, "input", false);
  e.truncated = enc.truncated > 0;
  e.architecture = "transformer";
  e.tokens = pieces(*tokenizer_, enc.ids[0]);
  e.framing = framing(*tokenizer_, enc.ids[0]);
  e.token_ids = enc.ids[0];
  e.blocks = {explain::capture(*model_, inputs(enc, {0}), {o.layers, o.heads})};
  e.prediction = predict({text}, {})[0];
  explain::finish(e);
  if (o.method != explain::Method::attention) attribute(e, inputs(enc, {0}), o);
  return e;
}

void TagPredictor::attribute(explain::Explanation& e, const models::Inputs& one,
                             const ExplainOptions& o) {
  EvalScope eval(*model_);
  const int64_t T = one.tokens.size(1);
  // The explained outputs: at each piece, the log-probability of its highest-scoring tag (the
  // emission's softmax; with a CRF, its transitions are left out).
  std::vector<int64_t> best(static_cast<size_t>(T));
  Tensor pick;
  {
    NoGradGuard no_grad;
    const Tensor logits = model_->forward(one);  // [1, T, K]
    const int64_t K = logits.size(2);
    pick = Tensor::zeros(Shape{1, T, K});
    for (int64_t t = 0; t < T; ++t) {
      const float* row = logits.data<float>() + t * K;
      best[size_t(t)] = std::max_element(row, row + K) - row;
      pick.data<float>()[t * K + best[size_t(t)]] = 1.0f;
    }
  }
  e.explained_output = "log p(each piece's tag)";
  e.output_tokens.clear();
  for (int64_t t = 0; t < T; ++t)
    e.output_tokens.push_back(e.tokens[size_t(t)] + " \xe2\x86\x92 " +
                              tags_[size_t(best[size_t(t)])]);
  explain::Objective f;
  {
    NoGradGuard no_grad;
    f.embeddings = model_->backbone->lookup(one.tokens).detach();
  }
  f.output = [&](const Tensor& x, nn::AttentionCapture* capture) {
    models::Inputs in = models::repeat(one, x.size(0));
    in.token_embeddings = x;
    return sum(mul(log_softmax(model_->forward(in, capture), -1), pick), {2});  // [n, T]
  };
  if (e.rollout.defined()) {  // row t of the rollout: what piece t's representation draws on
    explain::TokenAttribution a{"rollout", e.rollout.to_vector<float>()};
    a.outputs = T;
    e.attributions.push_back(std::move(a));
  }
  add_gradient_attributions(e, f, o, tokenizer_->unk_id(),
                            [&](const Tensor& ids) { return model_->backbone->lookup(ids); });
  for (const auto& p : model_->parameters()) p.zero_grad();  // gradients were a means, not a step
}

}  // namespace gaze::tasks
