// Transformer layers and stacks, as torch.nn.TransformerEncoderLayer / DecoderLayer /
// TransformerEncoder / TransformerDecoder / Transformer: same arguments, structure and state-dict
// keys.
#pragma once

#include <memory>
#include <vector>

#include "gaze/nn/layer_norm.h"
#include "gaze/nn/linear.h"
#include "gaze/nn/multihead_attention.h"
#include "gaze/ops/fused.h"

namespace gaze::nn {

struct TransformerLayerOptions {
  int64_t d_model = 512, nhead = 8, dim_feedforward = 2048;
  double dropout = 0.1;
  Activation activation = Activation::relu;
  double layer_norm_eps = 1e-5;
  bool batch_first = false, norm_first = false, bias = true;
  // gaze: a layer that widens the stream (the Universal Sentence Encoder's first): attention's
  // output projection and a residual projection ("residual_proj") map d_model -> out_features,
  // and the feed-forward and norm2 work at out_features. 0: d_model.
  int64_t out_features = 0;
  // gaze: sliding-window self-attention, keys within this many positions of each query (-1: all;
  // SdpaOptions::window). Cross-attention always sees the whole memory.
  int64_t attention_window = -1;
  int64_t width() const { return out_features > 0 ? out_features : d_model; }
};

// Attention weights collected from a stack: self_attention[i] (and cross_attention[i], decoders
// only) is layer i's [B, H', Tq, Tk]. `layers` and `heads` choose what is captured (empty = all;
// negative layers count from the end; heads in the order given): a layer not chosen holds an
// undefined tensor, and only the chosen heads' Tq x Tk weights are ever built.
struct AttentionCapture {
  std::vector<int64_t> layers, heads;
  std::vector<Tensor> self_attention;   // encoder or decoder self-attention
  std::vector<Tensor> cross_attention;  // decoder only
  Tensor pooling;  // a classifier with attention pooling: its weights over the tokens [B, T]
  // With gradients, each captured layer also leaves its MultiheadAttentionOutput (probe and
  // values; nn::attention_weight_gradient) here, index-aligned with the weights above.
  bool gradients = false;
  std::vector<MultiheadAttentionOutput> self_probes, cross_probes;

  // Whether layer i of a stack of n is chosen (checks the choice against n).
  bool wants(int64_t i, int64_t n) const;
};

// torch's TransformerEncoder(Layer).forward arguments after src (mask is the layer's src_mask),
// and the capture: a layer appends its self-attention weights (per head, the capture's heads) to
// capture->self_attention; a stack passes it to the layers it chooses and appends an undefined
// tensor for the others, so index i is layer i.
struct EncoderArgs {
  // {} initialisers: designated initialisers may leave any member out.
  Tensor mask{}, src_key_padding_mask{};
  bool is_causal = false;
  AttentionCapture* capture = nullptr;
};

// torch's TransformerDecoder(Layer).forward arguments after tgt and memory, and the capture
// (self_attention and cross_attention, as EncoderArgs').
struct DecoderArgs {
  Tensor tgt_mask{}, memory_mask{}, tgt_key_padding_mask{}, memory_key_padding_mask{};
  bool tgt_is_causal = false, memory_is_causal = false;
  AttentionCapture* capture = nullptr;
};

class TransformerEncoderLayer : public Module {
 public:
  explicit TransformerEncoderLayer(const TransformerLayerOptions& options);
  // Masks as nn.MultiheadAttention's (boolean true = ignore).
  Tensor forward(const Tensor& src, const EncoderArgs& args = {}) const;

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Linear> residual_proj;  // with out_features only
  std::shared_ptr<LayerNorm> norm1, norm2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;

 private:
  // residual + linear2(dropout(activation(linear1(x)))) (no residual: undefined).
  Tensor feed_forward(const Tensor& x, const Tensor& residual = Tensor()) const;
};

class TransformerDecoderLayer : public Module {
 public:
  explicit TransformerDecoderLayer(const TransformerLayerOptions& options);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const DecoderArgs& args = {}) const;

  TransformerLayerOptions options;
  std::shared_ptr<MultiheadAttention> self_attn, multihead_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<LayerNorm> norm1, norm2, norm3;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2, dropout3;

  // residual + linear2(dropout(activation(linear1(x)))) (no residual: undefined); public for
  // incremental decoding.
  Tensor feed_forward(const Tensor& x, const Tensor& residual = Tensor()) const;
};

class TransformerEncoder : public Module {
 public:
  // num_layers copies of one layer (identical initial weights, as torch's deepcopy), then an
  // optional final LayerNorm ("norm").
  TransformerEncoder(const TransformerLayerOptions& layer, int64_t num_layers,
                     bool final_norm = false);
  // torch's form: num_layers copies of `prototype` (its current weights) and a copy of
  // `final_norm`.
  TransformerEncoder(const TransformerEncoderLayer& prototype, int64_t num_layers,
                     const LayerNorm* final_norm);
  // gaze: layers of their own options (each initialised afresh; the widths must chain), then an
  // optional final LayerNorm over the last width.
  TransformerEncoder(const std::vector<TransformerLayerOptions>& layers, bool final_norm);
  Tensor forward(const Tensor& src, const EncoderArgs& args = {}) const;

  std::vector<std::shared_ptr<TransformerEncoderLayer>> layers;
  std::shared_ptr<LayerNorm> norm;  // may be null
};

class TransformerDecoder : public Module {
 public:
  TransformerDecoder(const TransformerLayerOptions& layer, int64_t num_layers,
                     bool final_norm = false);
  TransformerDecoder(const TransformerDecoderLayer& prototype, int64_t num_layers,
                     const LayerNorm* final_norm);
  Tensor forward(const Tensor& tgt, const Tensor& memory, const DecoderArgs& args = {}) const;

  std::vector<std::shared_ptr<TransformerDecoderLayer>> layers;
  std::shared_ptr<LayerNorm> norm;
};

struct TransformerOptions {
  TransformerLayerOptions layer;
  int64_t num_encoder_layers = 6, num_decoder_layers = 6;
};

class Transformer : public Module {
 public:
  explicit Transformer(const TransformerOptions& options);
  Tensor forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask = Tensor(),
                 const Tensor& tgt_mask = Tensor(), const Tensor& memory_mask = Tensor(),
                 const Tensor& src_key_padding_mask = Tensor(),
                 const Tensor& tgt_key_padding_mask = Tensor(),
                 const Tensor& memory_key_padding_mask = Tensor()) const;
  // torch's helper: a float [sz, sz] mask with -inf above the diagonal.
  static Tensor generate_square_subsequent_mask(int64_t sz, DType dtype = DType::f32);

  TransformerOptions options;
  std::shared_ptr<TransformerEncoder> encoder;
  std::shared_ptr<TransformerDecoder> decoder;
};

}  // namespace gaze::nn
