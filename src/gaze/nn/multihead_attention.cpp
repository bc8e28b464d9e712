#include "gaze/nn/multihead_attention.h"

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/nn/init.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/attention.h"
#include "gaze/ops/dropout.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/lowp.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

MultiheadAttention::MultiheadAttention(int64_t e, int64_t h, double drop, bool bias,
                                       std::optional<int64_t> kd, std::optional<int64_t> vd,
                                       bool bf)
    : Module("MultiheadAttention"),
      embed_dim(e),
      num_heads(h),
      head_dim(h > 0 ? e / h : 0),
      kdim(kd.value_or(e)),
      vdim(vd.value_or(e)),
      dropout(drop),
      batch_first(bf) {
  GAZE_CHECK(e > 0 && h > 0 && e % h == 0, ValueError,
             "MultiheadAttention: embed_dim ({}) must be a positive multiple of num_heads ({})", e,
             h);
  GAZE_CHECK(drop >= 0 && drop <= 1, ValueError,
             "MultiheadAttention: dropout must be in [0, 1], got {}", drop);
  GAZE_CHECK(kdim > 0 && vdim > 0, ValueError,
             "MultiheadAttention: kdim and vdim must be positive");
  // Registration order and initialisation follow torch's _reset_parameters.
  if (kdim == e && vdim == e) {
    in_proj_weight =
        register_parameter("in_proj_weight", init::xavier_uniform_(Tensor::empty(Shape{3 * e, e})));
  } else {
    q_proj_weight =
        register_parameter("q_proj_weight", init::xavier_uniform_(Tensor::empty(Shape{e, e})));
    k_proj_weight =
        register_parameter("k_proj_weight", init::xavier_uniform_(Tensor::empty(Shape{e, kdim})));
    v_proj_weight =
        register_parameter("v_proj_weight", init::xavier_uniform_(Tensor::empty(Shape{e, vdim})));
  }
  for (const Tensor& w : {in_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight})
    if (w.defined()) mark_matmul_weight(w);
  if (bias) in_proj_bias = register_parameter("in_proj_bias", Tensor::zeros(Shape{3 * e}));
  out_proj = register_module("out_proj", std::make_shared<Linear>(e, e, bias));
  if (bias) init::zeros_(out_proj->bias);
}

namespace {

constexpr const char* kOp = "MultiheadAttention";

// A boolean "true = ignore" mask as SDPA's "true = may attend"; float masks pass through.
Tensor attend_polarity(const Tensor& m) {
  if (m.dtype() != DType::b8) return m;
  Tensor out = Tensor::empty(m.shape(), DType::b8);
  for (int64_t i = 0; i < m.numel(); ++i) out.data<bool>()[i] = !m.data<bool>()[i];
  return out;
}

// A mask as an additive float tensor (boolean "true = ignore" becomes -inf).
Tensor additive(const Tensor& m, DType dtype) {
  if (m.dtype() != DType::b8) return m;
  Tensor out = Tensor::zeros(m.shape(), dtype);
  dispatch_floating(dtype, kOp, [&]<typename T>() {
    for (int64_t i = 0; i < m.numel(); ++i)
      if (m.data<bool>()[i]) out.data<T>()[i] = -std::numeric_limits<T>::infinity();
  });
  return out;
}

}  // namespace

MultiheadAttentionOutput MultiheadAttention::forward(const Tensor& query, const Tensor& key,
                                                     const Tensor& value,
                                                     const AttentionArgs& args) const {
  const Tensor& key_padding_mask = args.key_padding_mask;
  const Tensor& attn_mask = args.attn_mask;
  const std::vector<int64_t>& weight_heads = args.weight_heads;
  for (const auto& [t, n] :
       {std::pair{&query, "query"}, std::pair{&key, "key"}, std::pair{&value, "value"}})
    GAZE_CHECK(t->defined() && (t->dim() == 2 || t->dim() == 3), ValueError,
               "{}: '{}' must be [T, E] (unbatched) or [{}], got {}", kOp, n,
               batch_first ? "B, T, E" : "T, B, E", t->defined() ? t->shape_str() : "undefined");
  GAZE_CHECK(query.dim() == key.dim() && key.dim() == value.dim(), ValueError,
             "{}: query {}, key {} and value {} must all be batched or all unbatched", kOp,
             query.shape_str(), key.shape_str(), value.shape_str());
  if (query.dim() == 2) {  // unbatched: a batch of one
    const int bd = batch_first ? 0 : 1;
    AttentionArgs batched = args;
    if (key_padding_mask.defined()) batched.key_padding_mask = unsqueeze(key_padding_mask, 0);
    // One tensor where query, key and value are one (a self-attention's single projection).
    const Tensor q = unsqueeze(query, bd), k = key.is_same(query) ? q : unsqueeze(key, bd),
                 v = value.is_same(key) ? k : unsqueeze(value, bd);
    MultiheadAttentionOutput r = forward(q, k, v, batched);
    r.output = squeeze(r.output, bd);
    if (r.weights.defined()) r.weights = squeeze(r.weights, 0);
    return r;
  }
  const int tdim = batch_first ? 1 : 0, bdim = batch_first ? 0 : 1;
  const int64_t B = query.size(bdim), Tq = query.size(tdim), Tk = key.size(tdim), E = embed_dim,
                H = num_heads;
  GAZE_CHECK(query.size(2) == E && key.size(2) == kdim && value.size(2) == vdim, ValueError,
             "{}: expected feature sizes query {}, key {}, value {}; got {}, {}, {}", kOp, E, kdim,
             vdim, query.shape_str(), key.shape_str(), value.shape_str());
  GAZE_CHECK(key.size(bdim) == B && value.size(bdim) == B && value.size(tdim) == Tk, ValueError,
             "{}: batch or length mismatch: query {}, key {}, value {}", kOp, query.shape_str(),
             key.shape_str(), value.shape_str());

  // Projections (rows of in_proj_weight are views, so gradients flow into it).
  auto part = [&](const Tensor& w, int i) {
    return w.defined() ? slice(w, 0, i * E, (i + 1) * E) : Tensor();
  };
  const Tensor wq = in_proj_weight.defined() ? part(in_proj_weight, 0) : q_proj_weight;
  const Tensor wk = in_proj_weight.defined() ? part(in_proj_weight, 1) : k_proj_weight;
  const Tensor wv = in_proj_weight.defined() ? part(in_proj_weight, 2) : v_proj_weight;
  // Self-attention in bf16 or int8: the three projections from one call (int8: one quantization
  // and one product; bf16: one conversion of the input, then a product per part).
  std::optional<std::vector<Tensor>> qkv;
  if (in_proj_weight.defined() && query.is_same(key) && key.is_same(value))
    qkv = lowp_linear_parts(query, in_proj_weight, in_proj_bias, 3);
  const Tensor q = qkv ? (*qkv)[0] : linear(query, wq, part(in_proj_bias, 0)),
               k = qkv ? (*qkv)[1] : linear(key, wk, part(in_proj_bias, 1)),
               v = qkv ? (*qkv)[2] : linear(value, wv, part(in_proj_bias, 2));
  // [T, B, E] is [T, B, H, D] and [B, T, E] is [B, T, H, D]: the kernel reads either in place.
  auto heads = [&](const Tensor& t, int64_t T) {
    return reshape(t, batch_first ? Shape{B, T, H, head_dim} : Shape{T, B, H, head_dim});
  };

  SdpaOptions o;
  o.layout = batch_first ? HeadsLayout::bthd : HeadsLayout::tbhd;
  o.is_causal = args.is_causal;
  o.window = args.window;
  o.dropout_p = is_training() ? dropout : 0.0;
  // A model set to bf16 or int8 (its projections converted) attends with bf16 products too, on
  // CPUs where they are faster than fp32 attention.
  o.bf16_products =
      !autograd::grad_mode_enabled() && weight_lowp(wq) != nullptr && bf16_attention_pays();
  Tensor mask;  // SDPA polarity, broadcastable to [B, H, Tq, Tk]
  if (attn_mask.defined()) {
    GAZE_CHECK((attn_mask.dim() == 2 && attn_mask.shape() == (Shape{Tq, Tk})) ||
                   (attn_mask.dim() == 3 && attn_mask.shape() == (Shape{B * H, Tq, Tk})),
               ValueError,
               "{}: attn_mask must be [Tq, Tk] = [{}, {}] or [B*H, Tq, Tk] = [{}, {}, {}], got {}",
               kOp, Tq, Tk, B * H, Tq, Tk, attn_mask.shape_str());
    GAZE_CHECK(attn_mask.dtype() == DType::b8 || attn_mask.dtype() == query.dtype(), ValueError,
               "{}: attn_mask must be bool or {}, got {}", kOp, dtype_name(query.dtype()),
               dtype_name(attn_mask.dtype()));
    mask = attend_polarity(attn_mask.dim() == 3 ? attn_mask.alias(Shape{B, H, Tq, Tk}) : attn_mask);
  }
  if (key_padding_mask.defined()) {
    GAZE_CHECK(key_padding_mask.shape() == (Shape{B, Tk}), ValueError,
               "{}: key_padding_mask must be [B, Tk] = [{}, {}], got {}", kOp, B, Tk,
               key_padding_mask.shape_str());
    if (key_padding_mask.dtype() == DType::b8) {
      o.key_padding_mask = key_padding_mask;
    } else {  // a float padding mask is added, like a float attn_mask
      GAZE_CHECK(key_padding_mask.dtype() == query.dtype(), ValueError,
                 "{}: key_padding_mask must be bool or {}", kOp, dtype_name(query.dtype()));
      NoGradGuard no_grad;
      const Tensor kpm = key_padding_mask.alias(Shape{B, 1, 1, Tk});
      mask = mask.defined()
                 ? add(additive(
                           attn_mask.dim() == 3 ? attn_mask.alias(Shape{B, H, Tq, Tk}) : attn_mask,
                           query.dtype()),
                       kpm)
                 : kpm;
    }
  }
  o.attn_mask = mask;
  o.need_weights = args.need_weights;
  if (!weight_heads.empty()) {
    GAZE_CHECK(!args.average_attn_weights, ValueError,
               "{}: weight_heads selects per-head weights: pass average_attn_weights=false", kOp);
    for (int64_t h : weight_heads)
      GAZE_CHECK(h >= 0 && h < H, IndexError, "{}: head {} out of range for {} heads", kOp, h, H);
    o.weight_heads = weight_heads;
  }
  SdpaResult r = scaled_dot_product_attention(heads(q, Tq), heads(k, Tk), heads(v, Tk), o);
  MultiheadAttentionOutput out;
  if (args.weight_gradients) {
    out.probe = Tensor::zeros(r.output.shape(), r.output.dtype()).set_requires_grad();
    out.values = heads(v, Tk).detach();
    out.batch_first = batch_first;
    r.output = add(r.output, out.probe);
  }
  out.output =
      out_proj->forward(reshape(r.output, batch_first ? Shape{B, Tq, E} : Shape{Tq, B, E}));
  if (args.need_weights) out.weights = args.average_attn_weights ? mean(r.weights, {1}) : r.weights;
  return out;
}

Tensor attention_weight_gradient(const MultiheadAttentionOutput& r) {
  GAZE_CHECK(r.probe.defined() && r.probe.grad().defined(), ValueError,
             "attention_weight_gradient: run the forward with weight_gradients and a backward "
             "first");
  NoGradGuard no_grad;
  // [B, T, H, D] (or [T, B, H, D]) -> [B, H, T, D]
  const std::vector<int64_t> to_bhtd =
      r.batch_first ? std::vector<int64_t>{0, 2, 1, 3} : std::vector<int64_t>{1, 2, 0, 3};
  const Tensor d_out = permute(r.probe.grad(), to_bhtd), v = permute(r.values, to_bhtd);
  return matmul(d_out, v, false, true);
}

}  // namespace gaze::nn
