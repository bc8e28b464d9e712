#include "gaze/models/transformer_models.h"

#include <algorithm>
#include <cmath>

#include "gaze/core/grad_mode.h"
#include "gaze/nn/init.h"

#include "gaze/core/error.h"
#include "gaze/io/config.h"
#include "gaze/models/word_vector_backbone.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/fused.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/unary.h"

namespace gaze::models {
namespace {

const std::vector<Activation> kActivations = {Activation::relu, Activation::gelu,
                                              Activation::gelu_tanh};

std::vector<config::Field> encoder_fields(EncoderConfig& c) {
  using config::field;
  return {field("vocab_size", c.vocab_size, 0, config::kMaxSize),
          field("d_model", c.d_model, 1, config::kMaxSize),
          field("nhead", c.nhead, 1, config::kMaxSize),
          field("num_layers", c.num_layers, 0, config::kMaxLayers),
          field("dim_feedforward", c.dim_feedforward, 1, config::kMaxSize),
          field("max_positions", c.max_positions, 1, config::kMaxSize),
          field("pad_id", c.pad_id, 0, config::kMaxSize),
          field("dropout", c.dropout, 0.0, 1.0),
          field("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0),
          field("activation", c.activation, kActivations),
          field("positions", c.positions),
          field("norm_first", c.norm_first),
          field("attention_window", c.attention_window, -1, config::kMaxSize),
          field("scale_embeddings", c.scale_embeddings),
          field("final_norm", c.final_norm),
          field("embedding_scale", c.embedding_scale, 0.0, 1e6),
          field("embedding_dim", c.embedding_dim, 0, config::kMaxSize),
          field("token_types", c.token_types, 0, config::kMaxSize),
          field("embedding_norm", c.embedding_norm),
          field("backbone", c.backbone),
          field("pretrained", c.pretrained),
          field("word_vectors", c.word_vectors),
          field("max_vectors", c.max_vectors, 0, config::kMaxSize),
          field("word_dim", c.word_dim, 1, config::kMaxSize),
          field("freeze_embeddings", c.freeze_embeddings),
          field("encoder", c.encoder),
          field("char_dim", c.char_dim, 0, config::kMaxSize),
          field("char_channels", c.char_channels, 1, config::kMaxSize),
          field("max_word_chars", c.max_word_chars, 2, config::kMaxSize),
          field("shape_dim", c.shape_dim, 0, config::kMaxSize)};
}

void check_tokens(const Tensor& tokens, const Tensor& lengths, int64_t vocab, const char* who) {
  GAZE_CHECK(tokens.defined() && tokens.dtype() == DType::i64 && tokens.dim() == 2, ValueError,
             "{}: tokens must be int64 [B, T], got {}", who,
             tokens.defined() ? tokens.shape_str() : "undefined");
  GAZE_CHECK(!lengths.defined() ||
                 (lengths.dtype() == DType::i64 && lengths.shape() == Shape{tokens.size(0)}),
             ValueError, "{}: lengths must be int64 [B] = [{}], got {}", who, tokens.size(0),
             lengths.shape_str());
  (void)vocab;  // ids are range-checked by the embedding lookup, with the position named
}

// token embedding * scale + positions (learned, sinusoidal or none), then dropout.
Tensor embed_tokens(const nn::Embedding& emb, const nn::LearnedPositionalEmbedding* learned,
                    const nn::SinusoidalPositionalEncoding* sinusoidal, bool scale,
                    const Tensor& tokens, int64_t offset, const nn::Dropout* drop,
                    double extra_scale = 1.0, const Tensor& looked_up = Tensor()) {
  Tensor x = looked_up.defined() ? looked_up : emb.forward(tokens);
  const double s = (scale ? std::sqrt(static_cast<double>(emb.embedding_dim)) : 1.0) * extra_scale;
  if (s != 1.0) x = mul(x, s);
  if (learned)
    x = learned->forward(x, offset);
  else if (sinusoidal)
    x = sinusoidal->forward(x, offset);
  return drop ? drop->forward(x) : x;
}

}  // namespace

nn::TransformerLayerOptions layer_options(int64_t d, int64_t h, int64_t ff, double drop,
                                          Activation act, double eps, bool norm_first,
                                          int64_t attention_window) {
  nn::TransformerLayerOptions o;
  o.d_model = d, o.nhead = h, o.dim_feedforward = ff, o.dropout = drop;
  o.attention_window = attention_window;
  o.activation = act;
  o.layer_norm_eps = eps, o.batch_first = true, o.norm_first = norm_first;
  return o;
}

Tensor padding_mask(const Tensor& lengths, int64_t T) {
  if (!lengths.defined()) return Tensor();
  const int64_t B = lengths.numel();
  Tensor m = Tensor::empty(Shape{B, T}, DType::b8);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths.data<int64_t>()[b];
    GAZE_CHECK(len >= 0 && len <= T, IndexError,
               "lengths[{}] = {} is outside [0, {}] (the sequence length)", b, len, T);
    for (int64_t t = 0; t < T; ++t) m.data<bool>()[b * T + t] = t >= len;
  }
  return m;
}

// --- backbones
// ---------------------------------------------------------------------------------------------

std::unique_ptr<Backbone> make_backbone(nn::Module& owner, const EncoderConfig& c) {
  switch (c.backbone) {
    case BackboneKind::transformer:
      return std::make_unique<TransformerBackbone>(owner, c);
    case BackboneKind::glove:
      return std::make_unique<WordVectorBackbone>(owner, c);
  }
  throw ValueError("unknown backbone");
}

TransformerBackbone::TransformerBackbone(nn::Module& owner, const EncoderConfig& c) : c_(c) {
  GAZE_CHECK(c.vocab_size > 0, ValueError, "vocab_size must be positive, got {}", c.vocab_size);
  GAZE_CHECK(c.pad_id >= 0 && c.pad_id < c.vocab_size, ValueError,
             "pad_id {} must be a token id below vocab_size {}", c.pad_id, c.vocab_size);
  const int64_t e = c.embedding_dim > 0 ? c.embedding_dim : c.d_model;
  embedding = owner.register_module("embedding",
                                    std::make_shared<nn::Embedding>(c.vocab_size, e, c.pad_id));
  if (c.positions == Positions::learned)
    positions = owner.register_module(
        "positions", std::make_shared<nn::LearnedPositionalEmbedding>(c.max_positions, e));
  if (c.positions == Positions::sinusoidal || c.positions == Positions::timing_signal)
    sinusoidal = std::make_shared<nn::SinusoidalPositionalEncoding>(
        e, true, c.max_positions, c.positions == Positions::timing_signal);
  if (c.token_types > 0)
    token_type_embedding = owner.register_module("token_type_embedding",
                                                 std::make_shared<nn::Embedding>(c.token_types, e));
  if (c.embedding_norm)
    embedding_norm = owner.register_module(
        "embedding_norm",
        std::make_shared<nn::LayerNorm>(std::vector<int64_t>{e}, c.layer_norm_eps));
  const auto lo = layer_options(c.d_model, c.nhead, c.dim_feedforward, c.dropout, c.activation,
                                c.layer_norm_eps, c.norm_first, c.attention_window);
  const bool final_norm = c.norm_first && c.final_norm;
  if (e == c.d_model) {
    encoder = owner.register_module(
        "encoder", std::make_shared<nn::TransformerEncoder>(lo, c.num_layers, final_norm));
  } else {
    GAZE_CHECK(c.num_layers >= 1 && c.norm_first, ValueError,
               "model.embedding_dim {} differs from d_model {}: needs norm_first and a layer", e,
               c.d_model);
    std::vector<nn::TransformerLayerOptions> layers(static_cast<size_t>(c.num_layers), lo);
    layers[0].d_model = e, layers[0].out_features = c.d_model;
    encoder = owner.register_module("encoder",
                                    std::make_shared<nn::TransformerEncoder>(layers, final_norm));
  }
  dropout = owner.register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

Tensor TransformerBackbone::forward(const Inputs& in, nn::AttentionCapture* capture) const {
  const Tensor &tokens = in.tokens, &lengths = in.lengths;
  check_tokens(tokens, lengths, c_.vocab_size, "model");
  GAZE_CHECK(c_.positions != Positions::learned || tokens.size(1) <= c_.max_positions, ValueError,
             "model: {} tokens exceed max_positions {}; truncate the input", tokens.size(1),
             c_.max_positions);
  const bool more = token_type_embedding || embedding_norm;
  check_token_embeddings(in, embedding->embedding_dim);
  Tensor x =
      embed_tokens(*embedding, positions.get(), sinusoidal.get(), c_.scale_embeddings, tokens, 0,
                   more ? nullptr : dropout.get(), c_.embedding_scale, in.token_embeddings);
  if (more) {
    // BERT: + token type 0 (one row, broadcast), LayerNorm, then dropout.
    if (token_type_embedding)
      x = add(x, token_type_embedding->forward(Tensor::zeros(Shape{1, 1}, DType::i64)));
    if (embedding_norm) x = embedding_norm->forward(x);
    x = dropout->forward(x);
  }
  return encoder->forward(
      x, {.src_key_padding_mask = padding_mask(lengths, tokens.size(1)), .capture = capture});
}

// --- classifier
// --------------------------------------------------------------------------------------------

TransformerClassifier::TransformerClassifier(const ClassifierConfig& c)
    : EncoderModel("TransformerClassifier"), config(c) {
  backbone = make_backbone(*this, c);
  GAZE_CHECK(c.num_classes >= 1, ValueError,
             "TransformerClassifier: num_classes must be >= 1, got {}", c.num_classes);
  if (c.pooling == Pooling::attention)
    attention_pool = register_module(
        "attention_pool", std::make_shared<nn::AttentionPooling>(backbone->hidden_size()));
  if (c.pooler == Pooler::tanh)
    pooler = register_module(
        "pooler", std::make_shared<nn::Linear>(backbone->hidden_size(), backbone->hidden_size()));
  head =
      register_module("head", std::make_shared<nn::Linear>(backbone->hidden_size(), c.num_classes));
}

Tensor pool(const Tensor& h, const Tensor& lengths, Pooling pooling) {
  GAZE_CHECK(pooling != Pooling::attention, ValueError,
             "pooling: attention has weights of its own; only a classifier can use it");
  if (pooling == Pooling::cls) return select(h, 1, 0);
  const int64_t B = h.size(0), T = h.size(1);
  if (pooling == Pooling::max) {
    // Each feature's maximum over the non-padding tokens (padding pushed far below; the first token
    // always counts, so an empty sequence stays finite).
    Tensor pad = Tensor::zeros(Shape{B, T, 1}, DType::f64);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = lengths.defined() ? lengths.data<int64_t>()[b] : T;
      for (int64_t t = std::max<int64_t>(len, 1); t < T; ++t) pad.data<double>()[b * T + t] = -1e9;
    }
    return max(add(h, pad.to_dtype(h.dtype())), 1).values;
  }
  // The mean over the non-padding tokens.
  Tensor w = Tensor::empty(Shape{B, T, 1}, h.dtype());
  dispatch_floating(h.dtype(), "pool", [&]<typename T_>() {
    T_* wp = w.data<T_>();
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = lengths.defined() ? lengths.data<int64_t>()[b] : T;
      for (int64_t t = 0; t < T; ++t) wp[b * T + t] = t < len && len > 0 ? T_(1) / T_(len) : T_(0);
    }
  });
  return sum(mul(h, w), {1});
}

Tensor TransformerClassifier::features(const Inputs& in, nn::AttentionCapture* capture) const {
  const Tensor hidden = backbone->forward(in, capture);
  Tensor pooled;
  if (attention_pool) {
    nn::AttentionPooling::Output a = attention_pool->forward(hidden, in.lengths);
    if (capture) capture->pooling = a.weights.detach();
    pooled = a.pooled;
  } else {
    pooled = pool(hidden, in.lengths, config.pooling);
  }
  return pooler ? tanh(pooler->forward(pooled)) : pooled;
}

Tensor TransformerClassifier::forward(const Inputs& in, nn::AttentionCapture* capture) const {
  return head->forward(backbone->output_dropout(features(in, capture)));
}

std::vector<config::Field> config_fields(ClassifierConfig& c) {
  auto f = encoder_fields(c);
  f.push_back(config::field("num_classes", c.num_classes, 1, config::kMaxSize));
  f.push_back(config::field("pooling", c.pooling));
  f.push_back(config::field("pooler", c.pooler));
  return f;
}

// --- sentence encoder
// --------------------------------------------------------------------------------------

SentenceEncoder::SentenceEncoder(const SentenceEncoderConfig& c)
    : EncoderModel("SentenceEncoder"), config(c) {
  GAZE_CHECK(c.pooling != Pooling::attention, ValueError,
             "SentenceEncoder: pooling must be mean, cls or max (attention pooling is learned "
             "by a classifier), got attention");
  backbone = make_backbone(*this, c);
  if (c.pooler == Pooler::tanh)
    pooler = register_module(
        "pooler", std::make_shared<nn::Linear>(backbone->hidden_size(), backbone->hidden_size()));
}

Tensor SentenceEncoder::forward(const Inputs& in, nn::AttentionCapture* capture) const {
  Tensor y = pool(backbone->forward(in, capture), in.lengths, config.pooling);
  if (pooler) y = tanh(pooler->forward(y));
  if (!config.normalize) return y;
  // y / |y|, with the Universal Sentence Encoder's floor of 1e-12 on |y|^2.
  return div(y, sqrt(add(sum(mul(y, y), {1}, true), 1e-12)));
}

std::vector<config::Field> config_fields(SentenceEncoderConfig& c) {
  auto f = encoder_fields(c);
  f.push_back(config::field("pooling", c.pooling));
  f.push_back(config::field("pooler", c.pooler));
  f.push_back(config::field("normalize", c.normalize));
  return f;
}

std::string SentenceEncoder::config_json() const {
  return config::write_config("sentence_encoder", config);
}

SentenceEncoderConfig SentenceEncoder::parse_config(const std::string& json) {
  return config::read_config<SentenceEncoderConfig>(json, "sentence_encoder");
}

std::string TransformerClassifier::config_json() const {
  return config::write_config("transformer_classifier", config);
}

ClassifierConfig TransformerClassifier::parse_config(const std::string& json) {
  return config::read_config<ClassifierConfig>(json, "transformer_classifier");
}

// --- tagger
// ------------------------------------------------------------------------------------------------

TransformerTagger::TransformerTagger(const TaggerConfig& c)
    : EncoderModel("TransformerTagger"), config(c) {
  backbone = make_backbone(*this, c);
  GAZE_CHECK(c.num_tags >= 1, ValueError, "TransformerTagger: num_tags must be >= 1, got {}",
             c.num_tags);
  head = register_module("head", std::make_shared<nn::Linear>(backbone->hidden_size(), c.num_tags));
  if (c.crf) crf = register_module("crf", std::make_shared<nn::CRF>(c.num_tags, true));
}

Tensor TransformerTagger::forward(const Inputs& in, nn::AttentionCapture* capture) const {
  return head->forward(backbone->output_dropout(backbone->forward(in, capture)));
}

std::vector<config::Field> config_fields(TaggerConfig& c) {
  auto f = encoder_fields(c);
  f.push_back(config::field("num_tags", c.num_tags, 1, config::kMaxSize));
  f.push_back(config::field("crf", c.crf));
  f.push_back(config::field("crf_constraints", c.crf_constraints));
  return f;
}

std::string TransformerTagger::config_json() const {
  return config::write_config("transformer_tagger", config);
}

TaggerConfig TransformerTagger::parse_config(const std::string& json) {
  return config::read_config<TaggerConfig>(json, "transformer_tagger");
}

// --- encoder-decoder
// ---------------------------------------------------------------------------------------

std::vector<config::Field> config_fields(Seq2SeqConfig& c) {
  using config::field;
  return {field("src_vocab_size", c.src_vocab_size, 0, config::kMaxSize),
          field("tgt_vocab_size", c.tgt_vocab_size, 0, config::kMaxSize),
          field("d_model", c.d_model, 1, config::kMaxSize),
          field("nhead", c.nhead, 1, config::kMaxSize),
          field("num_encoder_layers", c.num_encoder_layers, 0, config::kMaxLayers),
          field("num_decoder_layers", c.num_decoder_layers, 0, config::kMaxLayers),
          field("dim_feedforward", c.dim_feedforward, 1, config::kMaxSize),
          field("max_positions", c.max_positions, 1, config::kMaxSize),
          field("pad_id", c.pad_id, 0, config::kMaxSize),
          field("dropout", c.dropout, 0.0, 1.0),
          field("layer_norm_eps", c.layer_norm_eps, 0.0, 1.0),
          field("activation", c.activation, kActivations),
          field("positions", c.positions),
          field("norm_first", c.norm_first),
          field("attention_window", c.attention_window, -1, config::kMaxSize),
          field("share_embeddings", c.share_embeddings),
          field("tie_output", c.tie_output),
          field("scale_embeddings", c.scale_embeddings)};
}

TransformerSeq2Seq::TransformerSeq2Seq(const Seq2SeqConfig& c)
    : Seq2SeqModel("TransformerSeq2Seq"), config(c) {
  GAZE_CHECK(c.src_vocab_size > 0 && c.tgt_vocab_size > 0, ValueError,
             "TransformerSeq2Seq: vocab sizes must be positive");
  GAZE_CHECK(!c.share_embeddings || c.src_vocab_size == c.tgt_vocab_size, ValueError,
             "TransformerSeq2Seq: share_embeddings needs one vocabulary (src {} vs tgt {})",
             c.src_vocab_size, c.tgt_vocab_size);
  if (c.share_embeddings) {
    src_embedding = tgt_embedding = register_module(
        "embedding", std::make_shared<nn::Embedding>(c.src_vocab_size, c.d_model, c.pad_id));
  } else {
    src_embedding = register_module(
        "src_embedding", std::make_shared<nn::Embedding>(c.src_vocab_size, c.d_model, c.pad_id));
    tgt_embedding = register_module(
        "tgt_embedding", std::make_shared<nn::Embedding>(c.tgt_vocab_size, c.d_model, c.pad_id));
  }
  if (c.scale_embeddings) {
    // Embeddings scaled by sqrt(d_model) start at N(0, 1/d_model), as in fairseq: the scaled
    // inputs then have unit variance, and tied output logits start near unit scale (N(0, 1),
    // torch's Embedding default, would make them ~sqrt(d_model) and the first losses enormous).
    NoGradGuard no_grad;
    for (nn::Embedding* e : {src_embedding.get(), tgt_embedding.get()}) {
      nn::init::normal_(e->weight, 0.0, 1.0 / std::sqrt(static_cast<double>(c.d_model)));
      if (c.pad_id >= 0 && c.pad_id < e->weight.size(0))
        std::fill_n(e->weight.data<float>() + c.pad_id * c.d_model, c.d_model, 0.0f);
    }
  }
  if (c.positions == Positions::learned) {
    src_positions = register_module(
        "src_positions",
        std::make_shared<nn::LearnedPositionalEmbedding>(c.max_positions, c.d_model));
    tgt_positions = register_module(
        "tgt_positions",
        std::make_shared<nn::LearnedPositionalEmbedding>(c.max_positions, c.d_model));
  }
  if (c.positions == Positions::sinusoidal)
    sinusoidal =
        std::make_shared<nn::SinusoidalPositionalEncoding>(c.d_model, true, c.max_positions);
  const auto lo = layer_options(c.d_model, c.nhead, c.dim_feedforward, c.dropout, c.activation,
                                c.layer_norm_eps, c.norm_first, c.attention_window);
  encoder = register_module(
      "encoder", std::make_shared<nn::TransformerEncoder>(lo, c.num_encoder_layers, c.norm_first));
  decoder = register_module(
      "decoder", std::make_shared<nn::TransformerDecoder>(lo, c.num_decoder_layers, c.norm_first));
  if (!c.tie_output)
    output = register_module("output", std::make_shared<nn::Linear>(c.d_model, c.tgt_vocab_size));
  else
    mark_matmul_weight(tgt_embedding->weight);  // the output projection multiplies by it
  dropout = register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

Tensor TransformerSeq2Seq::embed(const nn::Embedding& emb,
                                 const nn::LearnedPositionalEmbedding* pos, const Tensor& tokens,
                                 int64_t offset, const Tensor& looked_up) const {
  GAZE_CHECK(
      config.positions != Positions::learned || offset + tokens.size(1) <= config.max_positions,
      ValueError, "TransformerSeq2Seq: {} positions exceed max_positions {}",
      offset + tokens.size(1), config.max_positions);
  return embed_tokens(emb, pos, sinusoidal.get(), config.scale_embeddings, tokens, offset,
                      dropout.get(), 1.0, looked_up);
}

Tensor TransformerSeq2Seq::embed_target(const Tensor& tokens, int64_t offset) const {
  return embed(*tgt_embedding, tgt_positions.get(), tokens, offset);
}

Tensor TransformerSeq2Seq::encode(const Tensor& src, const Tensor& src_lengths,
                                  nn::AttentionCapture* capture,
                                  const Tensor& src_embeddings) const {
  check_tokens(src, src_lengths, config.src_vocab_size, "TransformerSeq2Seq");
  check_token_embeddings({src, src_lengths, Tensor(), src_embeddings},
                         src_embedding->embedding_dim);
  return encoder->forward(
      embed(*src_embedding, src_positions.get(), src, 0, src_embeddings),
      {.src_key_padding_mask = padding_mask(src_lengths, src.size(1)), .capture = capture});
}

Tensor TransformerSeq2Seq::output_logits(const Tensor& h) const {
  return output ? output->forward(h) : linear(h, tgt_embedding->weight);
}

Tensor TransformerSeq2Seq::decode(const Tensor& tgt_in, const Tensor& memory,
                                  const Tensor& src_lengths, const Tensor& tgt_lengths,
                                  nn::AttentionCapture* capture) const {
  check_tokens(tgt_in, tgt_lengths, config.tgt_vocab_size, "TransformerSeq2Seq");
  const Tensor h =
      decoder->forward(embed_target(tgt_in), memory,
                       {.tgt_key_padding_mask = padding_mask(tgt_lengths, tgt_in.size(1)),
                        .memory_key_padding_mask = padding_mask(src_lengths, memory.size(1)),
                        .tgt_is_causal = true,
                        .capture = capture});
  return output_logits(h);
}

Tensor TransformerSeq2Seq::forward(const Tensor& src, const Tensor& src_lengths,
                                   const Tensor& tgt_in, const Tensor& tgt_lengths,
                                   nn::AttentionCapture* enc_cap,
                                   nn::AttentionCapture* dec_cap) const {
  return decode(tgt_in, encode(src, src_lengths, enc_cap), src_lengths, tgt_lengths, dec_cap);
}

Seq2SeqAttention TransformerSeq2Seq::attention(const Tensor& src, const Tensor& src_lengths,
                                               const Tensor& tgt_in, const Tensor& tgt_lengths,
                                               const nn::AttentionCapture& which) const {
  nn::AttentionCapture enc = which, dec = which;
  forward(src, src_lengths, tgt_in, tgt_lengths, &enc, &dec);
  return {enc.self_attention, dec.self_attention, dec.cross_attention, config.nhead};
}

std::string TransformerSeq2Seq::config_json() const {
  return config::write_config("transformer_seq2seq", config);
}

Seq2SeqConfig TransformerSeq2Seq::parse_config(const std::string& json) {
  return config::read_config<Seq2SeqConfig>(json, "transformer_seq2seq");
}

}  // namespace gaze::models
