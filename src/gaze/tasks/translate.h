// Translation (and other sequence-to-sequence tasks such as spelling -> phonemes): sentence pairs
// -> source and target tokenizers (shared or separate) -> TransformerSeq2Seq or RnnSeq2Seq trained
// with teacher forcing -> greedy or beam-search decoding, scored by BLEU, chrF and error rates.
// Sources that occur several times are decoded once and scored against all their targets.
#pragma once

#include <memory>

#include "gaze/data/parallel.h"
#include "gaze/decode/search.h"
#include "gaze/metrics/translation.h"
#include "gaze/tasks/task.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

struct PairEncoded {
  std::vector<std::vector<int64_t>> src;  // source ids + EOS
  std::vector<std::vector<int64_t>> tgt;  // target ids (no BOS/EOS)
  int64_t truncated = 0;
};

struct TranslationScores {
  metrics::BleuScore bleu;
  double chrf = 0;
  metrics::ErrorRates errors;
  int64_t sources = 0, pairs = 0;
};

class TranslateTask : public Task {
 public:
  static std::unique_ptr<TranslateTask> create(const RunConfig& config, std::FILE* log);
  static std::unique_ptr<TranslateTask> load(const std::string& dir);
  static std::unique_ptr<TranslateTask> resume(const RunConfig& config, const std::string& dir,
                                               std::FILE* log);

  models::Model& model() override { return *model_; }
  std::vector<int64_t> train_lengths() const override;
  Tensor loss(const std::vector<int64_t>& batch, double label_smoothing, int64_t* tokens) override;
  // {"bleu", "chrf", "wer", "per", "loss"} on the dev set, decoded with the run's decode options.
  std::map<std::string, double> validate() override;
  void save_assets(const std::string& dir) const override;
  std::string name() const override { return "translate"; }
  std::optional<Report> test_report() override;
  Report evaluate_file(const std::string& path, const EvalOptions& options) override;
  // {"translation_text"}, plus "score"/"log_prob", "nbest" and "alignment" on request.
  std::vector<nlohmann::json> predict(const std::vector<std::string>& sources,
                                      const PredictOptions& options) override;
  explain::Explanation explain(const std::string& text, const ExplainOptions& options) override;

  // Hypotheses (best first) for every source text.
  std::vector<std::vector<decode::Hypothesis>> translate(const std::vector<std::string>& sources,
                                                         const decode::SearchOptions& options,
                                                         bool alignment = false,
                                                         int64_t alignment_layer = -1);
  TranslationScores score(const std::vector<data::SentencePair>& pairs,
                          const decode::SearchOptions& options);
  std::string detokenize(const std::vector<int64_t>& ids) const { return tgt_tok_->decode(ids); }
  std::optional<decode::SearchOptions> default_search() const override { return search_; }

 private:
  TranslateTask() = default;
  void read_data(const RunConfig& c, std::FILE* log);
  PairEncoded encode(const std::vector<data::SentencePair>& pairs) const;
  std::vector<int64_t> encode_source(const std::string& text, bool* cut = nullptr) const;
  // Teacher-forced logits [B, T, V] of target inputs (BOS + ids) for a batch of pairs.
  Tensor logits(const PairEncoded& enc, const std::vector<int64_t>& batch, Tensor* target,
                int64_t* tokens) const;
  double mean_loss(const PairEncoded& enc);
  Report make_report(const TranslationScores& s) const;

  data::ParallelFormat format_;
  int64_t max_length_ = 256, max_target_length_ = 256, batch_tokens_ = 4096;
  bool shared_vocab_ = true;
  decode::SearchOptions search_;
  std::shared_ptr<text::Tokenizer> src_tok_, tgt_tok_;
  std::shared_ptr<models::Model> model_;
  std::vector<data::SentencePair> train_, dev_, test_;
  PairEncoded train_enc_, dev_enc_;
};

// Reads a run's parallel file: two aligned files when `target` is set, else columns of `path`.
std::vector<data::SentencePair> read_pairs(const std::string& path, const std::string& target,
                                           const data::ParallelFormat& format);

}  // namespace gaze::tasks
