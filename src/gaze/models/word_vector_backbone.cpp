#include "gaze/models/word_vector_backbone.h"

#include <algorithm>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/nn/init.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::models {
namespace {
constexpr int64_t kBytes = 257;  // byte + 1; 0 is padding

bool is_lower(int64_t b) {
  return b >= 'a' && b <= 'z';
}
bool is_upper(int64_t b) {
  return b >= 'A' && b <= 'Z';
}
bool is_digit(int64_t b) {
  return b >= '0' && b <= '9';
}
}  // namespace

int64_t word_shape(const int64_t* chars, int64_t L) {
  int64_t n = 0, lower = 0, upper = 0, digit = 0, high = 0;
  while (n < L && chars[n] > 0) ++n;
  if (n == 0) return 0;
  auto byte = [&](int64_t i) { return chars[i] - 1; };
  auto starts = [&](const char* p) {
    int64_t i = 0;
    for (; p[i] && i < n; ++i)
      if (byte(i) != p[i]) return false;
    return p[i] == 0;
  };
  if (n > 1 && byte(0) == '@') return 8;
  if (n > 1 && byte(0) == '#') return 9;
  if (starts("http") || starts("www.")) return 10;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t b = byte(i);
    lower += is_lower(b), upper += is_upper(b), digit += is_digit(b), high += b >= 0x80;
  }
  const int64_t letters = lower + upper + high;
  if (digit > 0) return letters == 0 ? 5 : 6;
  if (letters == 0) return 7;
  if (upper == 0) return lower > 0 ? 1 : 11;
  if (lower == 0 && high == 0) return upper > 1 ? 2 : 3;
  if (is_upper(byte(0)) && upper == 1) return 3;
  return 4;
}

WordVectorBackbone::WordVectorBackbone(nn::Module& owner, const EncoderConfig& c) : c_(c) {
  GAZE_CHECK(c.vocab_size > 0, ValueError, "vocab_size must be positive, got {}", c.vocab_size);
  GAZE_CHECK(c.pad_id >= 0 && c.pad_id < c.vocab_size, ValueError,
             "pad_id {} must be a token id below vocab_size {}", c.pad_id, c.vocab_size);
  GAZE_CHECK(c.encoder != WordEncoder::lstm || c.d_model % 2 == 0, ValueError,
             "model.d_model must be even with encoder lstm (d_model / 2 per direction), got {}",
             c.d_model);
  embedding = owner.register_module(
      "embedding", std::make_shared<nn::Embedding>(c.vocab_size, c.word_dim, c.pad_id));
  if (c.freeze_embeddings) embedding->weight.set_requires_grad(false);
  int64_t features = c.word_dim;
  if (c.char_dim > 0) {
    char_embedding = owner.register_module("char_embedding",
                                           std::make_shared<nn::Embedding>(kBytes, c.char_dim, 0));
    {
      // torch's N(0, 1) is far too large beside unit-scale word vectors.
      NoGradGuard no_grad;
      nn::init::uniform_(char_embedding->weight, -0.1, 0.1);
      float* row0 = char_embedding->weight.data<float>();
      std::fill(row0, row0 + c.char_dim, 0.0f);
    }
    char_conv = owner.register_module(
        "char_conv", std::make_shared<nn::Linear>(3 * c.char_dim, c.char_channels));
    features += c.char_channels;
  }
  if (c.shape_dim > 0) {
    shape_embedding = owner.register_module(
        "shape_embedding", std::make_shared<nn::Embedding>(kWordShapes, c.shape_dim, 0));
    features += c.shape_dim;
  }
  if (c.encoder == WordEncoder::lstm) {
    lstm = owner.register_module(
        "lstm", std::make_shared<nn::LSTM>(nn::RnnOptions{.input_size = features,
                                                          .hidden_size = c.d_model / 2,
                                                          .num_layers = c.num_layers,
                                                          .batch_first = true,
                                                          .dropout = c.dropout,
                                                          .bidirectional = true}));
  } else {
    input_projection = owner.register_module("input_projection",
                                             std::make_shared<nn::Linear>(features, c.d_model));
    sinusoidal =
        std::make_shared<nn::SinusoidalPositionalEncoding>(c.d_model, true, c.max_positions);
    encoder = owner.register_module(
        "encoder", std::make_shared<nn::TransformerEncoder>(
                       layer_options(c.d_model, c.nhead, c.dim_feedforward, c.dropout, c.activation,
                                     c.layer_norm_eps, c.norm_first),
                       c.num_layers, c.norm_first));
  }
  dropout = owner.register_module("dropout", std::make_shared<nn::Dropout>(c.dropout));
}

Tensor WordVectorBackbone::characters(const Tensor& chars) const {
  const int64_t B = chars.size(0), T = chars.size(1), L = chars.size(2), N = B * T;
  const Tensor x = char_embedding->forward(reshape(chars, Shape{N, L}));  // [N, L, c]
  // Width-3 windows (zero beyond the ends) as one matmul: [left, centre, right] -> channels.
  const Tensor zero = Tensor::zeros(Shape{N, 1, c_.char_dim}, x.dtype());
  const Tensor left = L > 1 ? cat({zero, narrow(x, 1, 0, L - 1)}, 1) : zero;
  const Tensor right = L > 1 ? cat({narrow(x, 1, 1, L - 1), zero}, 1) : zero;
  const Tensor h = char_conv->forward(cat({left, x, right}, 2));  // [N, L, F]
  // Max over each token's real bytes (left-aligned, non-zero), as max pooling over a sequence.
  Tensor bytes = Tensor::zeros(Shape{N}, DType::i64);
  const int64_t* cp = chars.data<int64_t>();
  for (int64_t i = 0; i < N * L; ++i) bytes.data<int64_t>()[i / L] += cp[i] != 0;
  return reshape(pool(h, bytes, Pooling::max), Shape{B, T, c_.char_channels});
}

Tensor WordVectorBackbone::shapes(const Tensor& chars) const {
  const int64_t B = chars.size(0), T = chars.size(1), L = chars.size(2);
  Tensor ids = Tensor::empty(Shape{B, T}, DType::i64);
  for (int64_t i = 0; i < B * T; ++i)
    ids.data<int64_t>()[i] = word_shape(chars.data<int64_t>() + i * L, L);
  return shape_embedding->forward(ids);
}

Tensor WordVectorBackbone::forward(const Inputs& in, nn::AttentionCapture* capture) const {
  const Tensor& tokens = in.tokens;
  GAZE_CHECK(tokens.defined() && tokens.dtype() == DType::i64 && tokens.dim() == 2, ValueError,
             "model: tokens must be int64 [B, T], got {}",
             tokens.defined() ? tokens.shape_str() : "undefined");
  check_token_embeddings(in, embedding->embedding_dim);
  std::vector<Tensor> parts = {in.token_embeddings.defined() ? in.token_embeddings
                                                             : embedding->forward(tokens)};
  if (max_word_chars() > 0) {
    GAZE_CHECK(in.chars.defined() && in.chars.dtype() == DType::i64 && in.chars.dim() == 3 &&
                   in.chars.size(0) == tokens.size(0) && in.chars.size(1) == tokens.size(1),
               ValueError,
               "model: this glove backbone reads each token's characters: chars must be int64 "
               "[B, T, L] = [{}, {}, L] (models::char_ids), got {}",
               tokens.size(0), tokens.size(1),
               in.chars.defined() ? in.chars.shape_str() : "undefined");
    if (char_embedding) parts.push_back(characters(in.chars));
    if (shape_embedding) parts.push_back(shapes(in.chars));
  }
  const Tensor x = dropout->forward(parts.size() == 1 ? parts[0] : cat(parts, 2));
  if (lstm) return lstm->forward(x, in.lengths).output;
  const Tensor h = sinusoidal->forward(input_projection->forward(x), 0);
  return encoder->forward(
      h, {.src_key_padding_mask = padding_mask(in.lengths, tokens.size(1)), .capture = capture});
}

}  // namespace gaze::models
