// The attention of RNN encoder-decoders: additive (Bahdanau et al. 2015), score = v^T tanh(W_q s +
// W_k h), and multiplicative (Luong et al. 2015): dot, general (s^T W h) and concat. Each returns
// the context vector and the attention weights over the source, honouring source padding.
#pragma once

#include <memory>

#include "gaze/nn/linear.h"
#include "gaze/nn/module.h"

namespace gaze::nn {

struct AttentionContext {
  Tensor context;  // [B, Dv] or [B, Tq, Dv]
  Tensor weights;  // [B, Tk] or [B, Tq, Tk]; zero for padded source positions
};

// Source positions to attend: lengths (int64 [B]) or a padding mask (bool [B, Tk], true = padding).
struct SourceMask {
  Tensor lengths;
  Tensor padding;
};

class AdditiveAttention : public Module {
 public:
  AdditiveAttention(int64_t query_dim, int64_t key_dim, int64_t hidden_dim);
  // W_k h for every source position, [B, Tk, hidden]: compute once per source sequence and pass it
  // to forward at every decoder step.
  Tensor project_keys(const Tensor& keys) const;
  // query [B, Dq] (one decoder step) or [B, Tq, Dq]; keys [B, Tk, Dk]; values [B, Tk, Dv] (default:
  // keys).
  AttentionContext forward(const Tensor& query, const Tensor& keys, const Tensor& values = Tensor(),
                           const SourceMask& mask = {},
                           const Tensor& projected_keys = Tensor()) const;

  std::shared_ptr<Linear> query_proj, key_proj, v;  // W_q (no bias), W_k (bias), v (no bias)
};

enum class LuongScore { dot, general, concat };

class LuongAttention : public Module {
 public:
  // dot needs query_dim == key_dim; concat uses hidden_dim (default: query_dim).
  LuongAttention(LuongScore score, int64_t query_dim, int64_t key_dim, int64_t hidden_dim = -1);
  AttentionContext forward(const Tensor& query, const Tensor& keys, const Tensor& values = Tensor(),
                           const SourceMask& mask = {}) const;

  LuongScore score;
  std::shared_ptr<Linear> W;  // general: [Dq, Dk]; concat: [hidden, Dq + Dk]
  std::shared_ptr<Linear> v;  // concat only: [1, hidden]
  int64_t query_dim, key_dim;
};

}  // namespace gaze::nn
