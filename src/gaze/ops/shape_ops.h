// Shape ops with autograd: reshape and its relatives (views that share storage), permute and
// transpose (copies: gaze tensors are always contiguous), cat/split, and slicing.
#pragma once

#include <optional>
#include <vector>

#include "gaze/core/tensor.h"

namespace gaze {

// One dim may be -1 (inferred). The result shares storage with the input.
Tensor reshape(const Tensor& input, const std::vector<int64_t>& shape);
Tensor reshape(const Tensor& input, const Shape& shape);
Tensor flatten(const Tensor& input, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor unsqueeze(const Tensor& input, int64_t dim);
Tensor squeeze(const Tensor& input);               // drops every size-1 dim
Tensor squeeze(const Tensor& input, int64_t dim);  // drops dim if it has size 1

Tensor permute(const Tensor& input, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& input, int64_t dim0, int64_t dim1);

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
// Pieces of split_size along dim (the last may be smaller), as torch.split with an int.
std::vector<Tensor> split(const Tensor& input, int64_t split_size, int64_t dim = 0);
// Pieces with the given sizes, which must sum to the size of dim.
std::vector<Tensor> split(const Tensor& input, const std::vector<int64_t>& split_sizes,
                          int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor& input, int64_t chunks, int64_t dim = 0);

// Elements start, start+step, ... < end along dim (PyTorch slicing: negative and out-of-range
// bounds are clamped). A view sharing storage when the slice is contiguous in memory, otherwise a
// copy.
Tensor slice(const Tensor& input, int64_t dim, std::optional<int64_t> start = std::nullopt,
             std::optional<int64_t> end = std::nullopt, int64_t step = 1);
Tensor narrow(const Tensor& input, int64_t dim, int64_t start, int64_t length);
// The sub-tensor at `index` along dim, with that dim removed.
Tensor select(const Tensor& input, int64_t dim, int64_t index);

}  // namespace gaze
