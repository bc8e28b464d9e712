// Embedding lookup: gather rows of a [V, D] table by index, and the backward scatter-add into a
// dense gradient table (deterministic: threads split the D columns, never the rows).
#pragma once

#include <cstdint>

namespace gaze::kernels {

// out[i, :] = weight[idx[i], :] for i < n (indices already validated).
template <typename T>
void embedding(const int64_t* idx, int64_t n, const T* weight, int64_t dim, T* out);

// gweight[idx[i], :] += gout[i, :] for i < n, skipping idx[i] == padding_idx (pass -1 for none).
template <typename T>
void embedding_backward(const int64_t* idx, int64_t n, const T* gout, int64_t dim, T* gweight,
                        int64_t padding_idx);

}  // namespace gaze::kernels
