#include "gaze/tasks/translate.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>

#include "gaze/autograd/grad_mode.h"
#include "gaze/core/error.h"
#include "gaze/core/rng.h"
#include "gaze/data/batching.h"
#include "gaze/decode/step_decoder.h"
#include "gaze/io/files.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/ops/ops.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kTargetTokenizerDir = "target_tokenizer";

json search_json(const decode::SearchOptions& o) {
  return {{"method", o.method},
          {"beam_size", o.beam_size},
          {"length_penalty", o.length_penalty},
          {"max_length_ratio", o.max_length_ratio},
          {"max_length_offset", o.max_length_offset},
          {"nbest", o.nbest}};
}

decode::SearchOptions search_from_json(const json& j) {
  decode::SearchOptions o;
  if (!j.is_object()) return o;
  o.method = j.value("method", o.method);
  o.beam_size = j.value("beam_size", o.beam_size);
  o.length_penalty = j.value("length_penalty", o.length_penalty);
  o.max_length_ratio = j.value("max_length_ratio", o.max_length_ratio);
  o.max_length_offset = j.value("max_length_offset", o.max_length_offset);
  o.nbest = j.value("nbest", o.nbest);
  return o;
}

// Unique sources in order of first appearance, with the indices of their pairs.
std::vector<std::pair<std::string, std::vector<size_t>>> group_sources(
    const std::vector<data::SentencePair>& pairs) {
  std::vector<std::pair<std::string, std::vector<size_t>>> groups;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < pairs.size(); ++i) {
    auto [it, fresh] = index.emplace(pairs[i].source, groups.size());
    if (fresh) groups.push_back({pairs[i].source, {}});
    groups[it->second].second.push_back(i);
  }
  return groups;
}

}  // namespace

std::vector<data::SentencePair> read_pairs(const std::string& path, const std::string& target,
                                           const data::ParallelFormat& format) {
  return target.empty() ? data::read_parallel(path, format) : data::read_parallel(path, target);
}

void TranslateTask::read_data(const RunConfig& c, std::FILE* log) {
  const auto& d = c.data;
  format_ = {d.format, d.source_column, d.target_column};
  train_ = read_pairs(d.train, d.train_target, format_);
  dev_ = read_pairs(d.dev, d.dev_target, format_);
  if (!d.test.empty()) test_ = read_pairs(d.test, d.test_target, format_);
  std::fprintf(log, "data: %zu train pairs, %zu dev, %zu test\n", train_.size(), dev_.size(),
               test_.size());
}

std::unique_ptr<TranslateTask> TranslateTask::create(const RunConfig& c, std::FILE* log) {
  std::unique_ptr<TranslateTask> t(new TranslateTask());
  t->max_length_ = c.data.max_length;
  t->max_target_length_ = c.data.max_target_length;
  t->batch_tokens_ = c.train.batch_tokens;
  t->search_ = c.decode;
  t->read_data(c, log);
  t->shared_vocab_ = c.target_tokenizer.kind == "shared";
  std::vector<std::string> sources, targets;
  for (const auto& p : t->train_) sources.push_back(p.source), targets.push_back(p.target);
  if (t->shared_vocab_) {
    std::vector<std::string> both = sources;
    both.insert(both.end(), targets.begin(), targets.end());
    t->src_tok_ = text::train_tokenizer(c.tokenizer, both);
    t->tgt_tok_ = t->src_tok_;
  } else {
    t->src_tok_ = text::train_tokenizer(c.tokenizer, sources);
    t->tgt_tok_ = text::train_tokenizer(c.target_tokenizer, targets);
  }
  std::fprintf(log, "tokenizers: source %s (%lld ids), target %s (%lld ids)%s\n",
               t->src_tok_->kind().c_str(), static_cast<long long>(t->src_tok_->vocab_size()),
               t->tgt_tok_->kind().c_str(), static_cast<long long>(t->tgt_tok_->vocab_size()),
               t->shared_vocab_ ? ", shared" : "");
  manual_seed(static_cast<uint64_t>(c.train.seed));
  if (c.architecture == "rnn") {
    models::RnnSeq2SeqConfig mc = c.rnn;
    mc.src_vocab_size = t->src_tok_->vocab_size(), mc.tgt_vocab_size = t->tgt_tok_->vocab_size();
    mc.pad_id = t->tgt_tok_->pad_id();
    GAZE_CHECK(!mc.share_embeddings || t->shared_vocab_, DataError,
               "{}: model.share_embeddings needs one vocabulary (target_tokenizer.kind: shared)",
               c.data.train);
    t->model_ = std::make_shared<models::RnnSeq2Seq>(mc);
  } else {
    models::Seq2SeqConfig mc = c.seq2seq;
    mc.src_vocab_size = t->src_tok_->vocab_size(), mc.tgt_vocab_size = t->tgt_tok_->vocab_size();
    mc.pad_id = t->tgt_tok_->pad_id();
    GAZE_CHECK(!mc.share_embeddings || t->shared_vocab_, DataError,
               "{}: model.share_embeddings needs one vocabulary (target_tokenizer.kind: shared)",
               c.data.train);
    t->model_ = std::make_shared<models::TransformerSeq2Seq>(mc);
  }
  int64_t params = 0;
  for (const Tensor& p : t->model_->parameters()) params += p.numel();
  std::fprintf(log, "model: %s, %lld parameters\n",
               c.architecture == "rnn" ? "RnnSeq2Seq" : "TransformerSeq2Seq",
               static_cast<long long>(params));
  t->train_enc_ = t->encode(t->train_);
  t->dev_enc_ = t->encode(t->dev_);
  if (t->train_enc_.truncated + t->dev_enc_.truncated > 0)
    std::fprintf(log,
                 "warning: %lld pairs longer than data.max_length / max_target_length were cut\n",
                 static_cast<long long>(t->train_enc_.truncated + t->dev_enc_.truncated));
  return t;
}

std::unique_ptr<TranslateTask> TranslateTask::load(const std::string& dir) {
  std::unique_ptr<TranslateTask> t(new TranslateTask());
  const json task = read_task_file(dir, "translate");
  t->format_ = {task.value("format", "auto"), task.value("source_column", "source"),
                task.value("target_column", "target")};
  t->max_length_ = task.value("max_length", int64_t{256});
  t->max_target_length_ = task.value("max_target_length", int64_t{256});
  t->batch_tokens_ = task.value("batch_tokens", int64_t{4096});
  t->shared_vocab_ = task.value("shared_vocab", true);
  t->search_ = search_from_json(task.value("decode", json::object()));
  t->src_tok_ = text::load_tokenizer(dir);
  t->tgt_tok_ = t->shared_vocab_ ? t->src_tok_
                                 : std::shared_ptr<text::Tokenizer>(text::load_tokenizer(
                                       (fs::path(dir) / kTargetTokenizerDir).string()));
  t->model_ = models::load_model(dir);
  GAZE_CHECK(dynamic_cast<models::TransformerSeq2Seq*>(t->model_.get()) ||
                 dynamic_cast<models::RnnSeq2Seq*>(t->model_.get()),
             DataError, "{}: the model is not an encoder-decoder", dir);
  t->model_->eval();
  return t;
}

std::unique_ptr<TranslateTask> TranslateTask::resume(const RunConfig& c, const std::string& dir,
                                                     std::FILE* log) {
  std::unique_ptr<TranslateTask> t = load(dir);
  t->max_length_ = c.data.max_length;
  t->max_target_length_ = c.data.max_target_length;
  t->batch_tokens_ = c.train.batch_tokens;
  t->search_ = c.decode;
  t->read_data(c, log);
  t->train_enc_ = t->encode(t->train_);
  t->dev_enc_ = t->encode(t->dev_);
  t->model_->train();
  return t;
}

std::vector<int64_t> TranslateTask::encode_source(const std::string& text, bool* cut) const {
  std::vector<int64_t> ids = src_tok_->encode(text);
  if (ids.empty()) ids.push_back(src_tok_->unk_id());
  if (static_cast<int64_t>(ids.size()) > max_length_) {
    ids.resize(static_cast<size_t>(max_length_));
    if (cut) *cut = true;
  }
  ids.push_back(src_tok_->eos_id());
  return ids;
}

PairEncoded TranslateTask::encode(const std::vector<data::SentencePair>& pairs) const {
  PairEncoded enc;
  for (const auto& p : pairs) {
    bool cut = false;
    enc.src.push_back(encode_source(p.source, &cut));
    std::vector<int64_t> tgt = tgt_tok_->encode(p.target);
    if (static_cast<int64_t>(tgt.size()) > max_target_length_) {
      tgt.resize(static_cast<size_t>(max_target_length_));
      cut = true;
    }
    enc.tgt.push_back(std::move(tgt));
    enc.truncated += cut;
  }
  return enc;
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
  std::vector<const std::vector<int64_t>*> src;
  std::vector<std::vector<int64_t>> tin, tout;
  for (const int64_t i : batch) {
    src.push_back(&enc.src[static_cast<size_t>(i)]);
    const auto& t = enc.tgt[static_cast<size_t>(i)];
    std::vector<int64_t> in{tgt_tok_->bos_id()};
    in.insert(in.end(), t.begin(), t.end());
    std::vector<int64_t> out(t.begin(), t.end());
    out.push_back(tgt_tok_->eos_id());
    tin.push_back(std::move(in)), tout.push_back(std::move(out));
  }
  std::vector<const std::vector<int64_t>*> tin_p, tout_p;
  for (size_t b = 0; b < tin.size(); ++b) tin_p.push_back(&tin[b]), tout_p.push_back(&tout[b]);
  const auto [src_ids, src_len] = pad_batch(src, src_tok_->pad_id());
  const auto [tgt_in, tgt_len] = pad_batch(tin_p, tgt_tok_->pad_id());
  // Targets: the next token at every position, -100 (ignored) past each length.
  auto [tgt_out, unused] = pad_batch(tout_p, -100);
  *target = reshape(tgt_out, Shape{tgt_out.numel()});
  *tokens = 0;
  for (const auto& t : tout) *tokens += static_cast<int64_t>(t.size());
  if (const auto* t = dynamic_cast<const models::TransformerSeq2Seq*>(model_.get()))
    return t->forward(src_ids, src_len, tgt_in, tgt_len);
  return static_cast<const models::RnnSeq2Seq&>(*model_).forward(src_ids, src_len, tgt_in);
}

Tensor TranslateTask::loss(const std::vector<int64_t>& batch, double label_smoothing,
                           int64_t* tokens) {
  Tensor target;
  const Tensor l = logits(train_enc_, batch, &target, tokens);
  CrossEntropyOptions o;
  o.label_smoothing = label_smoothing;
  return cross_entropy(reshape(l, Shape{target.numel(), l.size(2)}), target, o);
}

double TranslateTask::mean_loss(const PairEncoded& enc) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < enc.src.size(); ++i)
    lengths.push_back(static_cast<int64_t>(std::max(enc.src[i].size(), enc.tgt[i].size() + 1)));
  double total = 0;
  int64_t count = 0;
  CrossEntropyOptions o;
  o.reduction = Reduction::sum;
  for (const auto& batch : data::make_batches(lengths, {batch_tokens_, 0, false}, nullptr)) {
    Tensor target;
    int64_t tokens = 0;
    const Tensor l = logits(enc, batch, &target, &tokens);
    total += cross_entropy(reshape(l, Shape{target.numel(), l.size(2)}), target, o).item<float>();
    count += tokens;
  }
  return count > 0 ? total / static_cast<double>(count) : 0.0;
}

std::vector<std::vector<decode::Hypothesis>> TranslateTask::translate(
    const std::vector<std::string>& sources, const decode::SearchOptions& o, bool alignment,
    int64_t alignment_layer) {
  GAZE_CHECK(o.method == "greedy" || o.method == "beam", DataError,
             "decode.method must be beam or greedy, got '{}'", o.method);
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> src;
  std::vector<int64_t> lengths;
  for (const auto& s : sources) {
    src.push_back(encode_source(s));
    lengths.push_back(static_cast<int64_t>(src.back().size()));
  }
  const bool greedy = o.method == "greedy";
  const int64_t rows = greedy ? 1 : o.beam_size;
  // Each source takes `rows` decoder rows: batches hold at most batch_tokens source tokens in all.
  const auto batches =
      data::make_batches(lengths, {std::max<int64_t>(1, batch_tokens_ / rows), 0, false}, nullptr);
  std::vector<std::vector<decode::Hypothesis>> out(sources.size());
  for (const auto& batch : batches) {
    std::vector<const std::vector<int64_t>*> seqs;
    std::vector<int64_t> lens;
    for (const int64_t i : batch) {
      seqs.push_back(&src[static_cast<size_t>(i)]);
      lens.push_back(lengths[static_cast<size_t>(i)]);
    }
    const auto [ids, len_t] = pad_batch(seqs, src_tok_->pad_id());
    decode::StepOptions so;
    so.rows_per_source = rows;
    so.alignment = alignment;
    so.alignment_layer = alignment_layer;
    auto dec = decode::start_decoding(*model_, ids, len_t, so);
    const int64_t bos = tgt_tok_->bos_id(), eos = tgt_tok_->eos_id();
    if (greedy) {
      auto hyps = decode::greedy_search(*dec, lens, bos, eos, o, alignment);
      for (size_t b = 0; b < batch.size(); ++b)
        out[static_cast<size_t>(batch[b])] = {std::move(hyps[b])};
    } else {
      auto hyps = decode::beam_search(*dec, lens, bos, eos, o, alignment);
      for (size_t b = 0; b < batch.size(); ++b)
        out[static_cast<size_t>(batch[b])] = std::move(hyps[b]);
    }
    if (alignment)  // drop the padding columns of each source
      for (size_t b = 0; b < batch.size(); ++b)
        for (auto& h : out[static_cast<size_t>(batch[b])])
          for (auto& row : h.alignment) row.resize(static_cast<size_t>(lens[b]));
  }
  return out;
}

TranslationScores TranslateTask::score(const std::vector<data::SentencePair>& pairs,
                                       const decode::SearchOptions& o) {
  const auto groups = group_sources(pairs);
  std::vector<std::string> sources;
  std::vector<std::vector<std::string>> refs;
  for (const auto& [src, idx] : groups) {
    sources.push_back(src);
    std::vector<std::string> r;
    for (const size_t i : idx) r.push_back(pairs[i].target);
    refs.push_back(std::move(r));
  }
  std::vector<std::string> hyps;
  for (const auto& h : translate(sources, o))
    hyps.push_back(h.empty() ? std::string() : detokenize(h[0].tokens));
  TranslationScores s;
  s.bleu = metrics::corpus_bleu(hyps, refs);
  s.chrf = metrics::corpus_chrf(hyps, refs);
  s.errors = metrics::error_rates(hyps, refs);
  s.sources = static_cast<int64_t>(sources.size());
  s.pairs = static_cast<int64_t>(pairs.size());
  return s;
}

std::map<std::string, double> TranslateTask::validate() {
  const TranslationScores s = score(dev_, search_);
  const double loss = mean_loss(dev_enc_);  // the dev pairs are encoded once, at start-up
  return {{"bleu", s.bleu.score},
          {"chrf", s.chrf},
          {"wer", s.errors.wer},
          {"per", s.errors.per},
          {"loss", loss}};
}

Report TranslateTask::make_report(const TranslationScores& s) const {
  const std::string text = fmt::format(
      "{}\nchrF2 = {:.2f}\nWER = {:.2f} (outputs equal to no reference, of {} sources)\nPER = "
      "{:.2f} "
      "(token edit distance / {} reference tokens)\n{} pairs, {} distinct sources; decoding: "
      "{}{}\n",
      metrics::to_string(s.bleu), s.chrf, s.errors.wer, s.errors.examples, s.errors.per,
      s.errors.reference_tokens, s.pairs, s.sources, search_.method,
      search_.method == "beam"
          ? fmt::format(" (beam {}, length penalty {})", search_.beam_size, search_.length_penalty)
          : "");
  const json j = {{"bleu", s.bleu.score},
                  {"bleu_precisions", s.bleu.precisions},
                  {"bleu_bp", s.bleu.bp},
                  {"sys_len", s.bleu.sys_len},
                  {"ref_len", s.bleu.ref_len},
                  {"chrf", s.chrf},
                  {"wer", s.errors.wer},
                  {"per", s.errors.per},
                  {"pairs", s.pairs},
                  {"sources", s.sources},
                  {"decode", search_json(search_)}};
  return Report{text, j.dump(2), s.pairs};
}

std::optional<Report> TranslateTask::test_report() {
  if (test_.empty()) return std::nullopt;
  return make_report(score(test_, search_));
}

Report TranslateTask::evaluate_file(const std::string& path, const EvalOptions& o) {
  if (o.search) search_ = *o.search;
  return make_report(score(read_pairs(path, o.target_file, format_), search_));
}

std::vector<json> TranslateTask::predict(const std::vector<std::string>& sources,
                                         const PredictOptions& o) {
  const decode::SearchOptions so = o.search ? *o.search : search_;
  const auto hyps = translate(sources, so, o.alignment, o.alignment_layer);
  std::vector<json> out;
  for (size_t i = 0; i < sources.size(); ++i) {
    if (hyps[i].empty()) {  // only with degenerate vocabularies: nothing but EOS past rank K
      out.push_back({{"translation_text", ""}});
      continue;
    }
    const auto& best = hyps[i].front();
    json j = {{"translation_text", detokenize(best.tokens)}};
    if (o.scores) j["score"] = best.score, j["log_prob"] = best.log_prob;
    if (so.nbest > 1) {
      json list = json::array();
      for (const auto& h : hyps[i])
        list.push_back({{"translation_text", detokenize(h.tokens)}, {"score", h.score}});
      j["nbest"] = list;
    }
    if (o.alignment) {
      std::vector<std::string> src_pieces, tgt_pieces;
      for (const int64_t id : encode_source(sources[i]))
        src_pieces.push_back(src_tok_->id_to_piece(id));
      for (const int64_t id : best.tokens) tgt_pieces.push_back(tgt_tok_->id_to_piece(id));
      if (best.finished) tgt_pieces.push_back(tgt_tok_->id_to_piece(tgt_tok_->eos_id()));
      std::vector<int64_t> hard;
      for (const auto& row : best.alignment)
        hard.push_back(std::max_element(row.begin(), row.end()) - row.begin());
      j["alignment"] = {{"source_tokens", src_pieces},
                        {"target_tokens", tgt_pieces},
                        {"weights", best.alignment},
                        {"hard", hard}};
    }
    out.push_back(std::move(j));
  }
  return out;
}

void TranslateTask::save_assets(const std::string& dir) const {
  src_tok_->save(dir);
  if (!shared_vocab_) {
    const fs::path sub = fs::path(dir) / kTargetTokenizerDir;
    fs::create_directories(sub);
    tgt_tok_->save(sub.string());
  }
  write_task_file(dir, {{"task", "translate"},
                        {"format", format_.format},
                        {"source_column", format_.source_column},
                        {"target_column", format_.target_column},
                        {"max_length", max_length_},
                        {"max_target_length", max_target_length_},
                        {"batch_tokens", batch_tokens_},
                        {"shared_vocab", shared_vocab_},
                        {"decode", search_json(search_)}});
}

}  // namespace gaze::tasks
