// Transformer models: TransformerClassifier (pooled sequence -> class logits), TransformerTagger
// (one label per token) and TransformerSeq2Seq (encoder-decoder). Inputs are int64 token ids [B, T]
// with lengths [B]; positions past a length are padding.
#pragma once

#include "gaze/io/config.h"
#include "gaze/models/model.h"
#include "gaze/nn/embedding.h"
#include "gaze/nn/positional.h"
#include "gaze/nn/transformer.h"

namespace gaze::models {

struct EncoderConfig {
  int64_t vocab_size = 0, d_model = 256, nhead = 4, num_layers = 4, dim_feedforward = 1024;
  int64_t max_positions = 512, pad_id = 0;
  double dropout = 0.1, layer_norm_eps = 1e-5;
  std::string activation = "gelu";
  std::string positions = "sinusoidal";  // sinusoidal | learned | none
  bool norm_first = true;                // pre-norm layers (then a final LayerNorm)
  bool scale_embeddings = false;         // multiply token embeddings by sqrt(d_model)
};

// Token embedding + positions + TransformerEncoder, shared by the classifier and the tagger.
class TextEncoder {
 public:
  TextEncoder(nn::Module& owner, const EncoderConfig& c);
  // [B, T, d_model]; capture (optional) receives each layer's attention weights.
  Tensor forward(const Tensor& tokens, const Tensor& lengths, nn::AttentionCapture* capture) const;

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::LearnedPositionalEmbedding> positions;     // when learned
  std::shared_ptr<nn::SinusoidalPositionalEncoding> sinusoidal;  // when sinusoidal (no state)
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Dropout> dropout;

 private:
  EncoderConfig c_;
};

struct ClassifierConfig : EncoderConfig {
  int64_t num_classes = 2;
  std::string pooling = "mean";  // mean (over non-padding tokens) | cls (the first token)
};
// The configuration's fields bound to `c`, for reading and writing it (JSON, YAML).
std::vector<config::Field> config_fields(ClassifierConfig& c);

class TransformerClassifier : public Model {
 public:
  explicit TransformerClassifier(const ClassifierConfig& config);
  Tensor forward(const Tensor& tokens, const Tensor& lengths,
                 nn::AttentionCapture* capture = nullptr) const;  // [B, C]
  std::string config_json() const override;
  static ClassifierConfig parse_config(const std::string& json);

  ClassifierConfig config;
  TextEncoder body;
  std::shared_ptr<nn::Linear> head;
};

struct TaggerConfig : EncoderConfig {
  int64_t num_tags = 2;
};
std::vector<config::Field> config_fields(TaggerConfig& c);

class TransformerTagger : public Model {
 public:
  explicit TransformerTagger(const TaggerConfig& config);
  Tensor forward(const Tensor& tokens, const Tensor& lengths,
                 nn::AttentionCapture* capture = nullptr) const;  // [B, T, K]
  std::string config_json() const override;
  static TaggerConfig parse_config(const std::string& json);

  TaggerConfig config;
  TextEncoder body;
  std::shared_ptr<nn::Linear> head;
};

struct Seq2SeqConfig {
  int64_t src_vocab_size = 0, tgt_vocab_size = 0, d_model = 256, nhead = 4, num_encoder_layers = 3,
          num_decoder_layers = 3, dim_feedforward = 1024, max_positions = 512, pad_id = 0;
  double dropout = 0.1, layer_norm_eps = 1e-5;
  std::string activation = "relu", positions = "sinusoidal";
  bool norm_first = true, share_embeddings = false, tie_output = true, scale_embeddings = true;
};
std::vector<config::Field> config_fields(Seq2SeqConfig& c);

class TransformerSeq2Seq : public Model {
 public:
  explicit TransformerSeq2Seq(const Seq2SeqConfig& config);
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
  Tensor embed(const nn::Embedding& emb, const nn::LearnedPositionalEmbedding* pos,
               const Tensor& tokens, int64_t offset) const;
};

}  // namespace gaze::models
