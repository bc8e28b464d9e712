// Translation inference (and other sequence-to-sequence tasks such as spelling -> phonemes):
// sources -> source pieces + EOS -> batches by tokens -> greedy or beam search on any Seq2SeqModel
// -> detokenized text, with scores, n-best lists and alignments on request, and explanations.
#pragma once

#include <memory>

#include "gaze/data/parallel.h"
#include "gaze/decode/search.h"
#include "gaze/models/seq2seq.h"
#include "gaze/tasks/predictor.h"

namespace gaze::tasks {

struct PairEncoded {
  std::vector<std::vector<int64_t>> src;  // source ids + EOS
  std::vector<std::vector<int64_t>> tgt;  // target ids (no BOS/EOS)
  int64_t truncated = 0;
};

class TranslatePredictor : public Predictor {
 public:
  TranslatePredictor(std::shared_ptr<text::Tokenizer> source,
                     std::shared_ptr<text::Tokenizer> target,
                     std::shared_ptr<models::Seq2SeqModel> model, const DataConfig& data,
                     int64_t batch_tokens, const decode::SearchOptions& search);
  static std::unique_ptr<TranslatePredictor> load(const std::string& dir);
  void save(const std::string& dir) const;

  TaskKind kind() const override { return TaskKind::translate; }
  PredictOptions predict_defaults() const override;
  // {"translation_text"}, plus "score"/"log_prob", "nbest" and "alignment" on request.
  std::vector<nlohmann::json> predict_texts(const std::vector<std::string>& sources,
                                            const PredictOptions& options) override;
  // An empty translation, as Marian gives an empty line for one.
  nlohmann::json blank_prediction(const PredictOptions& options) const override;
  InputSize input_size(const std::string& source) const override;
  int64_t max_length() const override { return data_.max_length; }

  // Hypotheses (best first) for every source text.
  std::vector<std::vector<decode::Hypothesis>> translate(const std::vector<std::string>& sources,
                                                         const decode::SearchOptions& options,
                                                         bool alignment = false,
                                                         int64_t alignment_layer = -1);
  std::string detokenize(const std::vector<int64_t>& ids) const { return tgt_->decode(ids); }
  // Source ids cut to max_length, then EOS (cut: set when the text was cut).
  std::vector<int64_t> encode_source(const std::string& text, bool* cut = nullptr) const;
  PairEncoded encode(const std::vector<data::SentencePair>& pairs) const;
  const text::Tokenizer& source_tokenizer() const { return *src_; }
  const text::Tokenizer& target_tokenizer() const { return *tgt_; }

  const DataConfig& data() const { return data_; }
  void set_data(const DataConfig& data, int64_t batch_tokens, const decode::SearchOptions& search);
  int64_t batch_tokens() const { return batch_tokens_; }
  const decode::SearchOptions& search() const { return search_; }
  models::Seq2SeqModel& model() { return *model_; }
  nn::Module& module() override { return *model_; }
  const nn::Module& module() const override { return *model_; }

 protected:
  explain::Explanation explain_input(const std::string& text,
                                     const ExplainOptions& options) override;
  const text::Tokenizer* explain_tokenizer(bool target) const override {
    return target ? tgt_.get() : src_.get();
  }
  nlohmann::json describe_task() const override;

 private:
  // explain --method: each output token's log-probability attributed to the source tokens.
  void attribute(explain::Explanation& e, const std::vector<int64_t>& src,
                 const std::vector<int64_t>& tgt_in, const std::vector<int64_t>& out,
                 const ExplainOptions& o);
  std::shared_ptr<text::Tokenizer> src_, tgt_;  // the same object when the vocabulary is shared
  std::shared_ptr<models::Seq2SeqModel> model_;
  DataConfig data_;
  int64_t batch_tokens_ = 4096;
  decode::SearchOptions search_;  // the run's decode section
};

}  // namespace gaze::tasks
