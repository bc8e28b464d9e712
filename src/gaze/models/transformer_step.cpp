// TransformerSeq2Seq decoded one step at a time: the encoder runs once, the decoder reads a KV
// cache of its own past (or, for tests, recomputes every prefix), and the alignment is one decoder
// layer's cross-attention averaged over heads.
#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/models/transformer_models.h"
#include "gaze/nn/incremental_decoder.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/softmax.h"

namespace gaze::models {
namespace {

Tensor tokens_tensor(const std::vector<int64_t>& tokens, int64_t cols) {
  const auto R = static_cast<int64_t>(tokens.size()) / cols;
  Tensor t = Tensor::empty(Shape{R, cols}, DType::i64);
  std::copy(tokens.begin(), tokens.end(), t.data<int64_t>());
  return t;
}

class TransformerStep : public StepDecoder {
 public:
  TransformerStep(const TransformerSeq2Seq& m, const Tensor& src, const Tensor& lengths,
                  const StepOptions& o)
      : m_(m), o_(o) {
    // One memory per source, read by its rows_per_source rows (the cache shares it, the
    // recomputing path expands it each step).
    memory_ = m.encode(src, lengths);
    lengths_ = lengths;
    R_ = memory_.size(0) * o.rows_per_source;
    const auto L = static_cast<int64_t>(m.decoder->layers.size());
    layer_ = o.alignment_layer < 0 ? L + o.alignment_layer : o.alignment_layer;
    GAZE_CHECK(layer_ >= 0 && layer_ < L, ValueError,
               "alignment layer {} out of range for a decoder of {} layers", o.alignment_layer, L);
    if (o.use_cache)
      inc_ = std::make_unique<nn::IncrementalDecoder>(*m.decoder, memory_, lengths_,
                                                      o.rows_per_source);
    history_.resize(static_cast<size_t>(R_));
  }

  Tensor step(const std::vector<int64_t>& previous) override {
    NoGradGuard no_grad;
    GAZE_CHECK(static_cast<int64_t>(previous.size()) == R_, ValueError,
               "StepDecoder.step: {} tokens for {} rows", previous.size(), R_);
    for (int64_t r = 0; r < R_; ++r)
      history_[static_cast<size_t>(r)].push_back(previous[static_cast<size_t>(r)]);
    const auto t = static_cast<int64_t>(history_[0].size());
    Tensor hidden;  // [R, 1, E]
    if (inc_) {
      nn::AttentionCapture cap;
      cap.layers = {layer_};
      hidden = inc_->step(m_.embed_target(tokens_tensor(previous, 1), t - 1),
                          o_.alignment ? &cap : nullptr);
      if (o_.alignment)
        alignment_ = squeeze(mean(cap.cross_attention[static_cast<size_t>(layer_)], {1}), 1);
    } else {
      // Recompute the whole prefix (no cache): the reference the cached path must equal.
      std::vector<int64_t> flat;
      for (const auto& h : history_) flat.insert(flat.end(), h.begin(), h.end());
      const Tensor tgt = tokens_tensor(flat, t);
      const Tensor tgt_lengths = Tensor::full(Shape{R_}, static_cast<double>(t), DType::i64);
      const auto rows = expand_rows(memory_.size(0), o_.rows_per_source);
      const Tensor memory = nn::gather_rows(memory_, rows),
                   lengths = nn::gather_rows(lengths_, rows);
      nn::AttentionCapture cap;
      cap.layers = {layer_};
      const Tensor h =
          m_.decoder->forward(m_.embed_target(tgt), memory,
                              {.tgt_key_padding_mask = padding_mask(tgt_lengths, t),
                               .memory_key_padding_mask = padding_mask(lengths, memory.size(1)),
                               .tgt_is_causal = true,
                               .capture = o_.alignment ? &cap : nullptr});
      hidden = narrow(h, 1, t - 1, 1);
      if (o_.alignment)
        alignment_ = select(mean(cap.cross_attention[static_cast<size_t>(layer_)], {1}), 1, t - 1);
    }
    const Tensor logits = m_.output_logits(hidden);  // [R, 1, V]
    return log_softmax(reshape(logits, Shape{R_, logits.size(2)}), -1);
  }

  void reorder(const std::vector<int64_t>& rows) override {
    if (inc_) inc_->reorder(rows, /*same_memory=*/true);
    std::vector<std::vector<int64_t>> h;
    for (const int64_t r : rows) h.push_back(history_[static_cast<size_t>(r)]);
    history_ = std::move(h);
  }
  void keep(const std::vector<int64_t>& rows) override {
    const int64_t k = o_.rows_per_source;
    GAZE_CHECK(std::ssize(rows) % k == 0, ValueError,
               "StepDecoder.keep: {} rows are not whole groups of {} rows per source", rows.size(),
               k);
    std::vector<int64_t> sources;
    for (size_t g = 0; g < rows.size(); g += static_cast<size_t>(k)) {
      for (size_t i = g; i < g + static_cast<size_t>(k); ++i)
        GAZE_CHECK(rows[i] >= 0 && rows[i] < R_ && rows[i] / k == rows[g] / k, ValueError,
                   "StepDecoder.keep: rows {}..{} must come from the {} rows of one source, got "
                   "row {}",
                   g, g + static_cast<size_t>(k) - 1, k, rows[i]);
      sources.push_back(rows[g] / k);
    }
    if (inc_) inc_->reorder(rows, /*same_memory=*/false);
    memory_ = nn::gather_rows(memory_, sources);
    lengths_ = nn::gather_rows(lengths_, sources);
    std::vector<std::vector<int64_t>> h;
    for (const int64_t r : rows) h.push_back(history_.at(static_cast<size_t>(r)));
    history_ = std::move(h);
    R_ = std::ssize(rows);
  }
  Tensor alignment() const override { return alignment_; }
  int64_t rows() const override { return R_; }

 private:
  const TransformerSeq2Seq& m_;
  StepOptions o_;
  Tensor memory_, lengths_, alignment_;  // memory_, lengths_: one per source
  int64_t R_ = 0, layer_ = 0;
  std::unique_ptr<nn::IncrementalDecoder> inc_;
  std::vector<std::vector<int64_t>> history_;  // the tokens fed so far, per row
};

}  // namespace

std::unique_ptr<StepDecoder> TransformerSeq2Seq::make_decoder(const Tensor& src,
                                                              const Tensor& src_lengths,
                                                              const StepOptions& o) const {
  return std::make_unique<TransformerStep>(*this, src, src_lengths, o);
}

}  // namespace gaze::models
