// softmax and log_softmax over any dim, numerically stable, with autograd (the backward uses the
// saved output only).
#pragma once

#include "gaze/core/tensor.h"

namespace gaze {

Tensor softmax(const Tensor& input, int64_t dim);
Tensor log_softmax(const Tensor& input, int64_t dim);

}  // namespace gaze
