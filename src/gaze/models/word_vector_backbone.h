// The glove backbone: pretrained word vectors (a frozen or fine-tuned table looked up in lower
// case), each word's characters (a CNN over byte embeddings, max-pooled) and its shape, under a
// BiLSTM or a Transformer encoder — the classic sequence-labelling stack of Lample et al. and Ma &
// Hovy (2016).
#pragma once

#include "gaze/models/transformer_models.h"
#include "gaze/nn/rnn.h"

namespace gaze::models {

// Word-shape classes of a token's bytes (0: padding): lower, UPPER, Capitalised, mIxed, 2024,
// a1b2, punctuation, @mention, #hashtag, URL, other (non-ASCII letters and the like).
constexpr int64_t kWordShapes = 12;
int64_t word_shape(const int64_t* chars, int64_t L);

class WordVectorBackbone : public Backbone {
 public:
  WordVectorBackbone(nn::Module& owner, const EncoderConfig& c);
  Tensor forward(const Inputs& inputs, nn::AttentionCapture* capture) const override;
  int64_t hidden_size() const override { return c_.d_model; }
  int64_t num_heads() const override {
    return c_.encoder == WordEncoder::transformer ? c_.nhead : 0;
  }
  int64_t max_word_chars() const override {
    return c_.char_dim > 0 || c_.shape_dim > 0 ? c_.max_word_chars : 0;
  }
  Tensor output_dropout(const Tensor& x) const override { return dropout->forward(x); }
  Tensor lookup(const Tensor& tokens) const override { return embedding->forward(tokens); }

  std::shared_ptr<nn::Embedding> embedding;        // [vocab, word_dim]: the word vectors
  std::shared_ptr<nn::Embedding> char_embedding;   // [257, char_dim]: bytes + 1, 0 = padding
  std::shared_ptr<nn::Linear> char_conv;           // width-3 windows -> char_channels
  std::shared_ptr<nn::Embedding> shape_embedding;  // [kWordShapes, shape_dim]
  std::shared_ptr<nn::LSTM> lstm;                  // encoder lstm
  std::shared_ptr<nn::Linear> input_projection;    // encoder transformer: features -> d_model
  std::shared_ptr<nn::SinusoidalPositionalEncoding> sinusoidal;
  std::shared_ptr<nn::TransformerEncoder> encoder;
  std::shared_ptr<nn::Dropout> dropout;

 private:
  Tensor characters(const Tensor& chars) const;  // [B, T, char_channels]
  Tensor shapes(const Tensor& chars) const;      // [B, T, shape_dim]
  EncoderConfig c_;
};

}  // namespace gaze::models
