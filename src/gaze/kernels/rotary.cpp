#include "gaze/kernels/rotary.h"

#include <cmath>
#include <vector>

#include "gaze/core/threads.h"

namespace gaze::kernels {

template <typename T>
void rotary(const RotaryArgs& a, const T* x, T* y, bool inverse) {
  const int64_t half = a.rotary_dim / 2;
  parallel_for(0, a.rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(a.dim, 1)),
               [&](int64_t lo, int64_t hi) {
                 std::vector<T> c(half), s(half);
                 for (int64_t r = lo; r < hi; ++r) {
                   const double pos = static_cast<double>(a.position[r]);
                   for (int64_t i = 0; i < half;
                        ++i) {  // angles in double: positions times frequencies lose bits in float
                     const double th = pos * a.inv_freq[i];
                     c[i] = static_cast<T>(std::cos(th));
                     s[i] = static_cast<T>(inverse ? -std::sin(th) : std::sin(th));
                   }
                   const T* xr = x + r * a.dim;
                   T* yr = y + r * a.dim;
                   for (int64_t i = 0; i < half; ++i) {
                     const int64_t i1 = a.interleaved ? 2 * i : i,
                                   i2 = a.interleaved ? 2 * i + 1 : i + half;
                     const T x1 = xr[i1], x2 = xr[i2];
                     yr[i1] = x1 * c[i] - x2 * s[i];
                     yr[i2] = x1 * s[i] + x2 * c[i];
                   }
                   if (yr != xr)
                     for (int64_t i = a.rotary_dim; i < a.dim; ++i) yr[i] = xr[i];
                 }
               });
}

template void rotary<float>(const RotaryArgs&, const float*, float*, bool);
template void rotary<double>(const RotaryArgs&, const double*, double*, bool);

}  // namespace gaze::kernels
