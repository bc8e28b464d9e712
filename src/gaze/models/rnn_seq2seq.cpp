#include "gaze/models/rnn_seq2seq.h"

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/io/config.h"
#include "gaze/models/inputs.h"
#include "gaze/nn/incremental_decoder.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/softmax.h"
#include "gaze/ops/unary.h"

namespace gaze::models {
std::vector<config::Field> config_fields(RnnSeq2SeqConfig& c) {
  using config::field;
  return {field("src_vocab_size", c.src_vocab_size, 0, config::kMaxSize),
          field("tgt_vocab_size", c.tgt_vocab_size, 0, config::kMaxSize),
          field("embed_dim", c.embed_dim, 1, config::kMaxSize),
          field("hidden_size", c.hidden_size, 1, config::kMaxSize),
          field("decoder_hidden_size", c.decoder_hidden_size, 0, config::kMaxSize),
          field("num_encoder_layers", c.num_encoder_layers, 0, config::kMaxLayers),
          field("attention_dim", c.attention_dim, 0, config::kMaxSize),
          field("readout_dim", c.readout_dim, 0, config::kMaxSize),
          field("pad_id", c.pad_id, 0, config::kMaxSize),
          field("dropout", c.dropout, 0.0, 1.0),
          field("cell", c.cell),
          field("attention", c.attention),
          field("share_embeddings", c.share_embeddings)};
}

RnnSeq2Seq::RnnSeq2Seq(const RnnSeq2SeqConfig& c) : Seq2SeqModel("RnnSeq2Seq"), config(c) {
  GAZE_CHECK(c.src_vocab_size > 0 && c.tgt_vocab_size > 0, ValueError,
             "RnnSeq2Seq: vocab sizes must be positive");
  GAZE_CHECK(!c.share_embeddings || c.src_vocab_size == c.tgt_vocab_size, ValueError,
             "RnnSeq2Seq: share_embeddings needs one vocabulary");
  const int64_t ctx = 2 * c.hidden_size, H = c.decoder_hidden_size;
  if (c.share_embeddings) {
    src_embedding = tgt_embedding = register_module(
        "embedding", std::make_shared<nn::Embedding>(c.src_vocab_size, c.embed_dim, c.pad_id));
  } else {
    src_embedding = register_module(
        "src_embedding", std::make_shared<nn::Embedding>(c.src_vocab_size, c.embed_dim, c.pad_id));
    tgt_embedding = register_module(
        "tgt_embedding", std::make_shared<nn::Embedding>(c.tgt_vocab_size, c.embed_dim, c.pad_id));
  }
  nn::RnnOptions ro;
  ro.input_size = c.embed_dim, ro.hidden_size = c.hidden_size, ro.num_layers = c.num_encoder_layers;
  ro.batch_first = true, ro.bidirectional = true, ro.dropout = c.dropout;
  if (c.cell == nn::RnnBase::Mode::lstm)
    encoder = register_module("encoder", std::make_shared<nn::LSTM>(ro));
  else
    encoder = register_module("encoder", std::make_shared<nn::GRU>(ro));
  bridge = register_module("bridge", std::make_shared<nn::Linear>(ctx, H));
  if (c.attention == RnnAttention::additive) {
    additive = register_module("attention",
                               std::make_shared<nn::AdditiveAttention>(H, ctx, c.attention_dim));
  } else {
    const nn::LuongScore s = c.attention == RnnAttention::dot       ? nn::LuongScore::dot
                             : c.attention == RnnAttention::general ? nn::LuongScore::general
                                                                    : nn::LuongScore::concat;
    GAZE_CHECK(s != nn::LuongScore::dot || H == ctx, ValueError,
               "RnnSeq2Seq: dot attention needs decoder_hidden_size == 2 * hidden_size ({} vs {})",
               H, ctx);
    luong = register_module("attention",
                            std::make_shared<nn::LuongAttention>(s, H, ctx, c.attention_dim));
  }
  if (c.cell == nn::RnnBase::Mode::lstm)
    lstm_cell = register_module("decoder", std::make_shared<nn::LSTMCell>(c.embed_dim + ctx, H));
  else
    gru_cell = register_module("decoder", std::make_shared<nn::GRUCell>(c.embed_dim + ctx, H));
  readout = register_module("readout",
                            std::make_shared<nn::Linear>(H + ctx + c.embed_dim, c.readout_dim));
  generator =
      register_module("generator", std::make_shared<nn::Linear>(c.readout_dim, c.tgt_vocab_size));
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

RnnDecoderState RnnSeq2Seq::encode(const Tensor& src, const Tensor& src_lengths,
                                   const Tensor& src_embeddings) const {
  GAZE_CHECK(src.defined() && src.dtype() == DType::i64 && src.dim() == 2, ValueError,
             "RnnSeq2Seq: src must be int64 [B, S], got {}",
             src.defined() ? src.shape_str() : "undefined");
  check_token_embeddings({src, src_lengths, Tensor(), src_embeddings},
                         src_embedding->embedding_dim);
  const Tensor x =
      dropout->forward(src_embeddings.defined() ? src_embeddings : src_embedding->forward(src));
  const nn::RnnOutput enc = encoder->run(x, src_lengths, Tensor(), Tensor());
  RnnDecoderState s;
  s.memory = enc.output;  // [B, S, 2H]
  s.mask.lengths = src_lengths;
  // s_0 = tanh(W [h_fwd_last; h_bwd_first]) from the top encoder layer's two directions.
  const int64_t L = 2 * config.num_encoder_layers;
  s.h = tanh(bridge->forward(cat({select(enc.h_n, 0, L - 2), select(enc.h_n, 0, L - 1)}, 1)));
  if (lstm_cell) s.c = Tensor::zeros(s.h.shape(), s.h.dtype());
  s.keys = additive ? additive->project_keys(s.memory) : s.memory;
  return s;
}

nn::AttentionContext RnnSeq2Seq::attend(const RnnDecoderState& s, const Tensor& h) const {
  if (additive) return additive->forward(h, s.memory, s.memory, s.mask, s.keys);
  return luong->forward(h, s.memory, s.memory, s.mask);
}

void RnnSeq2Seq::advance(RnnDecoderState& s, const Tensor& x) const {
  if (lstm_cell) {
    auto [h, c] = lstm_cell->forward(x, s.h, s.c);
    s.h = h, s.c = c;
  } else {
    s.h = gru_cell->forward(x, s.h);
  }
}

Tensor RnnSeq2Seq::step(RnnDecoderState& s, const Tensor& y_prev, Tensor* attention) const {
  const Tensor e = dropout->forward(tgt_embedding->forward(y_prev));  // [B, E]
  const nn::AttentionContext a = attend(s, s.h);                      // c_t from s_{t-1}
  advance(s, cat({e, a.context}, 1));  // s_t = f(s_{t-1}, y_{t-1}, c_t)
  if (attention) *attention = a.weights;
  const Tensor r = tanh(readout->forward(cat({s.h, a.context, e}, 1)));
  return generator->forward(dropout->forward(r));
}

Tensor RnnSeq2Seq::forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                           Tensor* attention, const Tensor& src_embeddings) const {
  GAZE_CHECK(tgt_in.defined() && tgt_in.dtype() == DType::i64 && tgt_in.dim() == 2 &&
                 tgt_in.size(0) == src.size(0),
             ValueError, "RnnSeq2Seq: tgt_in must be int64 [B, T] with the source's batch, got {}",
             tgt_in.defined() ? tgt_in.shape_str() : "undefined");
  RnnDecoderState s = encode(src, src_lengths, src_embeddings);
  const int64_t T = tgt_in.size(1);
  const Tensor emb =
      dropout->forward(tgt_embedding->forward(tgt_in));  // [B, T, E], all steps at once
  std::vector<Tensor> feats, weights;
  for (int64_t t = 0; t < T; ++t) {
    const Tensor e = select(emb, 1, t);
    const nn::AttentionContext a = attend(s, s.h);
    advance(s, cat({e, a.context}, 1));
    feats.push_back(unsqueeze(cat({s.h, a.context, e}, 1), 1));
    if (attention) weights.push_back(unsqueeze(a.weights, 1));
  }
  if (attention) *attention = T > 0 ? cat(weights, 1) : Tensor();
  GAZE_CHECK(T > 0, ValueError, "RnnSeq2Seq: tgt_in has no steps");
  // The readout and the output projection run once over every step: two GEMMs instead of 2T.
  const Tensor r = tanh(readout->forward(cat(feats, 1)));
  return generator->forward(dropout->forward(r));
}

namespace {

// The RNN decoder one step at a time: its state is (h, c) per row; the source side is encoded once.
class RnnStep : public StepDecoder {
 public:
  RnnStep(const RnnSeq2Seq& m, const Tensor& src, const Tensor& lengths, const StepOptions& o)
      : m_(m), o_(o) {
    NoGradGuard no_grad;
    const auto rows = expand_rows(src.size(0), o.rows_per_source);
    s_ = m.encode(src, lengths);
    for (Tensor* t : {&s_.h, &s_.c, &s_.memory, &s_.keys, &s_.mask.lengths, &s_.mask.padding})
      if (t->defined()) *t = nn::gather_rows(*t, rows);
    R_ = s_.h.size(0);
  }

  Tensor step(const std::vector<int64_t>& previous) override {
    NoGradGuard no_grad;
    GAZE_CHECK(static_cast<int64_t>(previous.size()) == R_, ValueError,
               "StepDecoder.step: {} tokens for {} rows", previous.size(), R_);
    Tensor y = Tensor::empty(Shape{R_}, DType::i64);
    std::copy(previous.begin(), previous.end(), y.data<int64_t>());
    const Tensor logits = m_.step(s_, y, o_.alignment ? &alignment_ : nullptr);
    return log_softmax(logits, -1);
  }

  void reorder(const std::vector<int64_t>& rows) override {
    // The source side (memory, keys, mask) is the same for every row of a source.
    s_.h = nn::gather_rows(s_.h, rows);
    if (s_.c.defined()) s_.c = nn::gather_rows(s_.c, rows);
  }
  void keep(const std::vector<int64_t>& rows) override {
    for (Tensor* t : {&s_.h, &s_.c, &s_.memory, &s_.keys, &s_.mask.lengths, &s_.mask.padding})
      if (t->defined()) *t = nn::gather_rows(*t, rows);
    R_ = std::ssize(rows);
  }
  Tensor alignment() const override { return alignment_; }
  int64_t rows() const override { return R_; }

 private:
  const RnnSeq2Seq& m_;
  StepOptions o_;
  RnnDecoderState s_;
  Tensor alignment_;
  int64_t R_ = 0;
};

}  // namespace

std::unique_ptr<StepDecoder> RnnSeq2Seq::make_decoder(const Tensor& src, const Tensor& src_lengths,
                                                      const StepOptions& o) const {
  return std::make_unique<RnnStep>(*this, src, src_lengths, o);
}

Seq2SeqAttention RnnSeq2Seq::attention(const Tensor& src, const Tensor& src_lengths,
                                       const Tensor& tgt_in, const Tensor& tgt_lengths,
                                       const nn::AttentionCapture& which) const {
  GAZE_CHECK(which.layers.empty() && which.heads.empty(), ValueError,
             "explain: an RNN model has one attention (no layers or heads to choose)");
  Tensor weights;  // [B, T, S]
  forward(src, src_lengths, tgt_in, &weights);
  Seq2SeqAttention a;
  a.cross = {unsqueeze(weights, 1)};  // one head
  a.num_heads = 1;
  return a;
}

std::string RnnSeq2Seq::config_json() const {
  return config::write_config("rnn_seq2seq", config);
}

RnnSeq2SeqConfig RnnSeq2Seq::parse_config(const std::string& json) {
  return config::read_config<RnnSeq2SeqConfig>(json, "rnn_seq2seq");
}

}  // namespace gaze::models
