// Dropout masks drawn from Philox: element i keeps its value (scaled by 1/(1-p)) unless the uniform
// number at counter (first_block + i/4, word i%4) of the stream falls below p. The backward
// regenerates the same mask from the same counters instead of storing it.
#pragma once

#include <cstdint>

namespace gaze::kernels {

struct DropoutStream {
  uint64_t seed = 0, stream = 0, first_block = 0;
};

// out[4*i .. 4*i+3] = philox4x32(seed, stream, first_block + i) for i < n_blocks, computed with
// the widest SIMD target (the same words as the scalar generator).
void philox_words(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t n_blocks,
                  uint32_t* out);

// y = mask * x / (1 - p); also the backward, with x = gy and y = gx.
template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, const DropoutStream& rs);

}  // namespace gaze::kernels
