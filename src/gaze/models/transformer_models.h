// Transformer models: TransformerClassifier (pooled sequence -> class logits), TransformerTagger
// (one label per token) and TransformerSeq2Seq (encoder-decoder). Inputs are int64 token ids [B, T]
// with lengths [B]; positions past a length are padding.
#pragma once

#include "gaze/io/config.h"
#include "gaze/models/inputs.h"
#include "gaze/models/model.h"
#include "gaze/models/seq2seq.h"
#include "gaze/nn/attention_pooling.h"
#include "gaze/nn/crf.h"
#include "gaze/nn/embedding.h"
#include "gaze/nn/positional.h"
#include "gaze/nn/transformer.h"
#include "gaze/ops/fused.h"

namespace gaze::models {

// timing_signal: tensor2tensor's sinusoids (sin | cos halves), as the Universal Sentence Encoder.
enum class Positions { sinusoidal, learned, none, timing_signal };
GAZE_ENUM_NAMES(Positions, {Positions::sinusoidal, "sinusoidal"}, {Positions::learned, "learned"},
                {Positions::none, "none"}, {Positions::timing_signal, "timing_signal"})
// What follows the pooling of a classifier or sentence encoder: nothing, or dense + tanh (BERT's
// and the Universal Sentence Encoder's).
enum class Pooler { none, tanh };
GAZE_ENUM_NAMES(Pooler, {Pooler::none, "none"}, {Pooler::tanh, "tanh"})
// How a classifier reads one vector from the tokens' hidden states: their mean, the first token's,
// each feature's maximum, or a learned attention over them (nn::AttentionPooling).
enum class Pooling { mean, cls, max, attention };
GAZE_ENUM_NAMES(Pooling, {Pooling::mean, "mean"}, {Pooling::cls, "cls"}, {Pooling::max, "max"},
                {Pooling::attention, "attention"})
// The backbones a classifier or tagger can sit on: gaze's Transformer from scratch, or pretrained
// word vectors (GloVe's or any in its format) with characters and shapes under a BiLSTM or a
// Transformer.
enum class BackboneKind { transformer, glove };
GAZE_ENUM_NAMES(BackboneKind, {BackboneKind::transformer, "transformer"},
                {BackboneKind::glove, "glove"})
// What contextualises the glove backbone's word features.
enum class WordEncoder { lstm, transformer };
GAZE_ENUM_NAMES(WordEncoder, {WordEncoder::lstm, "lstm"}, {WordEncoder::transformer, "transformer"})

struct EncoderConfig {
  // A model folder to start from (a sentence encoder from gaze import, or any classifier or tagger
  // folder): its tokenizer, its backbone's configuration and weights; the head starts fresh. Only
  // read when training starts (tasks::start_encoder).
  std::string pretrained;
  BackboneKind backbone = BackboneKind::transformer;
  int64_t vocab_size = 0, d_model = 256, nhead = 4, num_layers = 4, dim_feedforward = 1024;
  int64_t max_positions = 512, pad_id = 0;
  double dropout = 0.1, layer_norm_eps = 1e-5;
  Activation activation = Activation::gelu;
  Positions positions = Positions::sinusoidal;
  bool norm_first = true;  // pre-norm layers (then a final LayerNorm, with final_norm)
  // Sliding-window self-attention: each token attends to those within this many positions (-1:
  // all of them; SdpaOptions::window).
  int64_t attention_window = -1;
  bool final_norm = true;
  bool scale_embeddings = false;  // multiply token embeddings by sqrt(embedding width)
  double embedding_scale = 1.0;   // and by this (the Universal Sentence Encoder adds them twice)
  // The token embeddings' width when it differs from d_model (0: d_model): the first layer attends
  // at this width and widens the stream to d_model (nn::TransformerLayerOptions::out_features).
  int64_t embedding_dim = 0;
  // BERT's embeddings: a table of token types (segment A/B; every token is type 0 here) added to
  // the tokens and positions, and a LayerNorm over the sum before dropout.
  int64_t token_types = 0;
  bool embedding_norm = false;
  // backbone glove: the vectors' file (read when training starts; the model keeps the table), how
  // many of its most frequent words to keep besides those of the training data (0: all), their
  // dimension, and whether training leaves them unchanged.
  std::string word_vectors;
  int64_t max_vectors = 100000, word_dim = 100;
  bool freeze_embeddings = true;
  WordEncoder encoder = WordEncoder::lstm;  // lstm: bidirectional, d_model / 2 per direction
  // Characters: byte embeddings (char_dim; 0: none) under a width-3 CNN of char_channels filters,
  // max-pooled over each token's first/last max_word_chars bytes; and a word-shape embedding
  // (shape_dim; 0: none): case, digits, punctuation, @mention, #hashtag, URL.
  int64_t char_dim = 30, char_channels = 50, max_word_chars = 24, shape_dim = 8;
};

// A backbone turns token ids [B, T] into contextual vectors [B, T, hidden_size()]; the heads on it
// (classifier, tagger) know nothing of which backbone it is. It registers its modules on the model
// that holds it, so state-dict names stay flat ("embedding.weight", "encoder.layers.0. ...").
class Backbone {
 public:
  virtual ~Backbone() = default;
  // capture (optional) receives each layer's attention weights.
  virtual Tensor forward(const Inputs& inputs, nn::AttentionCapture* capture) const = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t num_heads() const = 0;  // 0: no attention to capture (a BiLSTM)
  // The token embedding rows tokens [B, T] look up, [B, T, E] (see Inputs::token_embeddings).
  virtual Tensor lookup(const Tensor& tokens) const = 0;
  // Whether inputs must carry chars (then at most this many bytes per token); 0: ids only.
  virtual int64_t max_word_chars() const { return 0; }
  // The dropout heads apply to the backbone's output (train mode only).
  virtual Tensor output_dropout(const Tensor& x) const = 0;
};

// The backbone config.backbone names, registered on `owner`.
std::unique_ptr<Backbone> make_backbone(nn::Module& owner, const EncoderConfig& config);

// gaze's own: token embedding + positions + TransformerEncoder.
class TransformerBackbone : public Backbone {
 public:
  TransformerBackbone(nn::Module& owner, const EncoderConfig& c);
  Tensor forward(const Inputs& inputs, nn::AttentionCapture* capture) const override;
  int64_t hidden_size() const override { return c_.d_model; }
  int64_t num_heads() const override { return c_.nhead; }
  Tensor lookup(const Tensor& tokens) const override { return embedding->forward(tokens); }
  Tensor output_dropout(const Tensor& x) const override { return dropout->forward(x); }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LearnedPositionalEmbedding> positions;     // when learned
  std::shared_ptr<nn::SinusoidalPositionalEncoding> sinusoidal;  // when sinusoidal (no state)
  std::shared_ptr<nn::Embedding> token_type_embedding;           // with token_types
  std::shared_ptr<nn::LayerNorm> embedding_norm;                 // with embedding_norm
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Dropout> dropout;

 private:
  EncoderConfig c_;
};

// A backbone with a head: the classifier ([B, C]) or the tagger ([B, T, K]).
class EncoderModel : public Model {
 public:
  using Model::Model;
  virtual Tensor forward(const Inputs& inputs, nn::AttentionCapture* capture = nullptr) const = 0;
  Tensor forward(const Tensor& tokens, const Tensor& lengths,
                 nn::AttentionCapture* capture = nullptr) const {
    return forward(Inputs{tokens, lengths, Tensor()}, capture);
  }
  // The configuration of the backbone (the shared part of every encoder model's).
  virtual const EncoderConfig& encoder_config() const = 0;
  std::unique_ptr<Backbone> backbone;
};

struct ClassifierConfig : EncoderConfig {
  int64_t num_classes = 2;
  Pooling pooling = Pooling::mean;  // mean (over non-padding tokens) | cls | max | attention
  Pooler pooler = Pooler::none;
};
// The configuration's fields bound to `c`, for reading and writing it (JSON, YAML).
std::vector<config::Field> config_fields(ClassifierConfig& c);

// Batch-first Transformer layer options of the given sizes (the encoders' and decoders' one form).
nn::TransformerLayerOptions layer_options(int64_t d_model, int64_t nhead, int64_t dim_feedforward,
                                          double dropout, Activation activation, double eps,
                                          bool norm_first, int64_t attention_window = -1);

// [B, d]: the hidden states [B, T, d] pooled over each sequence's tokens (mean, or max per feature)
// or its first (cls); attention pooling has weights and lives in the model (nn::AttentionPooling).
Tensor pool(const Tensor& hidden, const Tensor& lengths, Pooling pooling);

class TransformerClassifier : public EncoderModel {
 public:
  explicit TransformerClassifier(const ClassifierConfig& config);
  using EncoderModel::forward;
  Tensor forward(const Inputs& inputs,
                 nn::AttentionCapture* capture = nullptr) const override;  // [B, C]
  // The pooled (and pooler's) features [B, d] the head reads: the classifier's sentence vectors.
  Tensor features(const Inputs& inputs, nn::AttentionCapture* capture = nullptr) const;
  const EncoderConfig& encoder_config() const override { return config; }
  std::string config_json() const override;
  static ClassifierConfig parse_config(const std::string& json);

  ClassifierConfig config;
  std::shared_ptr<nn::AttentionPooling> attention_pool;  // with Pooling::attention
  std::shared_ptr<nn::Linear> pooler;                    // with Pooler::tanh
  std::shared_ptr<nn::Linear> head;
};

// A sentence encoder: a backbone pooled into one vector per text (then the pooler and, with
// normalize, unit L2 length) — the Universal Sentence Encoder's form, and what `gaze embed` writes.
struct SentenceEncoderConfig : EncoderConfig {
  Pooling pooling = Pooling::mean;
  Pooler pooler = Pooler::tanh;
  bool normalize = true;
};
std::vector<config::Field> config_fields(SentenceEncoderConfig& c);

class SentenceEncoder : public EncoderModel {
 public:
  explicit SentenceEncoder(const SentenceEncoderConfig& config);
  using EncoderModel::forward;
  Tensor forward(const Inputs& inputs,
                 nn::AttentionCapture* capture = nullptr) const override;  // [B, d]
  const EncoderConfig& encoder_config() const override { return config; }
  std::string config_json() const override;
  static SentenceEncoderConfig parse_config(const std::string& json);

  SentenceEncoderConfig config;
  std::shared_ptr<nn::Linear> pooler;  // with Pooler::tanh
};

struct TaggerConfig : EncoderConfig {
  int64_t num_tags = 2;
  // A linear-chain CRF over the words' tags (trained by its NLL, decoded by Viterbi); with
  // crf_constraints, the transitions the tag scheme forbids (O -> I-x, ...) are penalised.
  bool crf = false, crf_constraints = true;
};
std::vector<config::Field> config_fields(TaggerConfig& c);

class TransformerTagger : public EncoderModel {
 public:
  explicit TransformerTagger(const TaggerConfig& config);
  using EncoderModel::forward;
  Tensor forward(const Inputs& inputs,
                 nn::AttentionCapture* capture = nullptr) const override;  // [B, T, K]
  const EncoderConfig& encoder_config() const override { return config; }
  std::string config_json() const override;
  static TaggerConfig parse_config(const std::string& json);

  TaggerConfig config;
  std::shared_ptr<nn::Linear> head;
  std::shared_ptr<nn::CRF> crf;  // when config.crf
};

struct Seq2SeqConfig {
  int64_t src_vocab_size = 0, tgt_vocab_size = 0, d_model = 256, nhead = 4, num_encoder_layers = 3,
          num_decoder_layers = 3, dim_feedforward = 1024, max_positions = 512, pad_id = 0;
  double dropout = 0.1, layer_norm_eps = 1e-5;
  Activation activation = Activation::relu;
  Positions positions = Positions::sinusoidal;
  bool norm_first = true, share_embeddings = false, tie_output = true, scale_embeddings = true;
  int64_t attention_window = -1;  // of the encoder's and the decoder's self-attention (-1: all)
};
std::vector<config::Field> config_fields(Seq2SeqConfig& c);

class TransformerSeq2Seq : public Seq2SeqModel {
 public:
  explicit TransformerSeq2Seq(const Seq2SeqConfig& config);
  Seq2SeqArchitecture architecture() const override { return Seq2SeqArchitecture::transformer; }
  int64_t max_target_tokens() const override { return config.max_positions; }
  Tensor logits(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                const Tensor& tgt_lengths) const override {
    return forward(src, src_lengths, tgt_in, tgt_lengths);
  }
  Seq2SeqAttention attention(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                             const Tensor& tgt_lengths,
                             const nn::AttentionCapture& which) const override;
  // Teacher forcing: logits [B, T, tgt_vocab] for decoder inputs tgt_in [B, T].
  Tensor forward(const Tensor& src, const Tensor& src_lengths, const Tensor& tgt_in,
                 const Tensor& tgt_lengths, nn::AttentionCapture* encoder_capture = nullptr,
                 nn::AttentionCapture* decoder_capture = nullptr) const;
  // src_embeddings (optional): the source's token embedding rows, in place of looking src up.
  Tensor encode(const Tensor& src, const Tensor& src_lengths,
                nn::AttentionCapture* capture = nullptr,
                const Tensor& src_embeddings = Tensor()) const;
  Tensor decode(const Tensor& tgt_in, const Tensor& memory, const Tensor& src_lengths,
                const Tensor& tgt_lengths, nn::AttentionCapture* capture = nullptr) const;
  Tensor source_lookup(const Tensor& src) const override { return src_embedding->forward(src); }
  Tensor logits_from_source_embeddings(const Tensor& src, const Tensor& src_embeddings,
                                       const Tensor& src_lengths, const Tensor& tgt_in,
                                       const Tensor& tgt_lengths) const override {
    return decode(tgt_in, encode(src, src_lengths, nullptr, src_embeddings), src_lengths,
                  tgt_lengths);
  }
  // Embedded inputs (token embedding * scale + positions, dropout) of one side; offset = first
  // position.
  Tensor embed_target(const Tensor& tokens, int64_t offset = 0) const;
  Tensor output_logits(const Tensor& hidden) const;
  std::string config_json() const override;
  static Seq2SeqConfig parse_config(const std::string& json);

  Seq2SeqConfig config;
  std::shared_ptr<nn::Embedding> src_embedding, tgt_embedding;  // the same module when shared
  std::shared_ptr<nn::LearnedPositionalEmbedding> src_positions, tgt_positions;
  std::shared_ptr<nn::SinusoidalPositionalEncoding> sinusoidal;  // when sinusoidal (no state)
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::TransformerDecoder> decoder;
  std::shared_ptr<nn::Linear> output;  // null when tied to tgt_embedding
  std::shared_ptr<nn::Dropout> dropout;

 private:
  std::unique_ptr<StepDecoder> make_decoder(const Tensor& src, const Tensor& src_lengths,
                                            const StepOptions& options) const override;
  Tensor embed(const nn::Embedding& emb, const nn::LearnedPositionalEmbedding* pos,
               const Tensor& tokens, int64_t offset, const Tensor& looked_up = Tensor()) const;
};

}  // namespace gaze::models
