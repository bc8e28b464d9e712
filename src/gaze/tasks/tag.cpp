#include "gaze/tasks/tag.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "gaze/autograd/grad_mode.h"
#include "gaze/core/error.h"
#include "gaze/core/rng.h"
#include "gaze/data/batching.h"
#include "gaze/io/files.h"
#include "gaze/ops/ops.h"
#include "gaze/text/utf8.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kTagsFile = "tags.json";
constexpr int64_t kUnknownTag = -2;  // a gold tag outside the model's tagset

std::string resolve_scheme(const std::string& configured, const std::vector<std::string>& tags,
                           const std::string& source) {
  const bool entity = metrics::is_entity_tagset(tags);
  if (configured == "none") return "none";
  if (configured == "auto") {
    if (!entity) return "none";
    for (const auto& t : tags)
      if (t[0] == 'E' || t[0] == 'S') return "bioes";
    return "iob2";
  }
  GAZE_CHECK(entity, DataError,
             "{}: data.scheme is {} but the tags are not all O or B-/I-/E-/S- followed by a type "
             "(set data.scheme: none for tagsets without entities, such as part of speech)",
             source, configured);
  return configured;
}

}  // namespace

void TagTask::read_data(const RunConfig& c, std::FILE* log) {
  format_ = {c.data.token_column, c.data.tag_column};
  train_ = data::read_conll(c.data.train, format_);
  dev_ = data::read_conll(c.data.dev, format_);
  if (!c.data.test.empty()) test_ = data::read_conll(c.data.test, format_);
  dev_source_ = c.data.dev, test_source_ = c.data.test;
  int64_t words = 0;
  for (const auto& s : train_) words += static_cast<int64_t>(s.words.size());
  std::fprintf(log, "data: %zu train sentences (%lld words), %zu dev, %zu test\n", train_.size(),
               static_cast<long long>(words), dev_.size(), test_.size());
}

std::unique_ptr<TagTask> TagTask::create(const RunConfig& c, std::FILE* log) {
  std::unique_ptr<TagTask> t(new TagTask());
  t->max_length_ = c.data.max_length;
  t->batch_tokens_ = c.train.batch_tokens;
  t->unknown_tags_ = c.data.unknown_tags;
  t->read_data(c, log);
  std::map<std::string, int64_t> counts;
  for (const auto& s : t->train_)
    for (const auto& tag : s.tags) ++counts[tag];
  for (const auto& [tag, n] : counts) t->tags_.push_back(tag);
  GAZE_CHECK(t->tags_.size() >= 2, DataError, "{}: the training data has only one tag ('{}')",
             c.data.train, t->tags_.empty() ? "" : t->tags_[0]);
  t->scheme_ = resolve_scheme(c.data.scheme, t->tags_, c.data.train);
  t->entities_ = t->scheme_ != "none";
  GAZE_CHECK(t->entities_ || c.train.metric != "f1", DataError,
             "{}: train.metric is f1 (entity F1) but the tags have no entities (scheme none); use "
             "train.metric: accuracy",
             c.data.train);
  // Words past the cut (data.max_length) get O, or the most frequent tag when there is no O.
  auto most = std::max_element(counts.begin(), counts.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  const std::string fallback = counts.count("O") ? "O" : most->first;
  t->fallback_tag_ = std::find(t->tags_.begin(), t->tags_.end(), fallback) - t->tags_.begin();
  std::vector<std::string> words;
  for (const auto& s : t->train_) words.insert(words.end(), s.words.begin(), s.words.end());
  t->tokenizer_ = text::train_tokenizer(c.tokenizer, words);
  std::fprintf(log, "tokenizer: %s, %lld ids; tags: %zu (scheme %s)\n",
               t->tokenizer_->kind().c_str(), static_cast<long long>(t->tokenizer_->vocab_size()),
               t->tags_.size(), t->scheme_.c_str());
  models::TaggerConfig mc = c.tagger;
  mc.vocab_size = t->tokenizer_->vocab_size();
  mc.num_tags = static_cast<int64_t>(t->tags_.size());
  mc.pad_id = t->tokenizer_->pad_id();
  manual_seed(static_cast<uint64_t>(c.train.seed));
  t->model_ = std::make_shared<models::TransformerTagger>(mc);
  int64_t params = 0;
  for (const Tensor& p : t->model_->parameters()) params += p.numel();
  std::fprintf(log, "model: TransformerTagger, %lld parameters\n", static_cast<long long>(params));
  t->encode_data(c);
  if (t->train_enc_.truncated + t->dev_enc_.truncated > 0)
    std::fprintf(log,
                 "warning: %lld sentences longer than data.max_length (%lld pieces) were cut\n",
                 static_cast<long long>(t->train_enc_.truncated + t->dev_enc_.truncated),
                 static_cast<long long>(t->max_length_));
  return t;
}

std::unique_ptr<TagTask> TagTask::load(const std::string& dir) {
  std::unique_ptr<TagTask> t(new TagTask());
  const json task = read_task_file(dir, "tag");
  t->format_ = {task.value("token_column", int64_t{0}), task.value("tag_column", int64_t{-1})};
  t->scheme_ = task.value("scheme", "none");
  t->entities_ = t->scheme_ != "none";
  t->max_length_ = task.value("max_length", int64_t{256});
  t->batch_tokens_ = task.value("batch_tokens", int64_t{4096});
  t->fallback_tag_ = task.value("fallback_tag", int64_t{0});
  const json tags = read_json_file((fs::path(dir) / kTagsFile).string());
  GAZE_CHECK(tags.is_array() && tags.size() >= 2, DataError, "{}/{}: expected a list of tags", dir,
             kTagsFile);
  for (const auto& x : tags) t->tags_.push_back(x.get<std::string>());
  t->tokenizer_ = text::load_tokenizer(dir);
  t->model_ = std::dynamic_pointer_cast<models::TransformerTagger>(models::load_model(dir));
  GAZE_CHECK(t->model_, DataError, "{}: the model is not a TransformerTagger", dir);
  GAZE_CHECK(t->model_->config.num_tags == static_cast<int64_t>(t->tags_.size()), DataError,
             "{}: the model has {} tags but {} lists {}", dir, t->model_->config.num_tags,
             kTagsFile, t->tags_.size());
  GAZE_CHECK(t->fallback_tag_ >= 0 && t->fallback_tag_ < static_cast<int64_t>(t->tags_.size()),
             DataError, "{}: task.json's fallback_tag is out of range", dir);
  t->model_->eval();
  return t;
}

std::unique_ptr<TagTask> TagTask::resume(const RunConfig& c, const std::string& dir,
                                         std::FILE* log) {
  std::unique_ptr<TagTask> t = load(dir);
  t->unknown_tags_ = c.data.unknown_tags;
  t->max_length_ = c.data.max_length;
  t->batch_tokens_ = c.train.batch_tokens;
  t->read_data(c, log);
  t->encode_data(c);
  t->model_->train();
  return t;
}

TagEncoded TagTask::encode(const std::vector<data::TaggedSentence>& sentences,
                           const std::string& source, bool labelled) const {
  TagEncoded enc;
  for (const auto& s : sentences) {
    std::vector<int64_t> ids, first, tags;
    bool cut = false;
    for (size_t w = 0; w < s.words.size(); ++w) {
      std::vector<int64_t> pieces = tokenizer_->encode(s.words[w]);
      if (pieces.empty()) pieces.push_back(tokenizer_->unk_id());
      if (static_cast<int64_t>(ids.size()) >= max_length_) {
        first.push_back(-1);
        cut = true;
      } else {
        first.push_back(static_cast<int64_t>(ids.size()));
        const auto room = static_cast<size_t>(max_length_) - ids.size();
        if (pieces.size() > room) pieces.resize(room), cut = true;
        ids.insert(ids.end(), pieces.begin(), pieces.end());
      }
      if (!labelled) {
        tags.push_back(-1);
        continue;
      }
      auto it = std::find(tags_.begin(), tags_.end(), s.tags[w]);
      if (it == tags_.end() && unknown_tags_ == "wrong") {  // scored as a wrong prediction
        tags.push_back(kUnknownTag);
        ++enc.unknown;
        continue;
      }
      GAZE_CHECK(
          it != tags_.end(), DataError,
          "{}:{}: tag '{}' is not one the model was trained on ({} tags: {}); to score "
          "such tags as errors instead, set data.unknown_tags: wrong (gaze eval: "
          "--unknown-tags wrong)",
          source, s.lines.empty() ? s.line : s.lines[w], s.tags[w], tags_.size(),
          fmt::join(tags_.begin(), tags_.begin() + std::min<size_t>(tags_.size(), 20), ", "));
      tags.push_back(it - tags_.begin());
    }
    enc.truncated += cut;
    enc.ids.push_back(std::move(ids));
    enc.first.push_back(std::move(first));
    enc.tags.push_back(std::move(tags));
  }
  return enc;
}

void TagTask::encode_data(const RunConfig& c) {
  train_enc_ = encode(train_, c.data.train, true);
  dev_enc_ = encode(dev_, dev_source_, true);
  std::vector<int64_t> counts(tags_.size(), 0);
  for (const auto& sentence : train_enc_.tags)
    for (const int64_t k : sentence) ++counts[static_cast<size_t>(k)];
  class_weight_ = class_weights(counts, c.train.class_weights);
}

std::vector<int64_t> TagTask::train_lengths() const {
  std::vector<int64_t> out;
  for (const auto& ids : train_enc_.ids) out.push_back(static_cast<int64_t>(ids.size()));
  return out;
}

Tensor TagTask::loss(const std::vector<int64_t>& batch, double label_smoothing, int64_t* tokens) {
  std::vector<const std::vector<int64_t>*> seqs;
  for (const int64_t i : batch) seqs.push_back(&train_enc_.ids[static_cast<size_t>(i)]);
  const auto [ids, lengths] = pad_batch(seqs, tokenizer_->pad_id());
  const int64_t B = ids.size(0), T = ids.size(1);
  // Targets on each word's first piece; every other position is ignored (-100).
  Tensor target = Tensor::full(Shape{B * T}, -100.0, DType::i64);
  *tokens = 0;
  for (int64_t b = 0; b < B; ++b) {
    const auto i = static_cast<size_t>(batch[static_cast<size_t>(b)]);
    const auto& first = train_enc_.first[i];
    for (size_t w = 0; w < first.size(); ++w)
      if (first[w] >= 0) target.data<int64_t>()[b * T + first[w]] = train_enc_.tags[i][w];
    *tokens += lengths.data<int64_t>()[b];
  }
  const Tensor logits = model_->forward(ids, lengths);
  CrossEntropyOptions o;
  o.label_smoothing = label_smoothing;
  o.weight = class_weight_;
  return cross_entropy(reshape(logits, Shape{B * T, logits.size(2)}), target, o);
}

std::vector<std::vector<std::vector<float>>> TagTask::probabilities(const TagEncoded& enc) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (const auto& ids : enc.ids)
    lengths.push_back(std::max<int64_t>(1, static_cast<int64_t>(ids.size())));
  const auto batches = data::make_batches(lengths, {batch_tokens_, 0, false}, nullptr);
  const auto K = static_cast<int64_t>(tags_.size());
  std::vector<std::vector<std::vector<float>>> out(enc.ids.size());
  const std::vector<int64_t> unk{tokenizer_->unk_id()};
  for (const auto& batch : batches) {
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

std::vector<std::pair<int64_t, float>> TagTask::word_tags(
    const TagEncoded& enc, size_t s, const std::vector<std::vector<float>>& probs,
    const std::string& aggregation) const {
  const auto& first = enc.first[s];
  const auto pieces = static_cast<int64_t>(enc.ids[s].size());
  std::vector<std::pair<int64_t, float>> out;
  auto argmax = [](const std::vector<float>& p) {
    const auto it = std::max_element(p.begin(), p.end());
    return std::pair<int64_t, float>{it - p.begin(), *it};
  };
  for (size_t w = 0; w < first.size(); ++w) {
    if (first[w] < 0) {
      out.emplace_back(fallback_tag_, 0.0f);
      continue;
    }
    // The word's pieces: from its first piece to the next word's (or the end).
    int64_t end = pieces;
    for (size_t v = w + 1; v < first.size(); ++v)
      if (first[v] >= 0) {
        end = first[v];
        break;
      }
    const auto begin = static_cast<size_t>(first[w]);
    if (aggregation == "average") {
      std::vector<float> mean(probs[begin].size(), 0.0f);
      for (auto p = begin; p < static_cast<size_t>(end); ++p)
        for (size_t k = 0; k < mean.size(); ++k) mean[k] += probs[p][k];
      for (float& m : mean) m /= static_cast<float>(static_cast<size_t>(end) - begin);
      out.push_back(argmax(mean));
    } else if (aggregation == "max") {
      std::pair<int64_t, float> best{0, -1.0f};
      for (auto p = begin; p < static_cast<size_t>(end); ++p) {
        const auto c = argmax(probs[p]);
        if (c.second > best.second) best = c;
      }
      out.push_back(best);
    } else {  // simple, first: the first piece decides, as the model was trained
      out.push_back(argmax(probs[begin]));
    }
  }
  return out;
}

metrics::TaggingReport TagTask::evaluate(const std::vector<data::TaggedSentence>& sentences,
                                         const std::string& source, double* mean_loss) {
  return evaluate(sentences, encode(sentences, source, true), source, mean_loss);
}

metrics::TaggingReport TagTask::evaluate(const std::vector<data::TaggedSentence>& sentences,
                                         const TagEncoded& enc, const std::string& source,
                                         double* mean_loss) {
  const auto probs = probabilities(enc);
  std::vector<std::vector<std::string>> gold, pred;
  double nll = 0;
  int64_t n = 0;
  for (size_t s = 0; s < sentences.size(); ++s) {
    std::vector<std::string> p;
    for (const auto& [k, score] : word_tags(enc, s, probs[s], "first"))
      p.push_back(tags_[static_cast<size_t>(k)]);
    for (size_t w = 0; w < enc.first[s].size(); ++w) {
      if (enc.first[s][w] < 0 || enc.tags[s][w] == kUnknownTag) continue;
      const float q =
          probs[s][static_cast<size_t>(enc.first[s][w])][static_cast<size_t>(enc.tags[s][w])];
      nll -= std::log(std::max(1e-30, static_cast<double>(q)));
      ++n;
    }
    gold.push_back(sentences[s].tags);
    pred.push_back(std::move(p));
  }
  if (mean_loss) *mean_loss = n > 0 ? nll / static_cast<double>(n) : 0.0;
  if (enc.unknown > 0)
    std::fprintf(stderr,
                 "note: %s: %lld tokens have tags the model was not trained on (scored as "
                 "errors)\n",
                 source.c_str(), static_cast<long long>(enc.unknown));
  return metrics::tagging_report(gold, pred, entities_);
}

std::map<std::string, double> TagTask::validate() {
  double loss = 0;
  const auto r = evaluate(dev_, dev_enc_, dev_source_, &loss);  // encoded once, at start-up
  std::map<std::string, double> m = {{"accuracy", r.token_accuracy}, {"loss", loss}};
  if (entities_) m["f1"] = r.micro.f1;
  return m;
}

std::vector<std::vector<std::string>> TagTask::tag(
    const std::vector<std::vector<std::string>>& words) {
  std::vector<data::TaggedSentence> sentences;
  for (const auto& w : words) sentences.push_back({w, {}, 0, {}});
  const TagEncoded enc = encode(sentences, "input", false);
  const auto probs = probabilities(enc);
  std::vector<std::vector<std::string>> out;
  for (size_t s = 0; s < words.size(); ++s) {
    std::vector<std::string> t;
    for (const auto& [k, score] : word_tags(enc, s, probs[s], "first"))
      t.push_back(tags_[static_cast<size_t>(k)]);
    out.push_back(std::move(t));
  }
  return out;
}

json group_entities(const std::string& text, const std::vector<data::WordSpan>& words,
                    const std::vector<std::string>& tags, const std::vector<float>& scores) {
  // Code-point offsets -> byte offsets, to cut the group's text out of the line.
  std::vector<size_t> byte_at;
  size_t pos = 0;
  for (const std::string& ch : text::split_chars(text)) byte_at.push_back(pos), pos += ch.size();
  byte_at.push_back(pos);
  auto split = [](const std::string& tag) -> std::pair<char, std::string> {
    if (tag.size() > 2 && tag[1] == '-' && std::string("BIES").find(tag[0]) != std::string::npos)
      return {tag[0] == 'B' || tag[0] == 'S' ? 'B' : 'I', tag.substr(2)};
    return {'I', tag};  // not in B-/I- form: a continuation, as Hugging Face reads it
  };
  json out = json::array();
  size_t g = 0;
  while (g < words.size()) {
    const auto [bi, type] = split(tags[g]);
    size_t e = g + 1;
    while (e < words.size()) {
      const auto [nbi, ntype] = split(tags[e]);
      if (ntype != type || nbi == 'B') break;
      ++e;
    }
    if (type != "O") {
      double score = 0;
      for (size_t w = g; w < e; ++w) score += scores[w];
      const auto start = words[g].start, end = words[e - 1].end;
      out.push_back({{"entity_group", type},
                     {"score", score / static_cast<double>(e - g)},
                     {"word", text.substr(byte_at[static_cast<size_t>(start)],
                                          byte_at[static_cast<size_t>(end)] -
                                              byte_at[static_cast<size_t>(start)])},
                     {"start", start},
                     {"end", end}});
    }
    g = e;
  }
  return out;
}

std::vector<json> TagTask::predict(const std::vector<std::string>& lines, const PredictOptions& o) {
  const std::vector<std::string> modes = {"simple", "first", "average", "max"};
  GAZE_CHECK(std::find(modes.begin(), modes.end(), o.aggregation) != modes.end(), DataError,
             "aggregation must be simple, first, average or max; got '{}'", o.aggregation);
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
    if (entities_) j["entities"] = group_entities(lines[s], spans[s], tags, scores);
    out.push_back(std::move(j));
  }
  return out;
}

std::optional<Report> TagTask::test_report() {
  if (test_.empty()) return std::nullopt;
  const auto r = evaluate(test_, test_source_);
  return Report{metrics::to_text(r), metrics::to_json(r), r.sentences};
}

Report TagTask::evaluate_file(const std::string& path, const EvalOptions& o) {
  if (!o.unknown_tags.empty()) unknown_tags_ = o.unknown_tags;
  const auto r = evaluate(data::read_conll(path, format_), path);
  return Report{metrics::to_text(r), metrics::to_json(r), r.sentences};
}

void TagTask::save_assets(const std::string& dir) const {
  tokenizer_->save(dir);
  io::write_file_atomic((fs::path(dir) / kTagsFile).string(), json(tags_).dump(2) + "\n");
  write_task_file(dir, {{"task", "tag"},
                        {"token_column", format_.token_column},
                        {"tag_column", format_.tag_column},
                        {"scheme", scheme_},
                        {"max_length", max_length_},
                        {"batch_tokens", batch_tokens_},
                        {"fallback_tag", fallback_tag_}});
}

}  // namespace gaze::tasks
