#include "gaze/kernels/cross_entropy.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "gaze/core/threads.h"

namespace gaze::kernels {

// Plain loops: the row work is O(C) next to an O(C * d_model) projection that produced the logits.
template <typename T>
void cross_entropy(const T* logits, const int64_t* target, const T* weight, int64_t n, int64_t c,
                   int64_t ignore_index, double eps, T* loss, T* wrow, T* lse) {
  parallel_for(
      0, n, std::max<int64_t>(1, 8192 / std::max<int64_t>(c, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          const T* z = logits + i * c;
          T mx = -std::numeric_limits<T>::infinity();
          bool nan = false;
          for (int64_t j = 0; j < c; ++j) {
            nan |= std::isnan(z[j]);
            mx = std::max(mx, z[j]);
          }
          double s = 0;
          for (int64_t j = 0; j < c; ++j) s += std::exp(static_cast<double>(z[j] - mx));
          const T l = nan ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(mx + std::log(s));
          lse[i] = l;
          const int64_t y = target[i];
          if (y == ignore_index) {
            loss[i] = T(0);
            wrow[i] = T(0);
            continue;
          }
          const T wy = weight ? weight[y] : T(1);
          double total = (1.0 - eps) * wy * (l - z[y]);
          if (eps > 0) {
            double smooth = 0;
            for (int64_t j = 0; j < c; ++j) smooth += (weight ? weight[j] : T(1)) * (l - z[j]);
            total += eps / static_cast<double>(c) * smooth;
          }
          loss[i] = static_cast<T>(total);
          wrow[i] = wy;
        }
      });
}

template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* target, const T* weight, const T* lse,
                            const T* scale, int64_t n, int64_t c, int64_t ignore_index, double eps,
                            T* glogits) {
  parallel_for(0, n, std::max<int64_t>(1, 8192 / std::max<int64_t>(c, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i) {
                   T* g = glogits + i * c;
                   const int64_t y = target[i];
                   if (y == ignore_index) {
                     std::memset(g, 0, sizeof(T) * c);
                     continue;
                   }
                   const T* z = logits + i * c;
                   const T wy = weight ? weight[y] : T(1);
                   T wsum = static_cast<T>(c);
                   if (weight) {
                     wsum = 0;
                     for (int64_t j = 0; j < c; ++j) wsum += weight[j];
                   }
                   // d/dz_j = (1-eps) w_y (p_j - [j=y]) + (eps/C) (W p_j - w_j),  W = sum_c w_c
                   const T a = static_cast<T>((1.0 - eps) * wy + eps / c * wsum),
                           e = static_cast<T>(eps / c);
                   for (int64_t j = 0; j < c; ++j) {
                     const T p = std::exp(z[j] - lse[i]);
                     g[j] = scale[i] * (a * p - e * (weight ? weight[j] : T(1)));
                   }
                   g[y] -= scale[i] * static_cast<T>((1.0 - eps) * wy);
                 }
               });
}

template void cross_entropy<float>(const float*, const int64_t*, const float*, int64_t, int64_t,
                                   int64_t, double, float*, float*, float*);
template void cross_entropy<double>(const double*, const int64_t*, const double*, int64_t, int64_t,
                                    int64_t, double, double*, double*, double*);
template void cross_entropy_backward<float>(const float*, const int64_t*, const float*,
                                            const float*, const float*, int64_t, int64_t, int64_t,
                                            double, float*);
template void cross_entropy_backward<double>(const double*, const int64_t*, const double*,
                                             const double*, const double*, int64_t, int64_t,
                                             int64_t, double, double*);

}  // namespace gaze::kernels
