// RnnSeq2Seq: the attention encoder-decoder of Bahdanau et al. (2015). A bidirectional LSTM/GRU
// encodes the source; at each step the decoder attends with its previous state, c_t =
// attention(s_{t-1}, H), then updates s_t = f(s_{t-1}, y_{t-1}, c_t) and predicts y_t from (s_t,
// c_t, y_{t-1}). The attention score is additive (Bahdanau) or Luong's dot / general / concat.
#pragma once

#include "gaze/io/config.h"
#include "gaze/models/model.h"
#include "gaze/models/seq2seq.h"
#include "gaze/nn/embedding.h"
#include "gaze/nn/layer_norm.h"
#include "gaze/nn/linear.h"
#include "gaze/nn/rnn.h"
#include "gaze/nn/rnn_attention.h"

namespace gaze::models {

// The decoder's attention score: Bahdanau's additive one or Luong's dot / general / concat.
enum class RnnAttention { additive, dot, general, concat };
GAZE_ENUM_NAMES(RnnAttention, {RnnAttention::additive, "additive"}, {RnnAttention::dot, "dot"},
                {RnnAttention::general, "general"}, {RnnAttention::concat, "concat"})

struct RnnSeq2SeqConfig {
  int64_t src_vocab_size = 0, tgt_vocab_size = 0, embed_dim = 256,
          hidden_size = 256 /* per direction */, decoder_hidden_size = 512, num_encoder_layers = 1,
          attention_dim = 256, readout_dim = 256, pad_id = 0;
  double dropout = 0.1;
  nn::RnnBase::Mode cell = nn::RnnBase::Mode::lstm;
  RnnAttention attention = RnnAttention::additive;
  bool share_embeddings = false;
};
std::vector<config::Field> config_fields(RnnSeq2SeqConfig& c);

// The decoder's state between steps (for step-by-step decoding).
struct RnnDecoderState {
  Tensor h, c;    // [B, decoder_hidden] (c: LSTM only)
  Tensor memory;  // encoder states [B, S, 2*hidden]
  Tensor keys;    // attention key projections (additive) or memory
  nn::SourceMask mask;
};

class RnnSeq2Seq : public Seq2SeqModel {
 public:
  explicit RnnSeq2Seq(const RnnSeq2SeqConfig& config);
  Seq2SeqArchitecture architecture() const override { return Seq2SeqArchitecture::rnn; }
  Tensor logits(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                const Tensor& tgt_lengths) const override {
    return forward(src, src_lengths, tgt_in);
  }
  // One cross-attention "layer" of one head; `which` must not choose layers or heads.
  Seq2SeqAttention attention(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                             const Tensor& tgt_lengths,
                             const nn::AttentionCapture& which) const override;
  // Teacher forcing: logits [B, T, tgt_vocab]. attention (optional) receives the weights [B, T, S].
  // src_embeddings (optional): the source's token embedding rows, in place of looking src up.
  Tensor forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                 Tensor* attention = nullptr, const Tensor& src_embeddings = Tensor()) const;
  RnnDecoderState encode(const Tensor& src, const Tensor& src_lengths,
                         const Tensor& src_embeddings = Tensor()) const;
  Tensor source_lookup(const Tensor& src) const override { return src_embedding->forward(src); }
  Tensor logits_from_source_embeddings(const Tensor& src, const Tensor& src_embeddings,
                                       const Tensor& src_lengths, const Tensor& tgt_in,
                                       const Tensor&) const override {
    return forward(src, src_lengths, tgt_in, nullptr, src_embeddings);
  }
  // One decoder step for tokens y_prev [B]: returns logits [B, V] and advances the state.
  Tensor step(RnnDecoderState& state, const Tensor& y_prev, Tensor* attention = nullptr) const;
  std::string config_json() const override;
  static RnnSeq2SeqConfig parse_config(const std::string& json);

  RnnSeq2SeqConfig config;
  std::shared_ptr<nn::Embedding> src_embedding, tgt_embedding;
  std::shared_ptr<nn::RnnBase> encoder;
  std::shared_ptr<nn::Linear> bridge;  // encoder final states -> decoder initial state
  std::shared_ptr<nn::AdditiveAttention> additive;
  std::shared_ptr<nn::LuongAttention> luong;
  std::shared_ptr<nn::LSTMCell> lstm_cell;
  std::shared_ptr<nn::GRUCell> gru_cell;
  std::shared_ptr<nn::Linear> readout, generator;
  std::shared_ptr<nn::Dropout> dropout;

 private:
  std::unique_ptr<StepDecoder> make_decoder(const Tensor& src, const Tensor& src_lengths,
                                            const StepOptions& options) const override;
  // The attention of state h over the source: (context [B, 2H], weights [B, S]).
  nn::AttentionContext attend(const RnnDecoderState& s, const Tensor& h) const;
  // One cell update from input x [B, E + 2H].
  void advance(RnnDecoderState& s, const Tensor& x) const;
};

}  // namespace gaze::models
