// Embedding lookup with autograd, as torch.nn.functional.embedding: rows of weight [V, D] picked by
// int64 indices; the gradient is scatter-added, and the padding_idx row receives none.
#pragma once

#include <optional>

#include "gaze/core/tensor.h"

namespace gaze {

// Output shape: input.shape + [D]. padding_idx may be negative (counted from the end, as torch).
Tensor embedding(const Tensor& input, const Tensor& weight,
                 std::optional<int64_t> padding_idx = std::nullopt);

}  // namespace gaze
