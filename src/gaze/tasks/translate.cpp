#include "gaze/tasks/translate.h"

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/core/rng.h"
#include "gaze/metrics/translation.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/ops/loss.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::tasks {
using json = nlohmann::json;

namespace {

std::shared_ptr<models::Seq2SeqModel> build_model(const RunConfig& c, int64_t src_vocab,
                                                  int64_t tgt_vocab, int64_t pad_id, bool shared) {
  auto sized = [&](auto mc) {
    mc.src_vocab_size = src_vocab, mc.tgt_vocab_size = tgt_vocab, mc.pad_id = pad_id;
    GAZE_CHECK(!mc.share_embeddings || shared, DataError,
               "{}: model.share_embeddings needs one vocabulary (target_tokenizer.kind: shared)",
               c.data.train);
    return mc;
  };
  if (c.architecture == models::Seq2SeqArchitecture::rnn)
    return std::make_shared<models::RnnSeq2Seq>(sized(c.rnn));
  return std::make_shared<models::TransformerSeq2Seq>(sized(c.seq2seq));
}

}  // namespace

std::vector<data::SentencePair> read_pairs(const std::string& path, const std::string& target,
                                           const DataConfig& d) {
  return target.empty() ? data::read_parallel(path, {d.format, d.source_column, d.target_column})
                        : data::read_parallel(path, target);
}

struct TranslateSplits {
  std::vector<data::SentencePair> train, dev, test;
};

namespace {
// Every file of the run, read before anything is trained (a bad dev file fails at once).
TranslateSplits read_splits(const DataConfig& d, std::FILE* log) {
  TranslateSplits s;
  s.train = read_pairs(d.train, d.train_target, d);
  s.dev = read_pairs(d.dev, d.dev_target, d);
  if (!d.test.empty()) s.test = read_pairs(d.test, d.test_target, d);
  std::fprintf(log, "data: %zu train pairs, %zu dev, %zu test\n", s.train.size(), s.dev.size(),
               s.test.size());
  return s;
}
}  // namespace

void TranslateTask::use_data(const RunConfig& c, TranslateSplits&& s, std::FILE* log) {
  p_->set_data(c.data, c.train.batch_tokens, c.decode);
  dev_ = std::move(s.dev);
  test_ = std::move(s.test);
  train_enc_ = p_->encode(s.train);
  dev_enc_ = p_->encode(dev_);
  dev_sources_ = distinct_sources(dev_);
  if (train_enc_.truncated + dev_enc_.truncated > 0)
    std::fprintf(log,
                 "warning: %lld pairs longer than data.max_length / max_target_length were cut\n",
                 static_cast<long long>(train_enc_.truncated + dev_enc_.truncated));
}

std::unique_ptr<TranslateTask> TranslateTask::create(const RunConfig& c, std::FILE* log) {
  TranslateSplits splits = read_splits(c.data, log);
  const auto& train = splits.train;
  const bool shared = c.target_tokenizer.kind == text::TokenizerKind::shared;
  std::vector<std::string> sources, targets;
  for (const auto& p : train) sources.push_back(p.source), targets.push_back(p.target);
  std::shared_ptr<text::Tokenizer> src, tgt;
  if (shared) {
    sources.insert(sources.end(), targets.begin(), targets.end());
    src = tgt = train_tokenizer(c.tokenizer, sources, log);
  } else {
    src = train_tokenizer(c.tokenizer, sources, log);
    tgt = train_tokenizer(c.target_tokenizer, targets, log);
  }
  std::fprintf(log, "tokenizers: source %s (%lld ids), target %s (%lld ids)%s\n",
               src->kind().c_str(), static_cast<long long>(src->vocab_size()), tgt->kind().c_str(),
               static_cast<long long>(tgt->vocab_size()), shared ? ", shared" : "");
  manual_seed(static_cast<uint64_t>(c.train.seed));
  auto model = build_model(c, src->vocab_size(), tgt->vocab_size(), tgt->pad_id(), shared);
  std::fprintf(log, "model: %s, %lld parameters\n", model->type_name().c_str(),
               static_cast<long long>(parameter_count(*model)));
  std::unique_ptr<TranslateTask> t(new TranslateTask(std::make_unique<TranslatePredictor>(
      src, tgt, std::move(model), c.data, c.train.batch_tokens, c.decode)));
  t->use_data(c, std::move(splits), log);
  return t;
}

std::unique_ptr<TranslateTask> TranslateTask::load(const std::string& dir) {
  return std::unique_ptr<TranslateTask>(new TranslateTask(TranslatePredictor::load(dir)));
}

std::unique_ptr<TranslateTask> TranslateTask::resume(const RunConfig& c, const std::string& dir,
                                                     std::FILE* log) {
  std::unique_ptr<TranslateTask> t = load(dir);
  t->use_data(c, read_splits(c.data, log), log);
  t->model().train();
  return t;
}

std::vector<int64_t> TranslateTask::train_lengths() const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < train_enc_.src.size(); ++i)
    out.push_back(
        static_cast<int64_t>(std::max(train_enc_.src[i].size(), train_enc_.tgt[i].size() + 1)));
  return out;
}

Tensor TranslateTask::logits(const PairEncoded& enc, const std::vector<int64_t>& batch,
                             Tensor* target, int64_t* tokens) const {
  const text::Tokenizer& src_tok = p_->source_tokenizer();
  const text::Tokenizer& tgt_tok = p_->target_tokenizer();
  std::vector<const std::vector<int64_t>*> src;
  std::vector<std::vector<int64_t>> tin, tout;
  for (const int64_t i : batch) {
    src.push_back(&enc.src[static_cast<size_t>(i)]);
    const auto& t = enc.tgt[static_cast<size_t>(i)];
    std::vector<int64_t> in{tgt_tok.bos_id()};
    in.insert(in.end(), t.begin(), t.end());
    std::vector<int64_t> out(t.begin(), t.end());
    out.push_back(tgt_tok.eos_id());
    tin.push_back(std::move(in)), tout.push_back(std::move(out));
  }
  std::vector<const std::vector<int64_t>*> tin_p, tout_p;
  for (size_t b = 0; b < tin.size(); ++b) tin_p.push_back(&tin[b]), tout_p.push_back(&tout[b]);
  const auto [src_ids, src_len] = pad_batch(src, src_tok.pad_id());
  const auto [tgt_in, tgt_len] = pad_batch(tin_p, tgt_tok.pad_id());
  // Targets: the next token at every position, -100 (ignored) past each length.
  auto [tgt_out, unused] = pad_batch(tout_p, -100);
  *target = reshape(tgt_out, Shape{tgt_out.numel()});
  *tokens = 0;
  for (const auto& t : tout) *tokens += static_cast<int64_t>(t.size());
  return p_->model().logits(src_ids, src_len, tgt_in, tgt_len);
}

TranslateTask::BatchLoss TranslateTask::loss(const std::vector<int64_t>& batch,
                                             double label_smoothing) {
  Tensor target;
  BatchLoss out;
  const Tensor l = logits(train_enc_, batch, &target, &out.tokens);
  CrossEntropyOptions o;
  o.label_smoothing = label_smoothing;
  out.mean = cross_entropy(reshape(l, Shape{target.numel(), l.size(2)}), target, o);
  out.divisor = cross_entropy_divisor(target, o);
  return out;
}

std::pair<double, int64_t> TranslateTask::loss_sum(const PairEncoded& enc) {
  EvalScope eval(p_->model());
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < enc.src.size(); ++i)
    lengths.push_back(static_cast<int64_t>(std::max(enc.src[i].size(), enc.tgt[i].size() + 1)));
  double total = 0;
  int64_t count = 0;
  CrossEntropyOptions o;
  o.reduction = Reduction::sum;
  for (const auto& batch : token_batches(lengths, p_->batch_tokens())) {
    Tensor target;
    int64_t tokens = 0;
    const Tensor l = logits(enc, batch, &target, &tokens);
    total += cross_entropy(reshape(l, Shape{target.numel(), l.size(2)}), target, o).item<float>();
    count += tokens;
  }
  return {total, count};
}

std::string TranslateTask::validate_part(int64_t part, int64_t parts) {
  // The distinct sources are decoded in parts, the pairs' loss (encoded once, at start-up) too.
  std::vector<std::string> sources;
  for (size_t i = static_cast<size_t>(part); i < dev_sources_.sources.size();
       i += static_cast<size_t>(parts))
    sources.push_back(dev_sources_.sources[i]);
  PairEncoded pairs;
  for (size_t i = static_cast<size_t>(part); i < dev_enc_.src.size();
       i += static_cast<size_t>(parts))
    pairs.src.push_back(dev_enc_.src[i]), pairs.tgt.push_back(dev_enc_.tgt[i]);
  const auto [loss, tokens] = loss_sum(pairs);
  return nlohmann::json{{"hypotheses", best_translations(*p_, sources, p_->search())},
                        {"loss", loss},
                        {"tokens", tokens}}
      .dump();
}

std::map<std::string, double> TranslateTask::validate_merge(const std::vector<std::string>& parts) {
  std::vector<std::string> hyps(dev_sources_.sources.size());
  double loss = 0;
  int64_t tokens = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    const nlohmann::json j = nlohmann::json::parse(parts[p]);
    const auto part = j.at("hypotheses").get<std::vector<std::string>>();
    for (size_t k = 0; k < part.size(); ++k) {
      const size_t i = p + k * parts.size();
      GAZE_CHECK(i < hyps.size(), StateError,
                 "validation part {} of {} does not fit the validation data", p, parts.size());
      hyps[i] = part[k];
    }
    loss += j.at("loss").get<double>();
    tokens += j.at("tokens").get<int64_t>();
  }
  const TranslationScores s = score_hypotheses(hyps, dev_sources_);
  return {{"bleu", s.bleu.score},
          {"chrf", s.chrf},
          {"wer", s.errors.wer},
          {"per", s.errors.per},
          {"loss", tokens > 0 ? loss / static_cast<double>(tokens) : 0.0}};
}

Report TranslateTask::report_with_predictions(const std::vector<data::SentencePair>& pairs,
                                              const decode::SearchOptions& search) {
  const DistinctSources d = distinct_sources(pairs);
  const std::vector<std::string> hyps = best_translations(*p_, d.sources, search);
  Report r = translation_report(score_hypotheses(hyps, d), search,
                                p_->source_tokenizer().kind() == "char");
  for (size_t i = 0; i < hyps.size(); ++i)
    r.predictions.push_back({{"input", d.sources[i]},
                             {"references", d.references[i]},
                             {"predicted", hyps[i]},
                             {"chrf", metrics::corpus_chrf({hyps[i]}, {d.references[i]})}});
  return r;
}

std::optional<Report> TranslateTask::test_report() {
  if (test_.empty()) return std::nullopt;
  return report_with_predictions(test_, p_->search());
}

EvalOptions TranslateTask::eval_defaults() const {
  EvalOptions o;
  o.data = p_->data();
  o.search = p_->search();
  return o;
}

Report TranslateTask::evaluate_file(const std::string& path, const EvalOptions& o) {
  decode::SearchOptions search = o.search;
  decode::widen_beam(search);
  return report_with_predictions(read_pairs(path, o.target, o.data), search);
}

std::vector<std::string> TranslateTask::training_inputs(const RunConfig& c) {
  std::vector<std::string> out;
  for (const auto& p : read_pairs(c.data.train, c.data.train_target, c.data))
    out.push_back(p.source);
  return out;
}

}  // namespace gaze::tasks
