#include "gaze/kernels/layer_norm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/layer_norm.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/simd-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

template <typename T>
void LayerNormRowImpl(const T* x, const T* w, const T* b, T* y, T* mean_out, T* rstd_out, size_t n,
                      T eps) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t N = hn::Lanes(d);
  // Two passes (mean, then squared deviations): stable for rows with a large common offset.
  V s = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) s = hn::Add(s, hn::LoadU(d, x + i));
  if (i < n) s = hn::Add(s, LoadTail(d, x + i, n - i));
  const T mean = SumLanes(d, s) / static_cast<T>(n);
  const V vm = hn::Set(d, mean);
  V q = hn::Zero(d);
  for (i = 0; i + N <= n; i += N) {
    const V c = hn::Sub(hn::LoadU(d, x + i), vm);
    q = hn::MulAdd(c, c, q);
  }
  if (i < n) {
    const V c = hn::IfThenElseZero(hn::FirstN(d, n - i), hn::Sub(LoadTail(d, x + i, n - i), vm));
    q = hn::MulAdd(c, c, q);
  }
  const T var = SumLanes(d, q) / static_cast<T>(n);
  const T rstd = T(1) / std::sqrt(var + eps);
  *mean_out = mean;
  *rstd_out = rstd;
  const V vr = hn::Set(d, rstd);
  if (w && b) {
    Map3(d, x, w, b, y, n,
         [&](auto, V xv, V wv, V bv) { return hn::MulAdd(hn::Mul(hn::Sub(xv, vm), vr), wv, bv); });
  } else if (w) {
    Map3(d, x, w, w, y, n,
         [&](auto, V xv, V wv, V) { return hn::Mul(hn::Mul(hn::Sub(xv, vm), vr), wv); });
  } else if (b) {
    Map3(d, x, b, b, y, n,
         [&](auto, V xv, V bv, V) { return hn::MulAdd(hn::Sub(xv, vm), vr, bv); });
  } else {
    Map1(d, x, y, n, [&](auto, V xv) { return hn::Mul(hn::Sub(xv, vm), vr); });
  }
}

// One row of the backward; gw_acc/gb_acc (nullable) accumulate this row's contribution.
template <typename T>
void LayerNormRowBackwardImpl(const T* x, const T* w, T mean, T rstd, const T* gy, T* gx, T* gw_acc,
                              T* gb_acc, size_t n) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t N = hn::Lanes(d);
  const V vm = hn::Set(d, mean), vr = hn::Set(d, rstd);
  if (gx) {
    // a = sum(g), c = sum(g * xhat), with g = gy * w.
    V a = hn::Zero(d), c = hn::Zero(d);
    size_t i = 0;
    for (; i < n; i += N) {
      const size_t r = std::min(N, n - i);
      const V xv = r == N ? hn::LoadU(d, x + i) : LoadTail(d, x + i, r);
      V g = r == N ? hn::LoadU(d, gy + i) : LoadTail(d, gy + i, r);
      if (w) g = hn::Mul(g, r == N ? hn::LoadU(d, w + i) : LoadTail(d, w + i, r));
      const V xhat = hn::IfThenElseZero(hn::FirstN(d, r), hn::Mul(hn::Sub(xv, vm), vr));
      a = hn::Add(a, g);
      c = hn::MulAdd(g, xhat, c);
    }
    const V ma = hn::Set(d, SumLanes(d, a) / static_cast<T>(n));
    const V mc = hn::Set(d, SumLanes(d, c) / static_cast<T>(n));
    for (i = 0; i < n; i += N) {
      const size_t r = std::min(N, n - i);
      const V xv = r == N ? hn::LoadU(d, x + i) : LoadTail(d, x + i, r);
      V g = r == N ? hn::LoadU(d, gy + i) : LoadTail(d, gy + i, r);
      if (w) g = hn::Mul(g, r == N ? hn::LoadU(d, w + i) : LoadTail(d, w + i, r));
      const V xhat = hn::Mul(hn::Sub(xv, vm), vr);
      const V out = hn::Mul(vr, hn::Sub(hn::Sub(g, ma), hn::Mul(xhat, mc)));
      if (r == N)
        hn::StoreU(out, d, gx + i);
      else
        StoreTail(out, d, gx + i, r);
    }
  }
  if (gw_acc)
    Map3(d, x, gy, gw_acc, gw_acc, n,
         [&](auto, V xv, V g, V acc) { return hn::MulAdd(g, hn::Mul(hn::Sub(xv, vm), vr), acc); });
  if (gb_acc)
    Map3(d, gy, gb_acc, gb_acc, gb_acc, n, [](auto, V g, V acc, V) { return hn::Add(acc, g); });
}

template <typename T>
void AddLayerNormRowImpl(const T* x, const T* r, const T* w, const T* b, T* s, T* y, T* mean_out,
                         T* rstd_out, size_t n, T eps) {
  const hn::ScalableTag<T> d;
  Map3(d, x, r, r, s, n, [](auto, auto a, auto c, auto) { return hn::Add(a, c); });
  LayerNormRowImpl(s, w, b, y, mean_out, rstd_out, n, eps);  // s is still in L1
}

void AddLayerNormRowF32(const float* x, const float* r, const float* w, const float* b, float* s,
                        float* y, float* m, float* rs, size_t n, float eps) {
  AddLayerNormRowImpl(x, r, w, b, s, y, m, rs, n, eps);
}
void AddLayerNormRowF64(const double* x, const double* r, const double* w, const double* b,
                        double* s, double* y, double* m, double* rs, size_t n, double eps) {
  AddLayerNormRowImpl(x, r, w, b, s, y, m, rs, n, eps);
}

void LayerNormRowF32(const float* x, const float* w, const float* b, float* y, float* m, float* r,
                     size_t n, float eps) {
  LayerNormRowImpl(x, w, b, y, m, r, n, eps);
}
void LayerNormRowF64(const double* x, const double* w, const double* b, double* y, double* m,
                     double* r, size_t n, double eps) {
  LayerNormRowImpl(x, w, b, y, m, r, n, eps);
}
void LayerNormRowBackwardF32(const float* x, const float* w, float m, float r, const float* gy,
                             float* gx, float* gw, float* gb, size_t n) {
  LayerNormRowBackwardImpl(x, w, m, r, gy, gx, gw, gb, n);
}
void LayerNormRowBackwardF64(const double* x, const double* w, double m, double r, const double* gy,
                             double* gx, double* gw, double* gb, size_t n) {
  LayerNormRowBackwardImpl(x, w, m, r, gy, gx, gw, gb, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <vector>
#include "gaze/kernels/dispatch.h"

#include "gaze/core/threads.h"

namespace gaze::kernels {

HWY_EXPORT(AddLayerNormRowF32);
HWY_EXPORT(AddLayerNormRowF64);
HWY_EXPORT(LayerNormRowF32);
HWY_EXPORT(LayerNormRowF64);
HWY_EXPORT(LayerNormRowBackwardF32);
HWY_EXPORT(LayerNormRowBackwardF64);

namespace {
constexpr int64_t kGrain = 1 << 14;
}

template <typename T>
void layer_norm(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t n,
                double eps) {
  auto row = pick<T>(HWY_DYNAMIC_DISPATCH(LayerNormRowF32), HWY_DYNAMIC_DISPATCH(LayerNormRowF64));
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r)
                   row(x + r * n, w, b, y + r * n, mean + r, rstd + r, static_cast<size_t>(n),
                       static_cast<T>(eps));
               });
}

template <typename T>
void add_layer_norm(const T* x, const T* r, const T* w, const T* b, T* sum, T* y, T* mean, T* rstd,
                    int64_t rows, int64_t n, double eps) {
  auto row =
      pick<T>(HWY_DYNAMIC_DISPATCH(AddLayerNormRowF32), HWY_DYNAMIC_DISPATCH(AddLayerNormRowF64));
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t i = lo; i < hi; ++i)
                   row(x + i * n, r + i * n, w, b, sum + i * n, y + i * n, mean + i, rstd + i,
                       static_cast<size_t>(n), static_cast<T>(eps));
               });
}

template <typename T>
void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx,
                         T* gw, T* gb, int64_t rows, int64_t n) {
  auto row = pick<T>(HWY_DYNAMIC_DISPATCH(LayerNormRowBackwardF32),
                     HWY_DYNAMIC_DISPATCH(LayerNormRowBackwardF64));
  // Each thread sums its rows' weight/bias gradients into its own buffer; the buffers are added in
  // thread order afterwards, so the result is the same on every run with the same thread count.
  const int nt = num_threads();
  std::vector<std::vector<T>> part_w(gw ? nt : 0), part_b(gb ? nt : 0);
  parallel_for(0, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(n, 1)),
               [&](int64_t lo, int64_t hi) {
                 const int t = omp_in_parallel() ? omp_get_thread_num() : 0;
                 T* pw = nullptr;
                 T* pb = nullptr;
                 if (gw) {
                   part_w[t].assign(n, T(0));
                   pw = part_w[t].data();
                 }
                 if (gb) {
                   part_b[t].assign(n, T(0));
                   pb = part_b[t].data();
                 }
                 for (int64_t r = lo; r < hi; ++r)
                   row(x + r * n, w, mean[r], rstd[r], gy + r * n, gx ? gx + r * n : nullptr, pw,
                       pb, static_cast<size_t>(n));
               });
  for (int t = 0; t < nt; ++t) {
    if (gw && !part_w[t].empty())
      for (int64_t i = 0; i < n; ++i) gw[i] += part_w[t][i];
    if (gb && !part_b[t].empty())
      for (int64_t i = 0; i < n; ++i) gb[i] += part_b[t][i];
  }
}

template void layer_norm<float>(const float*, const float*, const float*, float*, float*, float*,
                                int64_t, int64_t, double);
template void layer_norm<double>(const double*, const double*, const double*, double*, double*,
                                 double*, int64_t, int64_t, double);
template void add_layer_norm<float>(const float*, const float*, const float*, const float*, float*,
                                    float*, float*, float*, int64_t, int64_t, double);
template void add_layer_norm<double>(const double*, const double*, const double*, const double*,
                                     double*, double*, double*, double*, int64_t, int64_t, double);
template void layer_norm_backward<float>(const float*, const float*, const float*, const float*,
                                         const float*, float*, float*, float*, int64_t, int64_t);
template void layer_norm_backward<double>(const double*, const double*, const double*,
                                          const double*, const double*, double*, double*, double*,
                                          int64_t, int64_t);

}  // namespace gaze::kernels
#endif  // HWY_ONCE
