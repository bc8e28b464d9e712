#include "gaze/kernels/embedding.h"

#include <cstring>

#include "gaze/core/threads.h"
#include "gaze/kernels/elementwise.h"

namespace gaze::kernels {

template <typename T>
void embedding(const int64_t* idx, int64_t n, const T* weight, int64_t dim, T* out) {
  parallel_for(0, n, std::max<int64_t>(1, 8192 / std::max<int64_t>(dim, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i)
                   std::memcpy(out + i * dim, weight + idx[i] * dim, sizeof(T) * dim);
               });
}

template <typename T>
void embedding_backward(const int64_t* idx, int64_t n, const T* gout, int64_t dim, T* gweight,
                        int64_t padding_idx) {
  // Column blocks of 64 per work item keep each thread's writes disjoint; rows are summed in order.
  constexpr int64_t kCols = 64;
  const int64_t blocks = (dim + kCols - 1) / kCols;
  parallel_for(0, blocks, std::max<int64_t>(1, 4096 / std::max<int64_t>(n, 1)),
               [&](int64_t lo, int64_t hi) {
                 const int64_t c0 = lo * kCols, c1 = std::min(dim, hi * kCols);
                 for (int64_t i = 0; i < n; ++i) {
                   if (idx[i] == padding_idx) continue;
                   T* dst = gweight + idx[i] * dim;
                   const T* src = gout + i * dim;
                   for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
                 }
               });
}

template void embedding<float>(const int64_t*, int64_t, const float*, int64_t, float*);
template void embedding<double>(const int64_t*, int64_t, const double*, int64_t, double*);
template void embedding_backward<float>(const int64_t*, int64_t, const float*, int64_t, float*,
                                        int64_t);
template void embedding_backward<double>(const int64_t*, int64_t, const double*, int64_t, double*,
                                         int64_t);

}  // namespace gaze::kernels
