// layer_norm with autograd, as torch.nn.functional.layer_norm: normalises over the trailing
// normalized_shape dims, then applies the optional elementwise weight and bias.
#pragma once

#include <vector>

#include "gaze/core/tensor.h"

namespace gaze {

Tensor layer_norm(const Tensor& input, const std::vector<int64_t>& normalized_shape,
                  const Tensor& weight = Tensor(), const Tensor& bias = Tensor(),
                  double eps = 1e-5);

}  // namespace gaze
