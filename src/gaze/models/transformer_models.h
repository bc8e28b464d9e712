// Transformer models: TransformerClassifier (pooled sequence -> class logits), TransformerTagger
// (one label per token) and TransformerSeq2Seq (encoder-decoder). Inputs are int64 token ids [B, T]
// with lengths [B]; positions past a length are padding.
#pragma once

#include "gaze/io/config.h"
#include "gaze/models/model.h"
#include "gaze/models/seq2seq.h"
#include "gaze/nn/crf.h"
#include "gaze/nn/embedding.h"
#include "gaze/nn/positional.h"
#include "gaze/nn/transformer.h"
#include "gaze/ops/fused.h"

namespace gaze::models {

enum class Positions { sinusoidal, learned, none };
GAZE_ENUM_NAMES(Positions, {Positions::sinusoidal, "sinusoidal"}, {Positions::learned, "learned"},
                {Positions::none, "none"})
enum class Pooling { mean, cls };
GAZE_ENUM_NAMES(Pooling, {Pooling::mean, "mean"}, {Pooling::cls, "cls"})
// The backbones a classifier or tagger can sit on.
enum class BackboneKind { transformer };
GAZE_ENUM_NAMES(BackboneKind, {BackboneKind::transformer, "transformer"})

struct EncoderConfig {
  BackboneKind backbone = BackboneKind::transformer;
  int64_t vocab_size = 0, d_model = 256, nhead = 4, num_layers = 4, dim_feedforward = 1024;
  int64_t max_positions = 512, pad_id = 0;
  double dropout = 0.1, layer_norm_eps = 1e-5;
  Activation activation = Activation::gelu;
  Positions positions = Positions::sinusoidal;
  bool norm_first = true;         // pre-norm layers (then a final LayerNorm)
  bool scale_embeddings = false;  // multiply token embeddings by sqrt(d_model)
};

// A backbone turns token ids [B, T] into contextual vectors [B, T, hidden_size()]; the heads on it
// (classifier, tagger) know nothing of which backbone it is. It registers its modules on the model
// that holds it, so state-dict names stay flat ("embedding.weight", "encoder.layers.0. ...").
class Backbone {
 public:
  virtual ~Backbone() = default;
  // capture (optional) receives each layer's attention weights.
  virtual Tensor forward(const Tensor& tokens, const Tensor& lengths,
                         nn::AttentionCapture* capture) const = 0;
  virtual int64_t hidden_size() const = 0;
  virtual int64_t num_heads() const = 0;
  // The dropout heads apply to the backbone's output (train mode only).
  virtual Tensor output_dropout(const Tensor& x) const = 0;
};

// The backbone config.backbone names, registered on `owner`.
std::unique_ptr<Backbone> make_backbone(nn::Module& owner, const EncoderConfig& config);

// gaze's own: token embedding + positions + TransformerEncoder.
class TransformerBackbone : public Backbone {
 public:
  TransformerBackbone(nn::Module& owner, const EncoderConfig& c);
  Tensor forward(const Tensor& tokens, const Tensor& lengths,
                 nn::AttentionCapture* capture) const override;
  int64_t hidden_size() const override { return c_.d_model; }
  int64_t num_heads() const override { return c_.nhead; }
  Tensor output_dropout(const Tensor& x) const override { return dropout->forward(x); }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LearnedPositionalEmbedding> positions;     // when learned
  std::shared_ptr<nn::SinusoidalPositionalEncoding> sinusoidal;  // when sinusoidal (no state)
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Dropout> dropout;

 private:
  EncoderConfig c_;
};

// A backbone with a head: the classifier ([B, C]) or the tagger ([B, T, K]).
class EncoderModel : public Model {
 public:
  using Model::Model;
  virtual Tensor forward(const Tensor& tokens, const Tensor& lengths,
                         nn::AttentionCapture* capture = nullptr) const = 0;
  std::unique_ptr<Backbone> backbone;
};

struct ClassifierConfig : EncoderConfig {
  int64_t num_classes = 2;
  Pooling pooling = Pooling::mean;  // mean (over non-padding tokens) | cls (the first token)
};
// The configuration's fields bound to `c`, for reading and writing it (JSON, YAML).
std::vector<config::Field> config_fields(ClassifierConfig& c);

class TransformerClassifier : public EncoderModel {
 public:
  explicit TransformerClassifier(const ClassifierConfig& config);
  Tensor forward(const Tensor& tokens, const Tensor& lengths,
                 nn::AttentionCapture* capture = nullptr) const override;  // [B, C]
  std::string config_json() const override;
  static ClassifierConfig parse_config(const std::string& json);

  ClassifierConfig config;
  std::shared_ptr<nn::Linear> head;
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
  Tensor forward(const Tensor& tokens, const Tensor& lengths,
                 nn::AttentionCapture* capture = nullptr) const override;  // [B, T, K]
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
};
std::vector<config::Field> config_fields(Seq2SeqConfig& c);

class TransformerSeq2Seq : public Seq2SeqModel {
 public:
  explicit TransformerSeq2Seq(const Seq2SeqConfig& config);
  Seq2SeqArchitecture architecture() const override { return Seq2SeqArchitecture::transformer; }
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
  Tensor encode(const Tensor& src, const Tensor& src_lengths,
                nn::AttentionCapture* capture = nullptr) const;
  Tensor decode(const Tensor& tgt_in, const Tensor& memory, const Tensor& src_lengths,
                const Tensor& tgt_lengths, nn::AttentionCapture* capture = nullptr) const;
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
               const Tensor& tokens, int64_t offset) const;
};

}  // namespace gaze::models
