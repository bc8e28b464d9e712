// Data movement for shape ops on contiguous tensors: permutation (transpose) and copies of strided
// blocks (concat, split, slicing). Element type is given by its size, so every dtype shares them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "gaze/core/shape.h"

namespace gaze::kernels {

// dst = src permuted: dst dimension i is src dimension perm[i]. elem_size in {1, 2, 4, 8}.
void permute(const void* src, const Shape& src_shape, const int* perm, void* dst, size_t elem_size);

// Copies `rows` rows of `row_bytes` bytes: row r from src + r * src_stride to dst + r * dst_stride
// (strides in bytes).
void copy_rows(const void* src, int64_t src_stride, void* dst, int64_t dst_stride, int64_t rows,
               size_t row_bytes);

}  // namespace gaze::kernels
