#include "gaze/ops/attention.h"

#include <cmath>
#include <type_traits>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/attention.h"
#include "gaze/kernels/attention_bf16.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/shape_ops.h"

namespace gaze {
namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

// [B, H, T, D] sizes of a q/k/v tensor in the given layout.
struct Dims4 {
  int64_t B, H, T, D;
};

const char* layout_name(HeadsLayout l) {
  switch (l) {
    case HeadsLayout::bhtd:
      return "[B, H, T, D]";
    case HeadsLayout::bthd:
      return "[B, T, H, D]";
    case HeadsLayout::tbhd:
      return "[T, B, H, D]";
  }
  return "?";
}

Dims4 dims_of(const Tensor& t, HeadsLayout layout, const char* arg) {
  GAZE_CHECK(t.dim() == 4, ValueError, "{}: '{}' must be 4-D ({}), got shape {}", kOp, arg,
             layout_name(layout), t.shape_str());
  const auto& s = t.shape();
  switch (layout) {
    case HeadsLayout::bhtd:
      return {s[0], s[1], s[2], s[3]};
    case HeadsLayout::bthd:
      return {s[0], s[2], s[1], s[3]};
    case HeadsLayout::tbhd:
      return {s[1], s[2], s[0], s[3]};
  }
  return {};
}

Shape shape_of(const Dims4& d, HeadsLayout layout) {
  switch (layout) {
    case HeadsLayout::bhtd:
      return {d.B, d.H, d.T, d.D};
    case HeadsLayout::bthd:
      return {d.B, d.T, d.H, d.D};
    case HeadsLayout::tbhd:
      return {d.T, d.B, d.H, d.D};
  }
  return {};
}

kernels::HeadLayout strides_of(const Dims4& d, HeadsLayout layout) {
  switch (layout) {
    case HeadsLayout::bhtd:
      return {d.H * d.T * d.D, d.T * d.D, d.D};
    case HeadsLayout::bthd:
      return {d.T * d.H * d.D, d.D, d.H * d.D};
    case HeadsLayout::tbhd:
      return {d.H * d.D, d.D, d.B * d.H * d.D};
  }
  return {};
}

// Everything the kernels need, validated, with the tensors that keep the pointed-to data alive.
struct Prepared {
  Dims4 q, k, v;
  HeadsLayout layout, kv_layout;
  Tensor mask, lengths, padding, alibi, kv_rows;
  double scale = 1.0;
};

kernels::ScoreMask mask_view(const Tensor& m, const Dims4& q, const Dims4& k) {
  // Right-align the mask's shape with [B, H, Tq, Tk]; size-1 dims broadcast with stride 0.
  const int64_t full[4] = {q.B, q.H, q.T, k.T};
  int64_t stride[4] = {0, 0, 0, 0};
  const int nd = m.dim();
  GAZE_CHECK(nd <= 4, ValueError, "{}: attn_mask must have at most 4 dims, got {}", kOp,
             m.shape_str());
  int64_t acc = 1;
  for (int i = nd - 1; i >= 0; --i) {
    const int slot = 4 - nd + i;
    const int64_t size = m.shape()[i];
    GAZE_CHECK(size == full[slot] || size == 1, ValueError,
               "{}: attn_mask of shape {} does not broadcast to [B, H, Tq, Tk] = [{}, {}, {}, {}]",
               kOp, m.shape_str(), full[0], full[1], full[2], full[3]);
    stride[slot] = size == 1 ? 0 : acc;
    acc *= size;
  }
  return {m.raw_data(), m.dtype() == DType::b8, stride[0], stride[1], stride[2], stride[3]};
}

Prepared prepare(const Tensor& q, const Tensor& k, const Tensor& v, const SdpaOptions& o) {
  for (const auto& [t, name] :
       {std::pair{&q, "query"}, std::pair{&k, "key"}, std::pair{&v, "value"}})
    ops_detail::check_floating(*t, kOp, name);
  ops_detail::check_same_dtype(q, k, kOp);
  ops_detail::check_same_dtype(q, v, kOp);
  Prepared p;
  p.layout = o.layout;
  p.kv_layout = o.kv_layout.value_or(o.layout);
  p.q = dims_of(q, p.layout, "query");
  p.k = dims_of(k, p.kv_layout, "key");
  p.v = dims_of(v, p.kv_layout, "value");
  if (o.kv_bf16) {  // two bf16 values per element: the dims and the layouts count bf16 values
    GAZE_CHECK(q.dtype() == DType::f32 && kv_rows_allowed(o, p.q.T), ValueError,
               "{}: kv_bf16 serves float32 decoding steps: at most {} queries (got {} {}), no "
               "attn_mask, key_padding_mask, alibi_slopes, dropout or need_weights",
               kOp, kMaxQueriesWithKvRows, p.q.T, dtype_name(q.dtype()));
    p.k.D *= 2, p.v.D *= 2;
  }
  GAZE_CHECK((p.k.B == p.q.B || o.kv_rows.defined()) && p.v.B == p.k.B, ValueError,
             "{}: batch sizes differ: query {}, key {}, value {}", kOp, q.shape_str(),
             k.shape_str(), v.shape_str());
  GAZE_CHECK(p.k.D == p.q.D, ValueError,
             "{}: query and key head dims differ ({} vs {}): query {}, key {}", kOp, p.q.D, p.k.D,
             q.shape_str(), k.shape_str());
  GAZE_CHECK(p.k.T == p.v.T && p.k.H == p.v.H, ValueError,
             "{}: key {} and value {} must have the same number of heads and positions", kOp,
             k.shape_str(), v.shape_str());
  GAZE_CHECK(p.k.H >= 1 && p.q.H % p.k.H == 0, ValueError,
             "{}: the query's {} heads must be a multiple of the key/value heads ({}) for "
             "grouped-query attention",
             kOp, p.q.H, p.k.H);
  GAZE_CHECK(p.q.D >= 1, ValueError, "{}: head dimension must be at least 1, got shapes {}", kOp,
             q.shape_str());
  GAZE_CHECK(o.dropout_p >= 0.0 && o.dropout_p <= 1.0, ValueError,
             "{}: dropout_p must be in [0, 1], got {}", kOp, o.dropout_p);
  p.scale = o.scale ? *o.scale : 1.0 / std::sqrt(static_cast<double>(p.q.D));
  if (o.attn_mask.defined()) {
    GAZE_CHECK(o.attn_mask.dtype() == DType::b8 || o.attn_mask.dtype() == q.dtype(), ValueError,
               "{}: attn_mask must be bool (true = attend) or {} (added to the scores), got {}",
               kOp, dtype_name(q.dtype()), dtype_name(o.attn_mask.dtype()));
    GAZE_CHECK(!o.attn_mask.requires_grad(), ValueError,
               "{}: a float attn_mask that requires grad is not supported (its gradient would need "
               "the Tq x Tk "
               "matrix); pass attn_mask.detach()",
               kOp);
    p.mask = o.attn_mask;
  }
  if (o.key_lengths.defined()) {
    ops_detail::check_dtype(o.key_lengths, DType::i64, kOp, "key_lengths");
    GAZE_CHECK(o.key_lengths.shape() == Shape{p.q.B}, ValueError,
               "{}: key_lengths has shape {}, expected [{}] (batch)", kOp,
               o.key_lengths.shape_str(), p.q.B);
    const int64_t* len = o.key_lengths.data<int64_t>();
    for (int64_t b = 0; b < p.q.B; ++b)
      GAZE_CHECK(len[b] >= 0 && len[b] <= p.k.T, IndexError,
                 "{}: key_lengths[{}] = {} is outside [0, {}] (the number of keys)", kOp, b, len[b],
                 p.k.T);
    p.lengths = o.key_lengths;
  }
  if (o.key_padding_mask.defined()) {
    ops_detail::check_dtype(o.key_padding_mask, DType::b8, kOp, "key_padding_mask");
    GAZE_CHECK(o.key_padding_mask.shape() == (Shape{p.q.B, p.k.T}), ValueError,
               "{}: key_padding_mask has shape {}, expected [B, Tk] = [{}, {}] (true = padding)",
               kOp, o.key_padding_mask.shape_str(), p.q.B, p.k.T);
    p.padding = o.key_padding_mask;
  }
  if (o.alibi_slopes.defined()) {
    ops_detail::check_same_dtype(q, o.alibi_slopes, kOp);
    GAZE_CHECK(o.alibi_slopes.shape() == Shape{p.q.H}, ValueError,
               "{}: alibi_slopes has shape {}, expected [{}] (one per query head)", kOp,
               o.alibi_slopes.shape_str(), p.q.H);
    p.alibi = o.alibi_slopes;
  }
  if (o.kv_rows.defined()) {
    ops_detail::check_dtype(o.kv_rows, DType::i64, kOp, "kv_rows");
    GAZE_CHECK(o.kv_rows.shape() == (Shape{p.k.T, p.q.B}), ValueError,
               "{}: kv_rows has shape {}, expected [Tk, B] = [{}, {}]", kOp, o.kv_rows.shape_str(),
               p.k.T, p.q.B);
    GAZE_CHECK(kv_rows_allowed(o, p.q.T), ValueError,
               "{}: kv_rows serves decoding steps: at most {} queries (got {}), no attn_mask, "
               "key_padding_mask, alibi_slopes, dropout or need_weights",
               kOp, kMaxQueriesWithKvRows, p.q.T);
    const int64_t* r = o.kv_rows.data<int64_t>();
    for (int64_t i = 0; i < o.kv_rows.numel(); ++i)
      GAZE_CHECK(r[i] >= 0 && r[i] < p.k.B, IndexError,
                 "{}: kv_rows holds {}, outside the key's batch [0, {})", kOp, r[i], p.k.B);
    p.kv_rows = o.kv_rows;
  }
  GAZE_CHECK(!o.window || *o.window >= 0, ValueError,
             "{}: window must be >= 0 (keys within that many positions of the query), got {}", kOp,
             o.window.value_or(0));
  return p;
}

template <typename T>
kernels::AttentionArgs<T> kernel_args(const Prepared& p, const Tensor& q, const Tensor& k,
                                      const Tensor& v, const SdpaOptions& o) {
  kernels::AttentionArgs<T> a;
  a.B = p.q.B, a.H = p.q.H, a.Hkv = p.k.H, a.Tq = p.q.T, a.Tk = p.k.T, a.D = p.q.D, a.Dv = p.v.D;
  a.q = q.data<T>(), a.k = k.data<T>(), a.v = v.data<T>();
  a.q_layout = strides_of(p.q, p.layout);
  a.k_layout = strides_of(p.k, p.kv_layout);
  a.v_layout = strides_of(p.v, p.kv_layout);
  a.scale = p.scale;
  a.causal = o.is_causal;
  a.query_offset = o.causal_alignment == CausalAlignment::bottom_right ? p.k.T - p.q.T : 0;
  // A window wider than any distance between a query and a key is no window (and keeps the
  // kernel's position arithmetic far from overflow).
  const int64_t widest = p.q.T + p.k.T + std::abs(a.query_offset);
  a.window = o.window && *o.window < widest ? *o.window : -1;
  if (p.lengths.defined()) a.key_lengths = p.lengths.data<int64_t>();
  if (p.padding.defined()) a.key_padding = p.padding.data<bool>();
  if (p.mask.defined()) a.mask = mask_view(p.mask, p.q, p.k);
  if (p.alibi.defined()) a.alibi_slopes = p.alibi.data<T>();
  if (p.kv_rows.defined()) a.kv_rows = p.kv_rows.data<int64_t>();
  a.kv_bf16 = o.kv_bf16;
  a.dropout_p = o.dropout_p;
  return a;
}

}  // namespace

bool kv_rows_allowed(const SdpaOptions& o, int64_t num_queries) {
  return num_queries <= kMaxQueriesWithKvRows && !o.attn_mask.defined() &&
         !o.key_padding_mask.defined() && !o.alibi_slopes.defined() && o.dropout_p == 0 &&
         !o.need_weights;
}

bool bf16_attention_pays() {
  return kernels::attention_bf16_pays();
}

SdpaResult scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                        const SdpaOptions& o_in) {
  ops_detail::check_defined(q, kOp, "query");
  ops_detail::check_defined(k, kOp, "key");
  ops_detail::check_defined(v, kOp, "value");
  if (q.dim() == 3) {  // [B, T, D]: one head
    SdpaOptions o = o_in;
    o.layout = HeadsLayout::bhtd;
    o.kv_layout.reset();
    if (o.attn_mask.defined() && o.attn_mask.dim() == 3)
      o.attn_mask = unsqueeze(o.attn_mask, 1);  // [B, Tq, Tk]
    SdpaResult r =
        scaled_dot_product_attention(unsqueeze(q, 1), unsqueeze(k, 1), unsqueeze(v, 1), o);
    r.output = squeeze(r.output, 1);
    return r;
  }
  SdpaOptions o = o_in;
  const Prepared p = prepare(q, k, v, o);
  const Shape out_shape = shape_of({p.q.B, p.q.H, p.q.T, p.v.D}, p.layout);
  Tensor out = Tensor::empty(out_shape, q.dtype());
  Tensor lse = Tensor::empty(Shape{p.q.B, p.q.H, p.q.T}, q.dtype());
  kernels::DropoutStream rs;
  if (o.dropout_p > 0) {
    Generator& g = o.generator ? *o.generator : default_generator(RngPurpose::dropout);
    const uint64_t n = static_cast<uint64_t>(p.q.B * p.q.H * p.q.T * p.k.T);
    rs = {g.seed(), g.stream(), g.reserve((n + 3) / 4)};
  }
  const kernels::HeadLayout ol = strides_of({p.q.B, p.q.H, p.q.T, p.v.D}, p.layout);
  const bool recorded = autograd::any_requires_grad({&q, &k, &v});
  GAZE_CHECK(!recorded || (!o.kv_rows.defined() && !o.kv_bf16), ValueError,
             "{}: kv_rows and kv_bf16 are for inference; run them under NoGradGuard (no gradient "
             "flows through a KV cache)",
             kOp);
  dispatch_floating(q.dtype(), kOp, [&]<typename T>() {
    auto a = kernel_args<T>(p, q, k, v, o);
    a.dropout = rs;
    if constexpr (std::is_same_v<T, float>) {
      if (o.bf16_products && !recorded && !o.need_weights && kernels::attention_bf16_handles(a)) {
        kernels::attention_forward_bf16(a, out.data<T>(), ol);
        return;
      }
    }
    kernels::attention_forward(a, out.data<T>(), ol, lse.data<T>());
  });

  SdpaResult res;
  res.output = out;
  if (o.need_weights) {
    std::vector<int64_t> heads = o.weight_heads;
    if (heads.empty())
      for (int64_t h = 0; h < p.q.H; ++h) heads.push_back(h);
    for (int64_t h : heads)
      GAZE_CHECK(h >= 0 && h < p.q.H, IndexError, "{}: weight head {} is out of range for {} heads",
                 kOp, h, p.q.H);
    res.weights =
        Tensor::empty(Shape{p.q.B, static_cast<int64_t>(heads.size()), p.q.T, p.k.T}, q.dtype());
    dispatch_floating(q.dtype(), kOp, [&]<typename T>() {
      auto a = kernel_args<T>(p, q, k, v, o);
      a.dropout = rs;
      kernels::attention_probs(a, lse.data<T>(), heads.data(), static_cast<int64_t>(heads.size()),
                               res.weights.data<T>());
    });
  }

  if (recorded) {
    using autograd::SavedTensor;
    o.generator = nullptr;  // the backward replays the counters in rs, not the generator
    autograd::record(kOp, {q, k, v}, {out},
                     [qs = SavedTensor(q), ks = SavedTensor(k), vs = SavedTensor(v),
                      os = SavedTensor(out), lse, p, o, rs, ol](autograd::BackwardContext& ctx) {
                       const Tensor& qv = qs.get(kOp);
                       const Tensor& kv = ks.get(kOp);
                       const Tensor& vv = vs.get(kOp);
                       Tensor dq = Tensor::empty(qv.shape(), qv.dtype()),
                              dk = Tensor::empty(kv.shape(), kv.dtype()),
                              dv = Tensor::empty(vv.shape(), vv.dtype());
                       dispatch_floating(qv.dtype(), kOp, [&]<typename T>() {
                         auto a = kernel_args<T>(p, qv, kv, vv, o);
                         a.dropout = rs;
                         kernels::attention_backward(a, os.get(kOp).data<T>(), ctx.grad().data<T>(),
                                                     ol, lse.data<T>(), dq.data<T>(), dk.data<T>(),
                                                     dv.data<T>());
                       });
                       ctx.set(0, dq);
                       ctx.set(1, dk);
                       ctx.set(2, dv);
                     });
  }
  return res;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& attn_mask, double dropout_p, bool is_causal,
                                    std::optional<double> scale) {
  SdpaOptions o;
  o.attn_mask = attn_mask;
  o.dropout_p = dropout_p;
  o.is_causal = is_causal;
  o.scale = scale;
  return scaled_dot_product_attention(q, k, v, o).output;
}

Tensor alibi_slopes(int64_t num_heads, DType dtype) {
  GAZE_CHECK(num_heads >= 1, ValueError, "alibi_slopes: num_heads must be >= 1, got {}", num_heads);
  std::vector<double> s(num_heads);
  kernels::alibi_slopes(num_heads, s.data());
  return Tensor::from_vector(s, Shape{num_heads}).to_dtype(dtype);
}

}  // namespace gaze
