#include "gaze/nn/layer_norm.h"

#include "gaze/core/error.h"
#include "gaze/ops/dropout.h"
#include "gaze/ops/norm.h"

namespace gaze::nn {

LayerNorm::LayerNorm(std::vector<int64_t> shape, double e, bool affine)
    : Module("LayerNorm"), normalized_shape(std::move(shape)), eps(e) {
  const Shape s(normalized_shape);
  GAZE_CHECK(s.ndim() >= 1 && s.numel() > 0, ValueError,
             "LayerNorm: normalized_shape {} must be non-empty", s.str());
  if (affine) {
    weight = register_parameter("weight", Tensor::ones(s));
    bias = register_parameter("bias", Tensor::zeros(s));
  }
}

Tensor LayerNorm::forward(const Tensor& x) const {
  return layer_norm(x, normalized_shape, weight, bias, eps);
}

Dropout::Dropout(double prob) : Module("Dropout"), p(prob) {
  GAZE_CHECK(prob >= 0 && prob <= 1, ValueError, "Dropout: p must be in [0, 1], got {}", prob);
}

Tensor Dropout::forward(const Tensor& x) const {
  return dropout(x, p, is_training());
}

}  // namespace gaze::nn
