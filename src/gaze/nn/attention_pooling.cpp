#include "gaze/nn/attention_pooling.h"

#include "gaze/core/error.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"
#include "gaze/ops/softmax.h"
#include "gaze/ops/unary.h"

namespace gaze::nn {

AttentionPooling::AttentionPooling(int64_t d) : Module("AttentionPooling") {
  proj = register_module("proj", std::make_shared<Linear>(d, d));
  context = register_module("context", std::make_shared<Linear>(d, 1, false));
}

AttentionPooling::Output AttentionPooling::forward(const Tensor& h, const Tensor& lengths) const {
  GAZE_CHECK(h.defined() && h.dim() == 3 && h.size(2) == proj->in_features, ValueError,
             "AttentionPooling: expected hidden states [B, T, {}], got {}", proj->in_features,
             h.defined() ? h.shape_str() : "undefined");
  const int64_t B = h.size(0), T = h.size(1);
  Tensor keep = Tensor::empty(Shape{B, T}, DType::b8);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = lengths.defined() ? lengths.data<int64_t>()[b] : T;
    for (int64_t t = 0; t < T; ++t) keep.data<bool>()[b * T + t] = t < len;
  }
  const Tensor scores = squeeze(context->forward(tanh(proj->forward(h))), 2);  // [B, T]
  Tensor weights = masked_softmax(scores, keep, 1);
  return {sum(mul(h, unsqueeze(weights, 2)), {1}), weights};
}

}  // namespace gaze::nn
