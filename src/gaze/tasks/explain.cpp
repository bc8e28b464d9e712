// Task::explain for each task: tokenize as the task does, capture the model's attention on the same
// forward pass shape it predicts with, and attach the task's own prediction.
#include "gaze/core/error.h"
#include "gaze/explain/capture.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/classify.h"
#include "gaze/tasks/tag.h"
#include "gaze/tasks/translate.h"
#include "gaze/text/utf8.h"

namespace gaze::tasks {
namespace {

std::vector<std::string> pieces(const text::Tokenizer& tok, const std::vector<int64_t>& ids) {
  std::vector<std::string> out;
  for (const int64_t id : ids) out.push_back(tok.id_to_piece(id));
  return out;
}

explain::Explanation begin(const std::string& task, const std::string& text) {
  GAZE_CHECK(!text.empty(), DataError, "explain: the input text is empty");
  const size_t bad = text::find_invalid_utf8(text);
  GAZE_CHECK(bad == std::string::npos, DataError, "explain: the input is not valid UTF-8 (byte {})",
             bad + 1);
  explain::Explanation e;
  e.task = task;
  e.text = text;
  return e;
}

// The encoder block of a classifier or tagger on token ids `ids`.
template <class Model>
void capture_encoder(explain::Explanation& e, const Model& model, const text::Tokenizer& tok,
                     const std::vector<int64_t>& ids, const explain::CaptureOptions& c) {
  e.architecture = "transformer";
  e.tokens = pieces(tok, ids);
  e.token_ids = ids;
  e.blocks = {explain::capture(model, ids, c)};
}

}  // namespace

explain::Explanation ClassifyTask::explain(const std::string& text, const ExplainOptions& o) {
  explain::Explanation e = begin(name(), text);
  EvalScope eval(*model_);
  const Encoded enc = encode({{text, "", 0}}, "input", false);
  e.truncated = enc.truncated > 0;
  capture_encoder(e, *model_, *tokenizer_, enc.ids[0], o.capture);
  PredictOptions p;
  p.top_k = std::min<int64_t>(5, static_cast<int64_t>(labels_.size()));
  e.prediction = predict({text}, p)[0];
  e.pooling = model_->config.pooling;
  explain::finish(e);
  return e;
}

explain::Explanation TagTask::explain(const std::string& text, const ExplainOptions& o) {
  explain::Explanation e = begin(name(), text);
  EvalScope eval(*model_);
  data::TaggedSentence s;
  for (const auto& w : data::split_words(text)) s.words.push_back(w.word);
  GAZE_CHECK(!s.words.empty(), DataError, "explain: the input has no words");
  const TagEncoded enc = encode({s}, "input", false);
  e.truncated = enc.truncated > 0;
  capture_encoder(e, *model_, *tokenizer_, enc.ids[0], o.capture);
  e.prediction = predict({text}, {})[0];
  explain::finish(e);
  return e;
}

explain::Explanation TranslateTask::explain(const std::string& text, const ExplainOptions& o) {
  explain::Explanation e = begin(name(), text);
  EvalScope eval(*model_);
  const decode::SearchOptions so = o.search ? *o.search : search_;
  const auto hyps = translate({text}, so);
  e.prediction = hyps[0].empty()
                     ? nlohmann::json{{"translation_text", ""}}
                     : nlohmann::json{{"translation_text", detokenize(hyps[0][0].tokens)},
                                      {"score", hyps[0][0].score}};
  // Teacher-force the best hypothesis: decoder input BOS + its tokens (the last one only when EOS
  // followed it), each row predicting the next output token.
  std::vector<int64_t> out = hyps[0].empty() ? std::vector<int64_t>{} : hyps[0][0].tokens;
  const bool finished = hyps[0].empty() || hyps[0][0].finished;
  if (finished) out.push_back(tgt_tok_->eos_id());
  if (out.empty()) out.push_back(tgt_tok_->eos_id());
  std::vector<int64_t> tgt_in = {tgt_tok_->bos_id()};
  tgt_in.insert(tgt_in.end(), out.begin(), out.end() - 1);

  bool cut = false;
  const std::vector<int64_t> src = encode_source(text, &cut);
  e.truncated = cut;
  e.tokens = pieces(*src_tok_, src);
  e.token_ids = src;
  e.target_tokens = pieces(*tgt_tok_, tgt_in);
  e.target_token_ids = tgt_in;
  e.output_tokens = pieces(*tgt_tok_, out);
  if (const auto* t = dynamic_cast<const models::TransformerSeq2Seq*>(model_.get())) {
    e.architecture = "transformer";
    e.blocks = explain::capture(*t, src, tgt_in, o.capture);
    // By default the last layer captured.
    e.alignment_layer = o.alignment_layer == -1 && !o.capture.layers.empty()
                            ? o.capture.layers.back()
                            : o.alignment_layer;
  } else {
    const auto& r = dynamic_cast<const models::RnnSeq2Seq&>(*model_);
    e.architecture = "rnn";
    GAZE_CHECK(o.capture.layers.empty() && o.capture.heads.empty(), ValueError,
               "explain: an RNN model has one attention (no layers or heads to choose)");
    e.blocks = {explain::capture(r, src, tgt_in)};
    e.alignment_layer = 0;
  }
  explain::finish(e);
  return e;
}

}  // namespace gaze::tasks
