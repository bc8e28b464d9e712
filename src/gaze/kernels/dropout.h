// Dropout masks drawn from Philox: element i keeps its value (scaled by 1/(1-p)) unless the uniform
// number at counter (first_block + i/4, word i%4) of the stream falls below p. The forward can
// record the mask as one bit per element, so the backward applies it without drawing it again.
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

// y = mask * x / (1 - p). keep (optional, (n + 7) / 8 bytes): bit i % 8 of keep[i / 8] is set
// when element i is kept.
template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, const DropoutStream& rs,
             uint8_t* keep = nullptr);

// The backward from a recorded mask: gx = gy * (kept ? 1 / (1 - p) : 0), bit for bit what dropout
// gives with x = gy and the same stream (a multiply, so NaN gradients stay NaN).
template <typename T>
void dropout_masked(const T* gy, T* gx, int64_t n, double p, const uint8_t* keep);

}  // namespace gaze::kernels
