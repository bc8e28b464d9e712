// nn::LayerNorm and nn::Dropout, as torch.nn.LayerNorm ("weight", "bias"; ones and zeros) and
// torch.nn.Dropout (active in training mode only).
#pragma once

#include <vector>

#include "gaze/nn/module.h"

namespace gaze::nn {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(std::vector<int64_t> normalized_shape, double eps = 1e-5,
                     bool elementwise_affine = true);
  Tensor forward(const Tensor& input) const;

  std::vector<int64_t> normalized_shape;
  double eps;
  Tensor weight, bias;  // undefined without elementwise_affine
};

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5);
  Tensor forward(const Tensor& input) const;
  double p;
};

}  // namespace gaze::nn
