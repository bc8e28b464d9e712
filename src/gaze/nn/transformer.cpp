#include "gaze/nn/transformer.h"

#include <limits>

#include "gaze/core/error.h"
#include "gaze/nn/init.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/fused.h"
#include "gaze/ops/lowp.h"

namespace gaze::nn {
namespace {

void check_options(const TransformerLayerOptions& o, const char* who) {
  GAZE_CHECK(o.d_model > 0 && o.nhead > 0 && o.d_model % o.nhead == 0, ValueError,
             "{}: d_model ({}) must be a positive multiple of nhead ({})", who, o.d_model, o.nhead);
  GAZE_CHECK(o.dim_feedforward > 0, ValueError, "{}: dim_feedforward must be positive, got {}", who,
             o.dim_feedforward);
  GAZE_CHECK(o.out_features >= 0, ValueError, "{}: out_features must be >= 0, got {}", who,
             o.out_features);
  GAZE_CHECK(o.attention_window >= -1, ValueError,
             "{}: attention_window must be -1 (no window) or >= 0, got {}", who,
             o.attention_window);
}

// The attention of a layer; with a capture, its per-head weights (the capture's heads) are
// appended to `captured`.
Tensor attend(const MultiheadAttention& mha, const Tensor& q, const Tensor& kv, const Tensor& mask,
              const Tensor& padding, bool causal, AttentionCapture* capture, bool cross,
              int64_t window = -1) {
  AttentionArgs a;
  a.key_padding_mask = padding, a.attn_mask = mask, a.is_causal = causal;
  if (window >= 0) a.window = window;
  a.need_weights = capture != nullptr, a.average_attn_weights = false;
  if (capture) a.weight_heads = capture->heads;
  a.weight_gradients = capture && capture->gradients;
  auto r = mha.forward(q, kv, kv, a);
  if (capture) {
    (cross ? capture->cross_attention : capture->self_attention).push_back(r.weights);
    if (capture->gradients) (cross ? capture->cross_probes : capture->self_probes).push_back(r);
  }
  return r.output;
}

}  // namespace

bool AttentionCapture::wants(int64_t i, int64_t n) const {
  for (int64_t l : layers)
    GAZE_CHECK(l >= -n && l < n, IndexError,
               "attention capture: layer {} out of range for a stack of {} layers (0..{}, or "
               "negative from the end)",
               l, n, n - 1);
  if (layers.empty()) return true;
  for (int64_t l : layers)
    if ((l < 0 ? l + n : l) == i) return true;
  return false;
}

// --- encoder layer
// ----------------------------------------------------------------------------------

TransformerEncoderLayer::TransformerEncoderLayer(const TransformerLayerOptions& o)
    : Module("TransformerEncoderLayer"), options(o) {
  check_options(o, "TransformerEncoderLayer");
  self_attn = register_module(
      "self_attn", std::make_shared<MultiheadAttention>(o.d_model, o.nhead, o.dropout, o.bias,
                                                        std::nullopt, std::nullopt, o.batch_first));
  const int64_t w = o.width();
  if (w != o.d_model) {
    // Replaced before any use; MultiheadAttention projects with whatever out_proj maps to.
    self_attn->out_proj =
        self_attn->register_module("out_proj", std::make_shared<Linear>(o.d_model, w, o.bias));
    if (o.bias) init::zeros_(self_attn->out_proj->bias);
    residual_proj =
        register_module("residual_proj", std::make_shared<Linear>(o.d_model, w, o.bias));
  }
  linear1 = register_module("linear1", std::make_shared<Linear>(w, o.dim_feedforward, o.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 = register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, w, o.bias));
  norm1 = register_module(
      "norm1", std::make_shared<LayerNorm>(std::vector<int64_t>{o.d_model}, o.layer_norm_eps));
  norm2 = register_module("norm2",
                          std::make_shared<LayerNorm>(std::vector<int64_t>{w}, o.layer_norm_eps));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(o.dropout));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerEncoderLayer::feed_forward(const Tensor& x, const Tensor& residual) const {
  // Reduced-precision inference hands the hidden layer over in that precision, and adds the
  // residual in the last product's epilogue.
  if (!is_training())
    if (auto y = lowp_feed_forward(x, linear1->weight, linear1->bias, options.activation,
                                   linear2->weight, linear2->bias, residual))
      return *y;
  // linear2(dropout(activation(linear1(x)))): bias and activation ride in linear1's GEMM.
  const Tensor h = linear_activation(x, linear1->weight, linear1->bias, options.activation);
  const Tensor y = dropout2->forward(linear2->forward(dropout->forward(h)));
  return residual.defined() ? add(residual, y) : y;
}

Tensor TransformerEncoderLayer::forward(const Tensor& src, const EncoderArgs& args) const {
  const std::vector<int64_t> ns{options.width()};
  const double eps = options.layer_norm_eps;
  AttentionCapture* cap = args.capture;
  auto self = [&](const Tensor& x) {
    return dropout1->forward(attend(*self_attn, x, x, args.mask, args.src_key_padding_mask,
                                    args.is_causal, cap, false, options.attention_window));
  };
  // The residual stream, projected when the layer widens it.
  const Tensor res = residual_proj ? residual_proj->forward(src) : src;
  if (options.norm_first) {
    // x + sa(norm1(x)); the sum and norm2 of it come from one fused pass.
    const AddNorm a =
        add_layer_norm(res, self(norm1->forward(src)), ns, norm2->weight, norm2->bias, eps);
    return feed_forward(a.out, a.sum);
  }
  GAZE_CHECK(!residual_proj, ValueError,
             "TransformerEncoderLayer: out_features needs norm_first (norm1 is over d_model)");
  const Tensor sa = self(src);
  const Tensor x = add_layer_norm(src, sa, ns, norm1->weight, norm1->bias, eps).out;
  return add_layer_norm(x, feed_forward(x), ns, norm2->weight, norm2->bias, eps).out;
}

// --- decoder layer
// ----------------------------------------------------------------------------------

TransformerDecoderLayer::TransformerDecoderLayer(const TransformerLayerOptions& o)
    : Module("TransformerDecoderLayer"), options(o) {
  check_options(o, "TransformerDecoderLayer");
  auto mha = [&] {
    return std::make_shared<MultiheadAttention>(o.d_model, o.nhead, o.dropout, o.bias, std::nullopt,
                                                std::nullopt, o.batch_first);
  };
  self_attn = register_module("self_attn", mha());
  multihead_attn = register_module("multihead_attn", mha());
  linear1 =
      register_module("linear1", std::make_shared<Linear>(o.d_model, o.dim_feedforward, o.bias));
  dropout = register_module("dropout", std::make_shared<Dropout>(o.dropout));
  linear2 =
      register_module("linear2", std::make_shared<Linear>(o.dim_feedforward, o.d_model, o.bias));
  for (auto [name, n] :
       {std::pair{"norm1", &norm1}, std::pair{"norm2", &norm2}, std::pair{"norm3", &norm3}})
    *n = register_module(
        name, std::make_shared<LayerNorm>(std::vector<int64_t>{o.d_model}, o.layer_norm_eps));
  for (auto [name, d] : {std::pair{"dropout1", &dropout1}, std::pair{"dropout2", &dropout2},
                         std::pair{"dropout3", &dropout3}})
    *d = register_module(name, std::make_shared<Dropout>(o.dropout));
}

Tensor TransformerDecoderLayer::feed_forward(const Tensor& x, const Tensor& residual) const {
  if (!is_training())
    if (auto y = lowp_feed_forward(x, linear1->weight, linear1->bias, options.activation,
                                   linear2->weight, linear2->bias, residual))
      return *y;
  const Tensor h = linear_activation(x, linear1->weight, linear1->bias, options.activation);
  const Tensor y = dropout3->forward(linear2->forward(dropout->forward(h)));
  return residual.defined() ? add(residual, y) : y;
}

Tensor TransformerDecoderLayer::forward(const Tensor& tgt, const Tensor& memory,
                                        const DecoderArgs& args) const {
  const std::vector<int64_t> ns{options.d_model};
  const double eps = options.layer_norm_eps;
  AttentionCapture* cap = args.capture;
  auto self = [&](const Tensor& x) {
    return dropout1->forward(attend(*self_attn, x, x, args.tgt_mask, args.tgt_key_padding_mask,
                                    args.tgt_is_causal, cap, false, options.attention_window));
  };
  auto cross = [&](const Tensor& x) {
    return dropout2->forward(attend(*multihead_attn, x, memory, args.memory_mask,
                                    args.memory_key_padding_mask, args.memory_is_causal, cap,
                                    true));
  };
  if (options.norm_first) {
    const AddNorm a =
        add_layer_norm(tgt, self(norm1->forward(tgt)), ns, norm2->weight, norm2->bias, eps);
    const AddNorm b = add_layer_norm(a.sum, cross(a.out), ns, norm3->weight, norm3->bias, eps);
    return feed_forward(b.out, b.sum);
  }
  const Tensor sa = self(tgt);
  const Tensor x = add_layer_norm(tgt, sa, ns, norm1->weight, norm1->bias, eps).out;
  const Tensor ca = cross(x);
  const Tensor y = add_layer_norm(x, ca, ns, norm2->weight, norm2->bias, eps).out;
  return add_layer_norm(y, feed_forward(y), ns, norm3->weight, norm3->bias, eps).out;
}

// --- stacks
// -------------------------------------------------------------------------------------------

namespace {
// torch builds a stack by deep-copying one layer: every layer starts with the same weights.
template <class Layer>
std::vector<std::shared_ptr<Layer>> make_layers(Module& owner, const TransformerLayerOptions& o,
                                                int64_t n) {
  GAZE_CHECK(n >= 1, ValueError, "num_layers must be at least 1, got {}", n);
  std::vector<std::shared_ptr<Layer>> layers;
  for (int64_t i = 0; i < n; ++i) {
    auto layer = std::make_shared<Layer>(o);
    // Weights that a checkpoint will replace are not copied: copying untouched memory into more
    // was a tenth of loading the bench translator (page faults).
    if (i > 0 && !init::random_init_skipped()) layer->load_state_dict(layers[0]->state_dict());
    layers.push_back(owner.register_module("layers." + std::to_string(i), layer));
  }
  return layers;
}
}  // namespace

TransformerEncoder::TransformerEncoder(const TransformerLayerOptions& o, int64_t n, bool final_norm)
    : Module("TransformerEncoder") {
  layers = make_layers<TransformerEncoderLayer>(*this, o, n);
  if (final_norm)
    norm = register_module(
        "norm", std::make_shared<LayerNorm>(std::vector<int64_t>{o.d_model}, o.layer_norm_eps));
}

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayer& proto, int64_t n,
                                       const LayerNorm* final_norm)
    : TransformerEncoder(proto.options, n, final_norm != nullptr) {
  for (auto& layer : layers) layer->load_state_dict(proto.state_dict());
  if (final_norm) norm->load_state_dict(final_norm->state_dict());
}

TransformerEncoder::TransformerEncoder(const std::vector<TransformerLayerOptions>& options,
                                       bool final_norm)
    : Module("TransformerEncoder") {
  GAZE_CHECK(!options.empty(), ValueError, "TransformerEncoder: needs at least one layer");
  for (size_t i = 0; i < options.size(); ++i) {
    GAZE_CHECK(i == 0 || options[i].d_model == options[i - 1].width(), ValueError,
               "TransformerEncoder: layer {} reads {} features but layer {} writes {}", i,
               options[i].d_model, i - 1, options[i - 1].width());
    layers.push_back(register_module("layers." + std::to_string(i),
                                     std::make_shared<TransformerEncoderLayer>(options[i])));
  }
  if (final_norm)
    norm = register_module("norm",
                           std::make_shared<LayerNorm>(std::vector<int64_t>{options.back().width()},
                                                       options.back().layer_norm_eps));
}

Tensor TransformerEncoder::forward(const Tensor& src, const EncoderArgs& args) const {
  Tensor x = src;
  const auto n = static_cast<int64_t>(layers.size());
  AttentionCapture* capture = args.capture;
  EncoderArgs layer = args;
  for (int64_t i = 0; i < n; ++i) {
    const bool want = capture && capture->wants(i, n);
    layer.capture = want ? capture : nullptr;
    x = layers[i]->forward(x, layer);
    if (capture && !want) {
      capture->self_attention.emplace_back();
      if (capture->gradients) capture->self_probes.emplace_back();
    }
  }
  return norm ? norm->forward(x) : x;
}

TransformerDecoder::TransformerDecoder(const TransformerLayerOptions& o, int64_t n, bool final_norm)
    : Module("TransformerDecoder") {
  layers = make_layers<TransformerDecoderLayer>(*this, o, n);
  if (final_norm)
    norm = register_module(
        "norm", std::make_shared<LayerNorm>(std::vector<int64_t>{o.d_model}, o.layer_norm_eps));
}

TransformerDecoder::TransformerDecoder(const TransformerDecoderLayer& proto, int64_t n,
                                       const LayerNorm* final_norm)
    : TransformerDecoder(proto.options, n, final_norm != nullptr) {
  for (auto& layer : layers) layer->load_state_dict(proto.state_dict());
  if (final_norm) norm->load_state_dict(final_norm->state_dict());
}

Tensor TransformerDecoder::forward(const Tensor& tgt, const Tensor& memory,
                                   const DecoderArgs& args) const {
  Tensor x = tgt;
  const auto n = static_cast<int64_t>(layers.size());
  AttentionCapture* capture = args.capture;
  DecoderArgs layer = args;
  for (int64_t i = 0; i < n; ++i) {
    const bool want = capture && capture->wants(i, n);
    layer.capture = want ? capture : nullptr;
    x = layers[i]->forward(x, memory, layer);
    if (capture && !want) {
      capture->self_attention.emplace_back();
      capture->cross_attention.emplace_back();
      if (capture->gradients) {
        capture->self_probes.emplace_back();
        capture->cross_probes.emplace_back();
      }
    }
  }
  return norm ? norm->forward(x) : x;
}

// --- Transformer
// ----------------------------------------------------------------------------------------

Transformer::Transformer(const TransformerOptions& o) : Module("Transformer"), options(o) {
  encoder = register_module(
      "encoder", std::make_shared<TransformerEncoder>(o.layer, o.num_encoder_layers, true));
  decoder = register_module(
      "decoder", std::make_shared<TransformerDecoder>(o.layer, o.num_decoder_layers, true));
  // torch.nn.Transformer._reset_parameters: xavier_uniform_ on every matrix.
  for (auto& [name, p] : named_parameters())
    if (p.dim() > 1) init::xavier_uniform_(p);
}

Tensor Transformer::forward(const Tensor& src, const Tensor& tgt, const Tensor& src_mask,
                            const Tensor& tgt_mask, const Tensor& memory_mask,
                            const Tensor& src_padding, const Tensor& tgt_padding,
                            const Tensor& memory_padding) const {
  const int bdim = options.layer.batch_first ? 0 : 1;
  GAZE_CHECK(src.dim() == tgt.dim() && (src.dim() == 2 || src.size(bdim) == tgt.size(bdim)),
             ValueError, "Transformer: the batch sizes of src {} and tgt {} must be equal",
             src.shape_str(), tgt.shape_str());
  GAZE_CHECK(src.size(-1) == options.layer.d_model && tgt.size(-1) == options.layer.d_model,
             ValueError,
             "Transformer: the feature sizes of src {} and tgt {} must equal d_model {}",
             src.shape_str(), tgt.shape_str(), options.layer.d_model);
  const Tensor memory =
      encoder->forward(src, {.mask = src_mask, .src_key_padding_mask = src_padding});
  return decoder->forward(tgt, memory,
                          {.tgt_mask = tgt_mask,
                           .memory_mask = memory_mask,
                           .tgt_key_padding_mask = tgt_padding,
                           .memory_key_padding_mask = memory_padding});
}

Tensor Transformer::generate_square_subsequent_mask(int64_t sz, DType dtype) {
  Tensor m = Tensor::zeros(Shape{sz, sz}, DType::f64);
  for (int64_t i = 0; i < sz; ++i)
    for (int64_t j = i + 1; j < sz; ++j)
      m.data<double>()[i * sz + j] = -std::numeric_limits<double>::infinity();
  return m.to_dtype(dtype);
}

}  // namespace gaze::nn
