// nn::Linear: y = x W^T + b, as torch.nn.Linear (state-dict keys "weight", "bias"; same init).
#pragma once

#include "gaze/nn/module.h"

namespace gaze::nn {

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& input) const;

  int64_t in_features, out_features;
  Tensor weight;  // [out_features, in_features]
  Tensor bias;    // [out_features] or undefined
};

}  // namespace gaze::nn
