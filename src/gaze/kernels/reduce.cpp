#include "gaze/kernels/reduce.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/reduce.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/simd-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

// Sum of one contiguous row, with four independent accumulators (more accurate and faster than
// one).
template <typename T>
T RowSumImpl(const T* x, size_t n) {
  const hn::ScalableTag<T> d;
  const size_t N = hn::Lanes(d);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::Add(s0, hn::LoadU(d, x + i));
    s1 = hn::Add(s1, hn::LoadU(d, x + i + N));
    s2 = hn::Add(s2, hn::LoadU(d, x + i + 2 * N));
    s3 = hn::Add(s3, hn::LoadU(d, x + i + 3 * N));
  }
  for (; i + N <= n; i += N) s0 = hn::Add(s0, hn::LoadU(d, x + i));
  if (i < n) s1 = hn::Add(s1, LoadTail(d, x + i, n - i));
  return SumLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)));
}

// acc[i] += x[i] for i < n.
template <typename T>
void AccumulateRowImpl(T* acc, const T* x, size_t n) {
  const hn::ScalableTag<T> d;
  Map3(d, acc, x, x, acc, n, [](auto, auto a, auto b, auto) { return hn::Add(a, b); });
}

size_t FirstAtLeastImpl(const float* x, size_t n, float cut) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  const auto vcut = hn::Set(d, cut);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {  // four vectors per test: most rows pass by untouched
    const auto m =
        hn::Or(hn::Or(hn::Ge(hn::LoadU(d, x + i), vcut), hn::Ge(hn::LoadU(d, x + i + N), vcut)),
               hn::Or(hn::Ge(hn::LoadU(d, x + i + 2 * N), vcut),
                      hn::Ge(hn::LoadU(d, x + i + 3 * N), vcut)));
    if (!hn::AllFalse(d, m)) break;
  }
  for (; i < n; ++i)
    if (x[i] >= cut) return i;
  return n;
}

float RowSumF32(const float* x, size_t n) {
  return RowSumImpl(x, n);
}
double RowSumF64(const double* x, size_t n) {
  return RowSumImpl(x, n);
}
void AccumulateRowF32(float* acc, const float* x, size_t n) {
  AccumulateRowImpl(acc, x, n);
}
void AccumulateRowF64(double* acc, const double* x, size_t n) {
  AccumulateRowImpl(acc, x, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cmath>
#include <cstring>
#include "gaze/kernels/dispatch.h"
#include "gaze/kernels/scratch.h"

#include "gaze/core/threads.h"

namespace gaze::kernels {

HWY_EXPORT(FirstAtLeastImpl);
HWY_EXPORT(RowSumF32);
HWY_EXPORT(RowSumF64);
HWY_EXPORT(AccumulateRowF32);
HWY_EXPORT(AccumulateRowF64);

namespace {
constexpr int64_t kGrain = 1 << 15;
// Rows per partial sum when a reduction keeps too few positions to split (sum_axis).
constexpr int64_t kRowBlock = 256;
}  // namespace

int64_t first_at_least(const float* x, int64_t n, float cut) {
  if (n <= 0) return 0;
  return static_cast<int64_t>(
      HWY_DYNAMIC_DISPATCH(FirstAtLeastImpl)(x, static_cast<size_t>(n), cut));
}

template <typename T>
void sum_axis(const T* x, T* y, int64_t outer, int64_t r, int64_t inner) {
  if (outer * inner == 0) return;
  if (r == 0) {
    std::memset(y, 0, sizeof(T) * outer * inner);
    return;
  }
  if (inner == 1) {
    auto row_sum = pick<T>(HWY_DYNAMIC_DISPATCH(RowSumF32), HWY_DYNAMIC_DISPATCH(RowSumF64));
    parallel_for(0, outer, std::max<int64_t>(1, kGrain / r), [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) y[o] = row_sum(x + o * r, static_cast<size_t>(r));
    });
    return;
  }
  auto acc_row =
      pick<T>(HWY_DYNAMIC_DISPATCH(AccumulateRowF32), HWY_DYNAMIC_DISPATCH(AccumulateRowF64));
  // dst[0, len) = the sum of `rows` rows of len values, `stride` apart from src, in order.
  auto sum_rows = [&](T* dst, const T* src, int64_t rows, int64_t stride, int64_t len) {
    std::memcpy(dst, src, sizeof(T) * len);
    for (int64_t k = 1; k < rows; ++k) acc_row(dst, src + k * stride, static_cast<size_t>(len));
  };
  // Split the kept positions (outer x inner-chunks) between threads; each sums its rows in order,
  // so the result does not depend on the thread count.
  const int64_t chunk = std::min<int64_t>(inner, 4096);
  const int64_t chunks = (inner + chunk - 1) / chunk;
  if (outer * chunks < 8 && r >= 2 * kRowBlock) {
    // Too few positions to share (a bias's gradient: one row of 256-1024 summed over 4096 rows),
    // so one thread would read everything while the others wait: sum fixed blocks of rows
    // separately, then the blocks' sums in order (fixed blocks, so still the same result on any
    // number of threads).
    const int64_t blocks = (r + kRowBlock - 1) / kRowBlock, kept = outer * inner;
    Scratch<T> partial(static_cast<size_t>(blocks * kept));  // under r * kept: no overflow
    parallel_for(0, blocks * outer, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t it = lo; it < hi; ++it) {
        const int64_t blk = it / outer, o = it % outer, k0 = blk * kRowBlock,
                      k1 = std::min(r, k0 + kRowBlock);
        sum_rows(partial.data() + blk * kept + o * inner, x + (o * r + k0) * inner, k1 - k0, inner,
                 inner);
      }
    });
    sum_rows(y, partial.data(), blocks, kept, kept);
    return;
  }
  parallel_for(0, outer * chunks, std::max<int64_t>(1, kGrain / (r * chunk)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t it = lo; it < hi; ++it) {
                   const int64_t o = it / chunks, s = (it % chunks) * chunk,
                                 len = std::min(chunk, inner - s);
                   sum_rows(y + o * inner + s, x + o * r * inner + s, r, inner, len);
                 }
               });
}

template <typename T>
void max_axis(const T* x, T* y, int64_t* idx, int64_t outer, int64_t r, int64_t inner) {
  parallel_for(0, outer * inner, std::max<int64_t>(1, kGrain / std::max<int64_t>(r, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t it = lo; it < hi; ++it) {
                   const int64_t o = it / inner, i = it % inner;
                   const T* p = x + o * r * inner + i;
                   T best = p[0];
                   int64_t arg = 0;
                   for (int64_t k = 1; k < r && !std::isnan(best); ++k) {
                     const T v = p[k * inner];
                     if (v > best || std::isnan(v)) {
                       best = v;
                       arg = k;
                     }
                   }
                   y[it] = best;
                   idx[it] = arg;
                 }
               });
}

template <typename T>
void scatter_axis(const T* g, const int64_t* idx, T* gx, int64_t outer, int64_t r, int64_t inner) {
  std::memset(gx, 0, sizeof(T) * outer * r * inner);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i)
      gx[(o * r + idx[o * inner + i]) * inner + i] = g[o * inner + i];
}

template <typename T>
void expand_axis(const T* x, T* y, int64_t outer, int64_t r, int64_t inner) {
  parallel_for(0, outer * r, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t it = lo; it < hi; ++it) {
                   const int64_t o = it / r;
                   std::memcpy(y + it * inner, x + o * inner, sizeof(T) * inner);
                 }
               });
}

#define GAZE_INSTANTIATE(T)                                                     \
  template void sum_axis<T>(const T*, T*, int64_t, int64_t, int64_t);           \
  template void max_axis<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t); \
  template void expand_axis<T>(const T*, T*, int64_t, int64_t, int64_t);        \
  template void scatter_axis<T>(const T*, const int64_t*, T*, int64_t, int64_t, int64_t);
GAZE_INSTANTIATE(float)
GAZE_INSTANTIATE(double)
#undef GAZE_INSTANTIATE

}  // namespace gaze::kernels
#endif  // HWY_ONCE
