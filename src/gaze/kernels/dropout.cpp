#include "gaze/kernels/dropout.h"

#include "gaze/core/rng.h"
#include "gaze/core/threads.h"

namespace gaze::kernels {

template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, const DropoutStream& rs) {
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  const int64_t blocks = (n + 3) / 4;
  parallel_for(0, blocks, 2048, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      const auto w = philox4x32(rs.seed, rs.stream, rs.first_block + static_cast<uint64_t>(b));
      for (int j = 0; j < 4 && 4 * b + j < n; ++j) {
        const int64_t i = 4 * b + j;
        // x * 0 rather than 0, so a NaN input stays NaN as in torch.
        y[i] = x[i] * (static_cast<double>(uniform_float(w[j])) < p ? T(0) : scale);
      }
    }
  });
}

template void dropout<float>(const float*, float*, int64_t, double, const DropoutStream&);
template void dropout<double>(const double*, double*, int64_t, double, const DropoutStream&);

}  // namespace gaze::kernels
