// Softmax and log-softmax over the middle axis of [outer, n, inner], numerically stable (the row
// maximum is subtracted before exponentiating), forward and backward.
#pragma once

#include <cstdint>

namespace gaze::kernels {

template <typename T>
void softmax(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log);

// softmax:     gx = y * (gy - sum(gy * y))
// log_softmax: gx = gy - exp(y) * sum(gy)
template <typename T>
void softmax_backward(const T* y, const T* gy, T* gx, int64_t outer, int64_t n, int64_t inner,
                      bool log);

}  // namespace gaze::kernels
