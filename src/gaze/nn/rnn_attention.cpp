#include "gaze/nn/rnn_attention.h"

#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/softmax.h"
#include "gaze/ops/unary.h"

namespace gaze::nn {
namespace {

// [B, Tk] bool, true = may attend (undefined if nothing is masked).
Tensor keep_mask(const SourceMask& m, int64_t B, int64_t Tk, const char* who) {
  if (!m.lengths.defined() && !m.padding.defined()) return Tensor();
  Tensor keep = Tensor::ones(Shape{B, Tk}, DType::b8);
  if (m.lengths.defined()) {
    GAZE_CHECK(m.lengths.dtype() == DType::i64 && m.lengths.shape() == Shape{B}, ValueError,
               "{}: lengths must be int64 [B] = [{}], got {} {}", who, B,
               dtype_name(m.lengths.dtype()), m.lengths.shape_str());
    for (int64_t b = 0; b < B; ++b) {
      const int64_t len = m.lengths.data<int64_t>()[b];
      GAZE_CHECK(len >= 0 && len <= Tk, IndexError, "{}: lengths[{}] = {} is outside [0, {}]", who,
                 b, len, Tk);
      for (int64_t j = len; j < Tk; ++j) keep.data<bool>()[b * Tk + j] = false;
    }
  }
  if (m.padding.defined()) {
    GAZE_CHECK(m.padding.dtype() == DType::b8 && m.padding.shape() == (Shape{B, Tk}), ValueError,
               "{}: padding mask must be bool [B, Tk] = [{}, {}], got {} {}", who, B, Tk,
               dtype_name(m.padding.dtype()), m.padding.shape_str());
    for (int64_t i = 0; i < B * Tk; ++i)
      if (m.padding.data<bool>()[i]) keep.data<bool>()[i] = false;
  }
  return keep;
}

struct Prepared {
  Tensor q;  // [B, Tq, Dq]
  bool single_step;
  int64_t B, Tk;
};

Prepared prepare(const Tensor& query, const Tensor& keys, const Tensor& values, int64_t qdim,
                 int64_t kdim, const char* who) {
  GAZE_CHECK(query.defined() && (query.dim() == 2 || query.dim() == 3) && query.size(-1) == qdim,
             ValueError, "{}: query must be [B, {}] or [B, Tq, {}], got {}", who, qdim, qdim,
             query.defined() ? query.shape_str() : "undefined");
  GAZE_CHECK(
      keys.defined() && keys.dim() == 3 && keys.size(0) == query.size(0) && keys.size(2) == kdim,
      ValueError, "{}: keys must be [B, Tk, {}] with the query's batch {}, got {}", who, kdim,
      query.size(0), keys.defined() ? keys.shape_str() : "undefined");
  GAZE_CHECK(values.dim() == 3 && values.size(0) == keys.size(0) && values.size(1) == keys.size(1),
             ValueError, "{}: values must be [B, Tk, Dv] matching keys {}, got {}", who,
             keys.shape_str(), values.shape_str());
  return {query.dim() == 2 ? unsqueeze(query, 1) : query, query.dim() == 2, keys.size(0),
          keys.size(1)};
}

AttentionContext finish(const Tensor& scores, const Tensor& keep, const Tensor& values,
                        bool single_step) {
  // scores [B, Tq, Tk] -> weights (0 on padding; all 0 for a source with no position) -> context.
  const Tensor w =
      keep.defined() ? masked_softmax(scores, unsqueeze(keep, 1), -1) : softmax(scores, -1);
  Tensor ctx = matmul(w, values);
  if (single_step) return {squeeze(ctx, 1), squeeze(w, 1)};
  return {ctx, w};
}

}  // namespace

AdditiveAttention::AdditiveAttention(int64_t qd, int64_t kd, int64_t hd)
    : Module("AdditiveAttention") {
  GAZE_CHECK(qd > 0 && kd > 0 && hd > 0, ValueError,
             "AdditiveAttention: dims must be positive, got {}, {}, {}", qd, kd, hd);
  query_proj = register_module("query_proj", std::make_shared<Linear>(qd, hd, false));
  key_proj = register_module("key_proj", std::make_shared<Linear>(kd, hd, true));
  v = register_module("v", std::make_shared<Linear>(hd, 1, false));
}

Tensor AdditiveAttention::project_keys(const Tensor& keys) const {
  return key_proj->forward(keys);
}

AttentionContext AdditiveAttention::forward(const Tensor& query, const Tensor& keys,
                                            const Tensor& values_in, const SourceMask& mask,
                                            const Tensor& projected) const {
  const AutocastGuard fp32(Precision::fp32);  // called per decoding step, as the RNN cells
  const Tensor values = values_in.defined() ? values_in : keys;
  const Prepared p = prepare(query, keys, values, query_proj->in_features, key_proj->in_features,
                             "AdditiveAttention");
  const Tensor kp = projected.defined() ? projected : project_keys(keys);  // [B, Tk, hid]
  GAZE_CHECK(kp.shape() == (Shape{p.B, p.Tk, key_proj->out_features}), ValueError,
             "AdditiveAttention: projected_keys must be [B, Tk, hidden] = [{}, {}, {}], got {}",
             p.B, p.Tk, key_proj->out_features, kp.shape_str());
  // e[b, q, j] = v . tanh(W_q s_q + W_k h_j): [B, Tq, 1, hid] + [B, 1, Tk, hid].
  const Tensor energy = tanh(add(unsqueeze(query_proj->forward(p.q), 2), unsqueeze(kp, 1)));
  const Tensor scores = squeeze(v->forward(energy), -1);  // [B, Tq, Tk]
  return finish(scores, keep_mask(mask, p.B, p.Tk, "AdditiveAttention"), values, p.single_step);
}

LuongAttention::LuongAttention(LuongScore s, int64_t qd, int64_t kd, int64_t hd)
    : Module("LuongAttention"), score(s), query_dim(qd), key_dim(kd) {
  GAZE_CHECK(qd > 0 && kd > 0, ValueError, "LuongAttention: dims must be positive, got {}, {}", qd,
             kd);
  switch (s) {
    case LuongScore::dot:
      GAZE_CHECK(qd == kd, ValueError, "LuongAttention(dot): query_dim {} must equal key_dim {}",
                 qd, kd);
      break;
    case LuongScore::general:
      W = register_module("W", std::make_shared<Linear>(kd, qd, false));
      break;
    case LuongScore::concat: {
      const int64_t h = hd > 0 ? hd : qd;
      W = register_module("W", std::make_shared<Linear>(qd + kd, h, false));
      v = register_module("v", std::make_shared<Linear>(h, 1, false));
      break;
    }
  }
}

AttentionContext LuongAttention::forward(const Tensor& query, const Tensor& keys,
                                         const Tensor& values_in, const SourceMask& mask) const {
  const AutocastGuard fp32(Precision::fp32);  // called per decoding step, as the RNN cells
  const Tensor values = values_in.defined() ? values_in : keys;
  const Prepared p = prepare(query, keys, values, query_dim, key_dim, "LuongAttention");
  Tensor scores;  // [B, Tq, Tk]
  switch (score) {
    case LuongScore::dot:
      scores = matmul(p.q, keys, false, true);
      break;
    case LuongScore::general:
      scores = matmul(p.q, W->forward(keys), false, true);
      break;
    case LuongScore::concat: {
      // v . tanh(W [s; h]) = v . tanh(W_s s + W_h h), with W_s, W_h the column blocks of W.
      const Tensor ws = narrow(W->weight, 1, 0, query_dim),
                   wh = narrow(W->weight, 1, query_dim, key_dim);
      const Tensor e = tanh(add(unsqueeze(linear(p.q, ws), 2), unsqueeze(linear(keys, wh), 1)));
      scores = squeeze(v->forward(e), -1);
      break;
    }
  }
  return finish(scores, keep_mask(mask, p.B, p.Tk, "LuongAttention"), values, p.single_step);
}

}  // namespace gaze::nn
