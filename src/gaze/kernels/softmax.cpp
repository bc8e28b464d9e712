#include "gaze/kernels/softmax.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/softmax.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/simd-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

// One contiguous row of length n.
template <typename T>
void SoftmaxRowImpl(const T* x, T* y, size_t n, bool log) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t N = hn::Lanes(d);
  V m = hn::Set(d, -std::numeric_limits<T>::infinity());
  size_t i = 0;
  for (; i + N <= n; i += N) m = hn::Max(m, hn::LoadU(d, x + i));
  if (i < n) m = hn::Max(m, hn::IfThenElse(hn::FirstN(d, n - i), LoadTail(d, x + i, n - i), m));
  const T mx = MaxLanes(d, m);
  const V vmax = hn::Set(d, mx);
  // e = exp(x - max), kept in y; the masked tail lanes contribute exp(0 - max) only if stored, so
  // they are zeroed before summing.
  V s = hn::Zero(d);
  for (i = 0; i + N <= n; i += N) {
    const V e = ExpSafe(d, hn::Sub(hn::LoadU(d, x + i), vmax));
    if (!log) hn::StoreU(e, d, y + i);
    s = hn::Add(s, e);
  }
  if (i < n) {
    const auto mask = hn::FirstN(d, n - i);
    const V e = hn::IfThenElseZero(mask, ExpSafe(d, hn::Sub(LoadTail(d, x + i, n - i), vmax)));
    if (!log) StoreTail(e, d, y + i, n - i);
    s = hn::Add(s, e);
  }
  const T sum = SumLanes(d, s);
  if (log) {
    // (x - max) - log(sum), not x - (max + log(sum)): the latter rounds log(sum) against max.
    const V lse = hn::Set(d, std::log(sum));
    Map1(d, x, y, n, [&](auto, V v) { return hn::Sub(hn::Sub(v, vmax), lse); });
  } else {
    const V inv = hn::Set(d, T(1) / sum);
    Map1(d, y, y, n, [&](auto, V v) { return hn::Mul(v, inv); });
  }
}

template <typename T>
void SoftmaxRowBackwardImpl(const T* y, const T* gy, T* gx, size_t n, bool log) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t N = hn::Lanes(d);
  V acc = hn::Zero(d);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const V g = hn::LoadU(d, gy + i);
    acc = log ? hn::Add(acc, g) : hn::MulAdd(g, hn::LoadU(d, y + i), acc);
  }
  if (i < n) {
    const V g = LoadTail(d, gy + i, n - i);
    acc = log ? hn::Add(acc, g) : hn::MulAdd(g, LoadTail(d, y + i, n - i), acc);
  }
  const V s = hn::Set(d, SumLanes(d, acc));
  if (log) {
    Map3(d, y, gy, gy, gx, n,
         [&](auto d, V yv, V g, V) { return hn::NegMulAdd(ExpSafe(d, yv), s, g); });
  } else {
    Map3(d, y, gy, gy, gx, n, [&](auto, V yv, V g, V) { return hn::Mul(yv, hn::Sub(g, s)); });
  }
}

// Strided case: softmax over k of x[k * inner + i], vectorised across i. `m` and `s` are scratch
// rows of length inner.
template <typename T>
void SoftmaxStridedImpl(const T* x, T* y, size_t n, size_t inner, T* m, T* s, bool log) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  for (size_t i = 0; i < inner; ++i) {
    m[i] = -std::numeric_limits<T>::infinity();
    s[i] = T(0);
  }
  for (size_t k = 0; k < n; ++k)
    Map3(d, m, x + k * inner, m, m, inner, [](auto, V a, V b, V) { return hn::Max(a, b); });
  for (size_t k = 0; k < n; ++k) {
    const T* xr = x + k * inner;
    Map3(d, xr, m, s, s, inner,
         [](auto d, V xv, V mv, V sv) { return hn::Add(sv, ExpSafe(d, hn::Sub(xv, mv))); });
  }
  if (log) {
    for (size_t i = 0; i < inner; ++i) s[i] = std::log(s[i]);
    for (size_t k = 0; k < n; ++k)
      Map3(d, x + k * inner, m, s, y + k * inner, inner,
           [](auto, V xv, V mv, V lse) { return hn::Sub(hn::Sub(xv, mv), lse); });
  } else {
    for (size_t i = 0; i < inner; ++i) s[i] = T(1) / s[i];
    for (size_t k = 0; k < n; ++k)
      Map3(d, x + k * inner, m, s, y + k * inner, inner,
           [](auto d, V xv, V mv, V inv) { return hn::Mul(ExpSafe(d, hn::Sub(xv, mv)), inv); });
  }
}

template <typename T>
void SoftmaxStridedBackwardImpl(const T* y, const T* gy, T* gx, size_t n, size_t inner, T* s,
                                bool log) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  for (size_t i = 0; i < inner; ++i) s[i] = T(0);
  for (size_t k = 0; k < n; ++k) {
    const T* yr = y + k * inner;
    const T* gr = gy + k * inner;
    if (log)
      Map3(d, gr, s, s, s, inner, [](auto, V g, V sv, V) { return hn::Add(sv, g); });
    else
      Map3(d, gr, yr, s, s, inner, [](auto, V g, V yv, V sv) { return hn::MulAdd(g, yv, sv); });
  }
  for (size_t k = 0; k < n; ++k) {
    const T* yr = y + k * inner;
    const T* gr = gy + k * inner;
    if (log)
      Map3(d, yr, gr, s, gx + k * inner, inner,
           [](auto d, V yv, V g, V sv) { return hn::NegMulAdd(ExpSafe(d, yv), sv, g); });
    else
      Map3(d, yr, gr, s, gx + k * inner, inner,
           [](auto, V yv, V g, V sv) { return hn::Mul(yv, hn::Sub(g, sv)); });
  }
}

void SoftmaxRowF32(const float* x, float* y, size_t n, bool log) {
  SoftmaxRowImpl(x, y, n, log);
}
void SoftmaxRowF64(const double* x, double* y, size_t n, bool log) {
  SoftmaxRowImpl(x, y, n, log);
}
void SoftmaxRowBackwardF32(const float* y, const float* gy, float* gx, size_t n, bool log) {
  SoftmaxRowBackwardImpl(y, gy, gx, n, log);
}
void SoftmaxRowBackwardF64(const double* y, const double* gy, double* gx, size_t n, bool log) {
  SoftmaxRowBackwardImpl(y, gy, gx, n, log);
}
void SoftmaxStridedF32(const float* x, float* y, size_t n, size_t inner, float* m, float* s,
                       bool log) {
  SoftmaxStridedImpl(x, y, n, inner, m, s, log);
}
void SoftmaxStridedF64(const double* x, double* y, size_t n, size_t inner, double* m, double* s,
                       bool log) {
  SoftmaxStridedImpl(x, y, n, inner, m, s, log);
}
void SoftmaxStridedBackwardF32(const float* y, const float* gy, float* gx, size_t n, size_t inner,
                               float* s, bool log) {
  SoftmaxStridedBackwardImpl(y, gy, gx, n, inner, s, log);
}
void SoftmaxStridedBackwardF64(const double* y, const double* gy, double* gx, size_t n,
                               size_t inner, double* s, bool log) {
  SoftmaxStridedBackwardImpl(y, gy, gx, n, inner, s, log);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <vector>
#include "gaze/kernels/dispatch.h"

#include "gaze/core/threads.h"

namespace gaze::kernels {

HWY_EXPORT(SoftmaxRowF32);
HWY_EXPORT(SoftmaxRowF64);
HWY_EXPORT(SoftmaxRowBackwardF32);
HWY_EXPORT(SoftmaxRowBackwardF64);
HWY_EXPORT(SoftmaxStridedF32);
HWY_EXPORT(SoftmaxStridedF64);
HWY_EXPORT(SoftmaxStridedBackwardF32);
HWY_EXPORT(SoftmaxStridedBackwardF64);

namespace {
constexpr int64_t kGrain = 1 << 14;
}

template <typename T>
void softmax(const T* x, T* y, int64_t outer, int64_t n, int64_t inner, bool log) {
  if (outer * n * inner == 0) return;
  if (inner == 1) {
    auto row = pick<T>(HWY_DYNAMIC_DISPATCH(SoftmaxRowF32), HWY_DYNAMIC_DISPATCH(SoftmaxRowF64));
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / n), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) row(x + o * n, y + o * n, static_cast<size_t>(n), log);
    });
    return;
  }
  auto strided =
      pick<T>(HWY_DYNAMIC_DISPATCH(SoftmaxStridedF32), HWY_DYNAMIC_DISPATCH(SoftmaxStridedF64));
  parallel_for(0, outer, std::max<int64_t>(1, kGrain / (n * inner)), [&](int64_t lo, int64_t hi) {
    std::vector<T> scratch(2 * inner);
    for (int64_t o = lo; o < hi; ++o)
      strided(x + o * n * inner, y + o * n * inner, static_cast<size_t>(n),
              static_cast<size_t>(inner), scratch.data(), scratch.data() + inner, log);
  });
}

template <typename T>
void softmax_backward(const T* y, const T* gy, T* gx, int64_t outer, int64_t n, int64_t inner,
                      bool log) {
  if (outer * n * inner == 0) return;
  if (inner == 1) {
    auto row = pick<T>(HWY_DYNAMIC_DISPATCH(SoftmaxRowBackwardF32),
                       HWY_DYNAMIC_DISPATCH(SoftmaxRowBackwardF64));
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / n), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o)
        row(y + o * n, gy + o * n, gx + o * n, static_cast<size_t>(n), log);
    });
    return;
  }
  auto strided = pick<T>(HWY_DYNAMIC_DISPATCH(SoftmaxStridedBackwardF32),
                         HWY_DYNAMIC_DISPATCH(SoftmaxStridedBackwardF64));
  parallel_for(0, outer, std::max<int64_t>(1, kGrain / (n * inner)), [&](int64_t lo, int64_t hi) {
    std::vector<T> scratch(inner);
    for (int64_t o = lo; o < hi; ++o) {
      const int64_t off = o * n * inner;
      strided(y + off, gy + off, gx + off, static_cast<size_t>(n), static_cast<size_t>(inner),
              scratch.data(), log);
    }
  });
}

template void softmax<float>(const float*, float*, int64_t, int64_t, int64_t, bool);
template void softmax<double>(const double*, double*, int64_t, int64_t, int64_t, bool);
template void softmax_backward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t,
                                      bool);
template void softmax_backward<double>(const double*, const double*, double*, int64_t, int64_t,
                                       int64_t, bool);

}  // namespace gaze::kernels
#endif  // HWY_ONCE
