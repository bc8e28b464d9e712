#include "gaze/tasks/tag.h"

#include <cmath>
#include <map>

#include "gaze/core/error.h"
#include "gaze/core/rng.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/crf.h"
#include "gaze/ops/loss.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/tasks/pretrained.h"

namespace gaze::tasks {

TagScheme resolve_scheme(TagScheme configured, const std::vector<std::string>& tags,
                         const std::string& source) {
  const bool entity = metrics::is_entity_tagset(tags);
  if (configured == TagScheme::none) return TagScheme::none;
  if (configured == TagScheme::detect) {
    if (!entity) return TagScheme::none;
    for (const auto& t : tags)
      if (t[0] == 'E' || t[0] == 'S') return TagScheme::bioes;
    return TagScheme::iob2;
  }
  GAZE_CHECK(entity, DataError,
             "{}: data.scheme is {} but the tags are not all O or B-/I-/E-/S- followed by a type "
             "(set data.scheme: none for tagsets without entities, such as part of speech)",
             source, enum_name(configured));
  return configured;
}

namespace {

std::vector<data::TaggedSentence> read_sentences(const std::string& path, const DataConfig& d) {
  return path.empty() ? std::vector<data::TaggedSentence>{}
                      : data::read_conll(path, {d.token_column, d.tag_column});
}

Report report_of(const metrics::TaggingReport& r) {
  return Report{metrics::to_text(r), metrics::to_json(r), r.sentences};
}

}  // namespace

struct TagSplits {
  std::vector<data::TaggedSentence> train, dev, test;
};

namespace {
// Every file of the run, read before anything is trained (a bad dev file fails at once).
TagSplits read_splits(const DataConfig& d, std::FILE* log) {
  TagSplits s{read_sentences(d.train, d), read_sentences(d.dev, d), read_sentences(d.test, d)};
  int64_t words = 0;
  for (const auto& x : s.train) words += static_cast<int64_t>(x.words.size());
  std::fprintf(log, "data: %zu train sentences (%lld words), %zu dev, %zu test\n", s.train.size(),
               static_cast<long long>(words), s.dev.size(), s.test.size());
  return s;
}

// The gold tags of each sentence, as the tagging report reads them.
std::vector<std::vector<std::string>> gold_tags(
    const std::vector<data::TaggedSentence>& sentences) {
  std::vector<std::vector<std::string>> gold;
  for (const auto& s : sentences) gold.push_back(s.tags);
  return gold;
}

void note_unknown_tags(const TagEncoded& enc, const std::string& source) {
  if (enc.unknown > 0)
    std::fprintf(stderr,
                 "note: %s: %lld tokens have tags the model was not trained on (scored as "
                 "errors)\n",
                 source.c_str(), static_cast<long long>(enc.unknown));
}
}  // namespace

void TagTask::use_data(const RunConfig& c, TagSplits&& s, std::FILE* log) {
  p_->set_data(c.data, c.train.batch_tokens);
  dev_ = std::move(s.dev);
  test_ = std::move(s.test);
  dev_source_ = c.data.dev, test_source_ = c.data.test;
  train_enc_ = p_->encode(s.train, c.data.train, true);
  dev_enc_ = p_->encode(dev_, dev_source_, true);
  std::vector<int64_t> counts(p_->tags().size(), 0);
  for (const auto& sentence : train_enc_.tags)
    for (const int64_t k : sentence) ++counts[static_cast<size_t>(k)];
  class_weight_ = class_weights(counts, c.train.class_weights);
  if (train_enc_.truncated + dev_enc_.truncated > 0)
    std::fprintf(log,
                 "warning: %lld sentences longer than data.max_length (%lld pieces) were cut\n",
                 static_cast<long long>(train_enc_.truncated + dev_enc_.truncated),
                 static_cast<long long>(c.data.max_length));
}

std::unique_ptr<TagTask> TagTask::create(const RunConfig& c, std::FILE* log) {
  TagSplits splits = read_splits(c.data, log);
  const auto& train = splits.train;
  std::map<std::string, int64_t> counts;
  for (const auto& s : train)
    for (const auto& tag : s.tags) ++counts[tag];
  std::vector<std::string> tags;
  for (const auto& [tag, n] : counts) tags.push_back(tag);
  GAZE_CHECK(tags.size() >= 2, DataError, "{}: the training data has only one tag ('{}')",
             c.data.train, tags.empty() ? "" : tags[0]);
  const TagScheme scheme = resolve_scheme(c.data.scheme, tags, c.data.train);
  GAZE_CHECK(scheme != TagScheme::none || c.train.metric != train::Metric::f1, DataError,
             "{}: train.metric is f1 (entity F1) but the tags have no entities (scheme none); use "
             "train.metric: accuracy",
             c.data.train);
  // Words past the cut (data.max_length) get O, or the most frequent tag when there is no O.
  auto most = std::max_element(counts.begin(), counts.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  const std::string fallback = counts.count("O") ? "O" : most->first;
  std::vector<std::string> words;
  for (const auto& s : train) words.insert(words.end(), s.words.begin(), s.words.end());
  models::TaggerConfig mc = c.tagger;
  EncoderStart start = start_encoder(mc, c.tokenizer, words, log);
  std::shared_ptr<text::Tokenizer> tok = start.tokenizer;
  std::fprintf(log, "tokenizer: %s, %lld ids; tags: %zu (scheme %s)\n", tok->kind().c_str(),
               static_cast<long long>(tok->vocab_size()), tags.size(), enum_name(scheme).c_str());
  mc.num_tags = static_cast<int64_t>(tags.size());
  manual_seed(static_cast<uint64_t>(c.train.seed));
  auto model = std::make_shared<models::TransformerTagger>(mc);
  start.init(*model);
  std::fprintf(log, "model: TransformerTagger, %lld parameters\n",
               static_cast<long long>(parameter_count(*model)));
  const int64_t fallback_tag = std::find(tags.begin(), tags.end(), fallback) - tags.begin();
  std::unique_ptr<TagTask> t(new TagTask(std::make_unique<TagPredictor>(
      tok, tags, std::move(model), scheme, fallback_tag, c.data, c.train.batch_tokens)));
  t->use_data(c, std::move(splits), log);
  return t;
}

std::unique_ptr<TagTask> TagTask::load(const std::string& dir) {
  return std::unique_ptr<TagTask>(new TagTask(TagPredictor::load(dir)));
}

std::unique_ptr<TagTask> TagTask::resume(const RunConfig& c, const std::string& dir,
                                         std::FILE* log) {
  std::unique_ptr<TagTask> t = load(dir);
  t->use_data(c, read_splits(c.data, log), log);
  t->model().train();
  return t;
}

std::vector<int64_t> TagTask::train_lengths() const {
  std::vector<int64_t> out;
  for (const auto& ids : train_enc_.ids) out.push_back(static_cast<int64_t>(ids.size()));
  return out;
}

TagTask::BatchLoss TagTask::loss(const std::vector<int64_t>& batch, double label_smoothing) {
  const models::Inputs in = p_->inputs(train_enc_, batch);
  const Tensor &ids = in.tokens, &lengths = in.lengths;
  const int64_t B = ids.size(0), T = ids.size(1);
  // Targets on each word's first piece; every other position is ignored (-100).
  Tensor target = Tensor::full(Shape{B * T}, -100.0, DType::i64);
  BatchLoss out;
  for (int64_t b = 0; b < B; ++b) {
    const auto i = static_cast<size_t>(batch[static_cast<size_t>(b)]);
    const auto& first = train_enc_.first[i];
    for (size_t w = 0; w < first.size(); ++w)
      if (first[w] >= 0) target.data<int64_t>()[b * T + first[w]] = train_enc_.tags[i][w];
    out.tokens += lengths.data<int64_t>()[b];
  }
  const Tensor logits = p_->model().forward(in);
  if (const auto& crf = p_->model().crf) {
    // The CRF's negative log-likelihood of the gold tags of the kept words, per word.
    std::vector<const std::vector<int64_t>*> firsts;
    for (const int64_t i : batch) firsts.push_back(&train_enc_.first[static_cast<size_t>(i)]);
    const auto [emissions, words] = word_emissions(logits, firsts);
    const Tensor gold = word_gold(train_enc_, batch, words, emissions.size(1));
    int64_t total = 0;
    for (int64_t b = 0; b < B; ++b) total += words.data<int64_t>()[b];
    out.mean = div(sum(crf_nll(emissions, gold, words, crf->scores())), static_cast<double>(total));
    out.divisor = static_cast<double>(total);
    return out;
  }
  CrossEntropyOptions o;
  o.label_smoothing = label_smoothing;
  o.weight = class_weight_;
  out.mean = cross_entropy(reshape(logits, Shape{B * T, logits.size(2)}), target, o);
  out.divisor = cross_entropy_divisor(target, o);
  return out;
}

double TagTask::Scored::mean_loss() const {
  // A CRF tagger is trained on, and validated by, its own NLL per word.
  if (crf) return crf_words > 0 ? crf_nll / static_cast<double>(crf_words) : 0.0;
  double total = 0;
  int64_t n = 0;
  for (size_t s = 0; s < nll.size(); ++s) total += nll[s], n += known[s];
  return n > 0 ? total / static_cast<double>(n) : 0.0;
}

TagTask::Scored TagTask::score(const TagEncoded& enc) {
  const TagScores scores = p_->scores(enc);
  const auto& probs = scores.probs;
  const auto& tags = p_->tags();
  Scored out;
  for (size_t s = 0; s < enc.ids.size(); ++s) {
    std::vector<std::string> p;
    for (const auto& [k, score] : p_->word_tags(enc, s, scores, Aggregation::first))
      p.push_back(tags[static_cast<size_t>(k)]);
    double nll = 0;
    int64_t known = 0;
    for (size_t w = 0; w < enc.first[s].size(); ++w) {
      if (enc.first[s][w] < 0 || enc.tags[s][w] == kUnknownTag) continue;
      const float q =
          probs[s][static_cast<size_t>(enc.first[s][w])][static_cast<size_t>(enc.tags[s][w])];
      nll -= std::log(std::max(1e-30, static_cast<double>(q)));
      ++known;
    }
    out.predicted.push_back(std::move(p));
    out.nll.push_back(nll);
    out.known.push_back(known);
  }
  out.crf = !scores.paths.empty();
  out.crf_nll = scores.nll, out.crf_words = scores.words;
  return out;
}

metrics::TaggingReport TagTask::evaluate(const std::vector<data::TaggedSentence>& sentences,
                                         const TagEncoded& enc, const std::string& source,
                                         double* mean_loss) {
  Scored scored = score(enc);
  if (mean_loss) *mean_loss = scored.mean_loss();
  note_unknown_tags(enc, source);
  return metrics::tagging_report(gold_tags(sentences), scored.predicted, p_->entities());
}

std::string TagTask::validate_part(int64_t part, int64_t parts) {
  TagEncoded sub;
  for (size_t i = static_cast<size_t>(part); i < dev_enc_.ids.size();
       i += static_cast<size_t>(parts)) {
    sub.ids.push_back(dev_enc_.ids[i]);
    if (!dev_enc_.surfaces.empty()) sub.surfaces.push_back(dev_enc_.surfaces[i]);
    sub.first.push_back(dev_enc_.first[i]);
    sub.tags.push_back(dev_enc_.tags[i]);
  }
  const Scored s = score(sub);
  return nlohmann::json{{"predicted", s.predicted}, {"nll", s.nll},
                        {"known", s.known},         {"crf", s.crf},
                        {"crf_nll", s.crf_nll},     {"crf_words", s.crf_words}}
      .dump();
}

std::map<std::string, double> TagTask::validate_merge(const std::vector<std::string>& parts) {
  const size_t n = dev_enc_.ids.size();
  Scored all;
  all.predicted.resize(n), all.nll.resize(n), all.known.resize(n);
  for (size_t p = 0; p < parts.size(); ++p) {
    const nlohmann::json j = nlohmann::json::parse(parts[p]);
    const auto predicted = j.at("predicted").get<std::vector<std::vector<std::string>>>();
    const auto nll = j.at("nll").get<std::vector<double>>();
    const auto known = j.at("known").get<std::vector<int64_t>>();
    for (size_t k = 0; k < predicted.size(); ++k) {
      const size_t i = p + k * parts.size();
      GAZE_CHECK(i < n && nll.size() == predicted.size() && known.size() == predicted.size(),
                 StateError, "validation part {} of {} does not fit the validation data", p,
                 parts.size());
      all.predicted[i] = predicted[k], all.nll[i] = nll[k], all.known[i] = known[k];
    }
    all.crf = j.at("crf").get<bool>();
    all.crf_nll += j.at("crf_nll").get<double>();
    all.crf_words += j.at("crf_words").get<int64_t>();
  }
  const auto r = metrics::tagging_report(gold_tags(dev_), all.predicted, p_->entities());
  std::map<std::string, double> m = {{"accuracy", r.token_accuracy}, {"loss", all.mean_loss()}};
  if (p_->entities()) m["f1"] = r.micro.f1;
  return m;
}

Report TagTask::report_with_predictions(const std::vector<data::TaggedSentence>& sentences,
                                        const std::string& source) {
  const TagEncoded enc = p_->encode(sentences, source, true);
  const Scored scored = score(enc);
  note_unknown_tags(enc, source);
  const std::vector<std::vector<std::string>> gold = gold_tags(sentences);
  std::vector<nlohmann::json> rows;
  for (size_t s = 0; s < sentences.size(); ++s) {
    int64_t errors = 0;
    for (size_t w = 0; w < gold[s].size() && w < scored.predicted[s].size(); ++w)
      errors += gold[s][w] != scored.predicted[s][w];
    std::string input;
    for (const auto& word : sentences[s].words) input += (input.empty() ? "" : " ") + word;
    rows.push_back({{"input", input},
                    {"words", sentences[s].words},
                    {"gold", gold[s]},
                    {"predicted", scored.predicted[s]},
                    {"errors", errors}});
  }
  Report r = report_of(metrics::tagging_report(gold, scored.predicted, p_->entities()));
  r.predictions = std::move(rows);
  return r;
}

std::optional<Report> TagTask::test_report() {
  if (test_.empty()) return std::nullopt;
  return report_with_predictions(test_, test_source_);
}

EvalOptions TagTask::eval_defaults() const {
  EvalOptions o;
  o.data = p_->data();
  return o;
}

Report TagTask::evaluate_file(const std::string& path, const EvalOptions& o) {
  DataConfig d = p_->data();
  d.unknown_tags = o.data.unknown_tags;
  p_->set_data(d, p_->batch_tokens());
  return report_with_predictions(read_sentences(path, d), path);
}

std::vector<std::string> TagTask::training_inputs(const RunConfig& c) {
  std::vector<std::string> out;
  for (const auto& s : read_sentences(c.data.train, c.data)) {
    std::string input;
    for (const auto& w : s.words) input += (input.empty() ? "" : " ") + w;
    out.push_back(std::move(input));
  }
  return out;
}

}  // namespace gaze::tasks
