// dropout with autograd, as torch.nn.functional.dropout: in training, zeroes each element with
// probability p and scales the rest by 1/(1-p); in eval it returns the input unchanged.
#pragma once

#include "gaze/core/rng.h"
#include "gaze/core/tensor.h"

namespace gaze {

// gen: the generator to draw from (default: the dropout generator, see manual_seed).
Tensor dropout(const Tensor& input, double p = 0.5, bool training = true, Generator* gen = nullptr);

}  // namespace gaze
