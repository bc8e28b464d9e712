// nn::AttentionPooling: a learned query scores each token, a softmax over the sequence weighs them,
// and their weighted sum is the sequence's vector (Yang et al. 2016, "Hierarchical Attention
// Networks").
#pragma once

#include <memory>

#include "gaze/nn/linear.h"

namespace gaze::nn {

// e_t = context · tanh(proj(h_t)), a = softmax over the non-padding tokens, pooled = Σ_t a_t h_t.
// State-dict keys: proj.weight, proj.bias, context.weight.
class AttentionPooling : public Module {
 public:
  explicit AttentionPooling(int64_t hidden_size);
  struct Output {
    Tensor pooled;   // [B, d]
    Tensor weights;  // [B, T]: each token's weight; 0 on padding
  };
  // hidden [B, T, d]; lengths [B] (i64; undefined = every token counts). An empty sequence pools
  // to zeros.
  Output forward(const Tensor& hidden, const Tensor& lengths) const;

  std::shared_ptr<Linear> proj, context;
};

}  // namespace gaze::nn
