// Reductions with autograd: sum, mean and max over all elements or chosen dims (keepdim as in
// PyTorch), and sum_to, the reduction that undoes broadcasting in backward passes.
#pragma once

#include <vector>

#include "gaze/core/tensor.h"

namespace gaze {

Tensor sum(const Tensor& input);  // 0-d
Tensor sum(const Tensor& input, const std::vector<int64_t>& dim, bool keepdim = false);
Tensor mean(const Tensor& input);  // 0-d
Tensor mean(const Tensor& input, const std::vector<int64_t>& dim, bool keepdim = false);

// Maximum over all elements (0-d). Its gradient is shared equally between tied maxima, as in torch.
Tensor max(const Tensor& input);

struct MaxResult {
  Tensor values;
  Tensor indices;  // int64, position of the first maximum along dim
};
// torch.max(input, dim, keepdim): values and indices; the gradient flows to the returned index.
MaxResult max(const Tensor& input, int64_t dim, bool keepdim = false);

// Sums `input` down to `shape`, which it must broadcast from (leading dims dropped, size-1 kept).
Tensor sum_to(const Tensor& input, const Shape& shape);

}  // namespace gaze
