// softmax and log_softmax over any dim, numerically stable, with autograd (the backward uses the
// saved output only).
#pragma once

#include "gaze/core/tensor.h"

namespace gaze {

Tensor softmax(const Tensor& input, int64_t dim);
Tensor log_softmax(const Tensor& input, int64_t dim);

// Softmax over dim where mask (bool, broadcastable to input, true = keep) is false gives 0; a slice
// with nothing kept gives all zeros (not NaN) and a zero gradient.
Tensor masked_softmax(const Tensor& input, const Tensor& mask, int64_t dim);

}  // namespace gaze
