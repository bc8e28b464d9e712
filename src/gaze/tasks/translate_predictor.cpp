#include "gaze/tasks/translate_predictor.h"

#include "gaze/text/utf8.h"

#include <algorithm>
#include <filesystem>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/core/threads.h"
#include "gaze/explain/attribution.h"
#include "gaze/explain/capture.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/softmax.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {
constexpr const char* kTargetTokenizerDir = "target_tokenizer";

// Decoding's products have few rows (beam x sources) and split poorly across threads: with 2
// threads, int8 decoding ran no faster than with one. Separate batches decode independently, so
// with several threads they are decoded side by side, one thread each (CTranslate2's
// inter_threads). The costliest batches are halved until every thread has one and the count is a
// multiple of the threads, as far as the sources allow; the costliest go first. Halving changes
// a batch's row count, not what a source's rows compute: every op works row by row (int8 exactly;
// in fp32 and bf16 oneDNN could pick other kernels for other row counts and move a near tie in
// the last bit, which none of the checks has seen: test_cli_translate.py compares two threads with
// one, and the bench translator's 200 verses came out the same in all three precisions).
std::vector<std::vector<int64_t>> thread_batches(std::vector<std::vector<int64_t>> batches,
                                                 const std::vector<int64_t>& lengths, int threads) {
  // Rows times steps, the steps growing with the longest source.
  auto cost = [&](const std::vector<int64_t>& b) {
    int64_t longest = 0;
    for (const int64_t i : b) longest = std::max(longest, lengths[static_cast<size_t>(i)]);
    return std::ssize(b) * longest;
  };
  const auto nt = static_cast<size_t>(std::max(threads, 1));
  const size_t target = (batches.size() + nt - 1) / nt * nt;
  while (batches.size() < target) {
    auto costliest = batches.end();
    for (auto it = batches.begin(); it != batches.end(); ++it)
      if (it->size() >= 2 && (costliest == batches.end() || cost(*it) > cost(*costliest)))
        costliest = it;
    if (costliest == batches.end()) break;
    const auto half = costliest->begin() + std::ssize(*costliest) / 2;
    std::vector<int64_t> second(half, costliest->end());
    costliest->erase(half, costliest->end());
    batches.push_back(std::move(second));
  }
  std::stable_sort(batches.begin(), batches.end(),
                   [&](const auto& a, const auto& b) { return cost(a) > cost(b); });
  return batches;
}

// What task.json keeps of the run.
config::Fields saved_fields(DataConfig& d, int64_t& batch_tokens, bool& shared_vocab,
                            decode::SearchOptions& search) {
  return config::join(
      config::select(
          config_fields(d, TaskKind::translate),
          {"format", "source_column", "target_column", "max_length", "max_target_length"}),
      {config::field("batch_tokens", batch_tokens, 1), config::field("shared_vocab", shared_vocab),
       config::object_field("decode", decode::config_fields(search))});
}
}  // namespace

TranslatePredictor::TranslatePredictor(std::shared_ptr<text::Tokenizer> source,
                                       std::shared_ptr<text::Tokenizer> target,
                                       std::shared_ptr<models::Seq2SeqModel> model,
                                       const DataConfig& data, int64_t batch_tokens,
                                       const decode::SearchOptions& search)
    : src_(std::move(source)),
      tgt_(std::move(target)),
      model_(std::move(model)),
      data_(data),
      batch_tokens_(batch_tokens),
      search_(search) {}

std::unique_ptr<TranslatePredictor> TranslatePredictor::load(const std::string& dir) {
  DataConfig data;
  int64_t batch_tokens = 4096;
  bool shared = true;
  decode::SearchOptions search;
  read_task_file(dir, TaskKind::translate, saved_fields(data, batch_tokens, shared, search));
  std::shared_ptr<text::Tokenizer> src = text::load_tokenizer(dir);
  std::shared_ptr<text::Tokenizer> tgt =
      shared ? src : text::load_tokenizer((fs::path(dir) / kTargetTokenizerDir).string());
  auto model = models::load_seq2seq(dir);
  model->eval();
  return std::make_unique<TranslatePredictor>(src, tgt, std::move(model), data, batch_tokens,
                                              search);
}

void TranslatePredictor::save(const std::string& dir) const {
  src_->save(dir);
  bool shared = src_ == tgt_;
  if (!shared) {
    const fs::path sub = fs::path(dir) / kTargetTokenizerDir;
    fs::create_directories(sub);
    tgt_->save(sub.string());
  }
  DataConfig d = data_;
  int64_t batch_tokens = batch_tokens_;
  decode::SearchOptions search = search_;
  write_task_file(dir, TaskKind::translate, saved_fields(d, batch_tokens, shared, search));
}

void TranslatePredictor::set_data(const DataConfig& data, int64_t batch_tokens,
                                  const decode::SearchOptions& search) {
  data_ = data;
  batch_tokens_ = batch_tokens;
  search_ = search;
}

PredictOptions TranslatePredictor::predict_defaults() const {
  PredictOptions o;
  o.search = search_;
  return o;
}

std::vector<int64_t> TranslatePredictor::encode_source(const std::string& text, bool* cut) const {
  bool clipped = false;
  std::vector<int64_t> ids = src_->encode(text::clip_for_tokens(text, data_.max_length, &clipped));
  if (clipped && cut) *cut = true;
  if (ids.empty()) ids.push_back(src_->unk_id());
  if (static_cast<int64_t>(ids.size()) > data_.max_length) {
    ids.resize(static_cast<size_t>(data_.max_length));
    if (cut) *cut = true;
  }
  ids.push_back(src_->eos_id());
  return ids;
}

InputSize TranslatePredictor::input_size(const std::string& source) const {
  InputSize size;
  size.tokens = std::ssize(encode_source(source, &size.cut));
  return size;
}

json TranslatePredictor::describe_task() const {
  decode::SearchOptions search = search_;
  return {{"architecture", enum_name(model_->architecture())},
          {"max_target_length", data_.max_target_length},
          {"decode", json::parse(config::write_object(decode::config_fields(search)))}};
}

PairEncoded TranslatePredictor::encode(const std::vector<data::SentencePair>& pairs) const {
  PairEncoded enc;
  for (const auto& p : pairs) {
    bool cut = false;
    enc.src.push_back(encode_source(p.source, &cut));
    std::vector<int64_t> tgt = tgt_->encode(p.target);
    if (static_cast<int64_t>(tgt.size()) > data_.max_target_length) {
      tgt.resize(static_cast<size_t>(data_.max_target_length));
      cut = true;
    }
    enc.tgt.push_back(std::move(tgt));
    enc.truncated += cut;
  }
  return enc;
}

std::vector<std::vector<decode::Hypothesis>> TranslatePredictor::translate(
    const std::vector<std::string>& sources, const decode::SearchOptions& o, bool alignment,
    int64_t alignment_layer) {
  EvalScope eval(*model_);
  NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> src;
  std::vector<int64_t> lengths;
  for (const auto& s : sources) {
    src.push_back(encode_source(s));
    lengths.push_back(static_cast<int64_t>(src.back().size()));
  }
  // Whatever the length options say, decoding stops at the model's position table (Transformer)
  // or at twice the longest target it was trained on (RNN): a ratio of 100 must not run for hours.
  decode::SearchOptions capped = o;
  const int64_t model_cap = model_->max_target_tokens();
  const int64_t hard =
      model_cap > 0 ? model_cap : std::max<int64_t>(16, 2 * data_.max_target_length);
  capped.max_length = o.max_length > 0 ? std::min(o.max_length, hard) : hard;
  const bool greedy = o.method == decode::SearchMethod::greedy;
  const int64_t rows = greedy ? 1 : o.beam_size;
  // Each source takes `rows` decoder rows: batches hold at most batch_tokens source tokens in all.
  const auto batches = thread_batches(
      token_batches(lengths, std::max<int64_t>(1, batch_tokens_ / rows)), lengths, num_threads());
  std::vector<std::vector<decode::Hypothesis>> out(sources.size());
  const int64_t bos = tgt_->bos_id(), eos = tgt_->eos_id();
  parallel_tasks(std::ssize(batches), [&](int64_t task) {
    const std::vector<int64_t>& batch = batches[static_cast<size_t>(task)];
    std::vector<const std::vector<int64_t>*> seqs;
    std::vector<int64_t> lens;
    for (const int64_t i : batch) {
      seqs.push_back(&src[static_cast<size_t>(i)]);
      lens.push_back(lengths[static_cast<size_t>(i)]);
    }
    const auto [ids, len_t] = pad_batch(seqs, src_->pad_id());
    models::StepOptions so;
    so.rows_per_source = rows;
    so.alignment = alignment;
    so.alignment_layer = alignment_layer;
    auto dec = model_->start_decoding(ids, len_t, so);
    if (greedy) {
      auto hyps = decode::greedy_search(*dec, lens, bos, eos, capped, alignment);
      for (size_t b = 0; b < batch.size(); ++b)
        out[static_cast<size_t>(batch[b])] = {std::move(hyps[b])};
    } else {
      auto hyps = decode::beam_search(*dec, lens, bos, eos, capped, alignment);
      for (size_t b = 0; b < batch.size(); ++b)
        out[static_cast<size_t>(batch[b])] = std::move(hyps[b]);
    }
    if (alignment)  // drop the padding columns of each source
      for (size_t b = 0; b < batch.size(); ++b)
        for (auto& h : out[static_cast<size_t>(batch[b])])
          for (auto& row : h.alignment) row.resize(static_cast<size_t>(lens[b]));
  });
  return out;
}

json TranslatePredictor::blank_prediction(const PredictOptions&) const {
  return {{"translation_text", ""}};
}

std::vector<json> TranslatePredictor::predict_texts(const std::vector<std::string>& sources,
                                                    const PredictOptions& o) {
  decode::SearchOptions so = o.search;
  decode::widen_beam(so);
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
      std::vector<std::string> tgt_pieces = pieces(*tgt_, best.tokens);
      if (best.finished) tgt_pieces.push_back(tgt_->id_to_piece(tgt_->eos_id()));
      std::vector<int64_t> hard;
      for (const auto& row : best.alignment)
        hard.push_back(std::max_element(row.begin(), row.end()) - row.begin());
      j["alignment"] = {{"source_tokens", pieces(*src_, encode_source(sources[i]))},
                        {"target_tokens", tgt_pieces},
                        {"weights", best.alignment},
                        {"hard", hard}};
    }
    out.push_back(std::move(j));
  }
  return out;
}

explain::Explanation TranslatePredictor::explain_input(const std::string& text,
                                                       const ExplainOptions& o) {
  explain::Explanation e = begin_explanation(kind(), text, o);
  EvalScope eval(*model_);
  decode::SearchOptions so = o.search;
  decode::widen_beam(so);
  const auto hyps = translate({text}, so);
  e.prediction = hyps[0].empty() ? json{{"translation_text", ""}}
                                 : json{{"translation_text", detokenize(hyps[0][0].tokens)},
                                        {"score", hyps[0][0].score}};
  // Teacher-force the best hypothesis: decoder input BOS + its tokens (the last one only when EOS
  // followed it), each row predicting the next output token.
  std::vector<int64_t> out = hyps[0].empty() ? std::vector<int64_t>{} : hyps[0][0].tokens;
  const bool finished = hyps[0].empty() || hyps[0][0].finished;
  if (finished || out.empty()) out.push_back(tgt_->eos_id());
  std::vector<int64_t> tgt_in = {tgt_->bos_id()};
  tgt_in.insert(tgt_in.end(), out.begin(), out.end() - 1);
  bool cut = false;
  const std::vector<int64_t> src = encode_source(text, &cut);
  e.truncated = cut;
  e.architecture = enum_name(model_->architecture());
  e.tokens = pieces(*src_, src);
  e.framing = framing(*src_, src);
  e.token_ids = src;
  e.target_tokens = pieces(*tgt_, tgt_in);
  e.target_token_ids = tgt_in;
  e.output_tokens = pieces(*tgt_, out);
  e.blocks = explain::capture(*model_, src, tgt_in, {o.layers, o.heads});
  // An RNN has one attention; a Transformer's alignment is by default the last layer captured.
  e.alignment_layer = model_->architecture() == models::Seq2SeqArchitecture::rnn ? 0
                      : o.alignment_layer == -1 && !o.layers.empty()             ? o.layers.back()
                                                                     : o.alignment_layer;
  explain::finish(e);
  if (o.method != explain::Method::attention) attribute(e, src, tgt_in, out, o);
  return e;
}

void TranslatePredictor::attribute(explain::Explanation& e, const std::vector<int64_t>& src,
                                   const std::vector<int64_t>& tgt_in,
                                   const std::vector<int64_t>& out, const ExplainOptions& o) {
  using explain::Method;
  EvalScope eval(*model_);
  const auto S = std::ssize(src), K = std::ssize(out);
  const Tensor src_t = Tensor::from_vector(src, Shape{1, S});
  const Tensor tgt_t = Tensor::from_vector(tgt_in, Shape{1, K});
  e.explained_output = "log p(output token)";
  explain::Objective f;
  {
    NoGradGuard no_grad;
    f.embeddings = model_->source_lookup(src_t).detach();
  }
  Tensor pick;  // one-hot [1, K, vocab] of the output tokens, built at the first call
  f.output = [&](const Tensor& x, nn::AttentionCapture*) {
    const int64_t n = x.size(0);
    const Tensor srcs = cat(std::vector<Tensor>(static_cast<size_t>(n), src_t), 0);
    const Tensor tgts = cat(std::vector<Tensor>(static_cast<size_t>(n), tgt_t), 0);
    const Tensor lp = log_softmax(model_->logits_from_source_embeddings(
                                      srcs, x, Tensor::full(Shape{n}, double(S), DType::i64), tgts,
                                      Tensor::full(Shape{n}, double(K), DType::i64)),
                                  -1);  // [n, K, vocab]
    if (!pick.defined()) {
      pick = Tensor::zeros(Shape{1, K, lp.size(2)});
      for (int64_t k = 0; k < K; ++k) pick.data<float>()[k * lp.size(2) + out[size_t(k)]] = 1.0f;
    }
    return sum(mul(lp, pick), {2});  // [n, K]
  };
  const bool all = o.method == Method::all;
  if (e.alignment.defined()) {  // the alignment's rows, as the attention-based ranking
    explain::TokenAttribution a{"attention", e.alignment.to_vector<float>()};
    a.outputs = K;
    e.attributions.push_back(std::move(a));
  }
  add_gradient_attributions(e, f, o, src_->unk_id(),
                            [&](const Tensor& ids) { return model_->source_lookup(ids); });
  for (const auto& p : model_->parameters()) p.zero_grad();  // gradients were a means, not a step

  if (!all && !o.faithfulness) return;
  // Faithfulness: source tokens leave or enter in each method's order (its scores summed over the
  // output tokens), and the curve follows the log-probability of the whole translation found.
  const std::vector<bool>& fixed = e.framing;
  const explain::KeepEvaluator evaluate = [&](const std::vector<std::vector<bool>>& keep) {
    NoGradGuard no_grad;
    std::vector<double> values;
    constexpr size_t kChunk = 32;
    for (size_t c0 = 0; c0 < keep.size(); c0 += kChunk) {
      const size_t n = std::min(kChunk, keep.size() - c0);
      std::vector<std::vector<int64_t>> rows;
      int64_t longest = 1;
      for (size_t v = c0; v < c0 + n; ++v) {
        std::vector<int64_t> ids;
        for (size_t t = 0; t < src.size(); ++t)
          if (keep[v][t]) ids.push_back(src[t]);
        if (ids.empty()) ids.push_back(src_->unk_id());  // nothing left: one unknown token
        longest = std::max<int64_t>(longest, std::ssize(ids));
        rows.push_back(std::move(ids));
      }
      const auto N = static_cast<int64_t>(n);
      Tensor srcs =
          Tensor::full(Shape{N, longest}, static_cast<double>(src_->pad_id()), DType::i64);
      Tensor lens = Tensor::empty(Shape{N}, DType::i64);
      for (int64_t r = 0; r < N; ++r) {
        std::copy(rows[size_t(r)].begin(), rows[size_t(r)].end(),
                  srcs.data<int64_t>() + r * longest);
        lens.data<int64_t>()[r] = std::ssize(rows[size_t(r)]);
      }
      const Tensor lp =
          log_softmax(model_->logits(srcs, lens, cat(std::vector<Tensor>(n, tgt_t), 0),
                                     Tensor::full(Shape{N}, double(K), DType::i64)),
                      -1);  // [N, K, vocab]
      const int64_t V = lp.size(2);
      for (int64_t r = 0; r < N; ++r) {
        double total = 0;
        for (int64_t k = 0; k < K; ++k) total += lp.data<float>()[(r * K + k) * V + out[size_t(k)]];
        values.push_back(total);
      }
    }
    return values;
  };
  for (const auto& a : e.attributions) {
    std::vector<float> per_source(static_cast<size_t>(S), 0.0f);
    for (int64_t k = 0; k < a.outputs; ++k)
      for (int64_t t = 0; t < S; ++t) per_source[size_t(t)] += a.scores[size_t(k * S + t)];
    e.faithfulness.push_back(explain::faithfulness(a.method, per_source, fixed, evaluate));
  }
  e.faithfulness.push_back(explain::random_faithfulness(fixed, evaluate));
}

}  // namespace gaze::tasks
