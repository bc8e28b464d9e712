#include "peak.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/peak.cpp"
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace gaze::bench {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Twelve independent accumulator chains hide the FMA latency on two FMA pipes; returns the number
// of flops done (2 per lane per FMA) and a value that keeps the loop from being optimised away.
double FmaLoop(size_t iters, float* sink) {
  const hn::ScalableTag<float> d;
  auto a0 = hn::Set(d, 0.1f), a1 = hn::Set(d, 0.2f), a2 = hn::Set(d, 0.3f), a3 = hn::Set(d, 0.4f);
  auto a4 = hn::Set(d, 0.5f), a5 = hn::Set(d, 0.6f), a6 = hn::Set(d, 0.7f), a7 = hn::Set(d, 0.8f);
  auto a8 = hn::Set(d, 0.9f), a9 = hn::Set(d, 1.0f), a10 = hn::Set(d, 1.1f), a11 = hn::Set(d, 1.2f);
  const auto b = hn::Set(d, 0.99999f), c = hn::Set(d, 1e-7f);
  for (size_t i = 0; i < iters; ++i) {
    a0 = hn::MulAdd(a0, b, c);
    a1 = hn::MulAdd(a1, b, c);
    a2 = hn::MulAdd(a2, b, c);
    a3 = hn::MulAdd(a3, b, c);
    a4 = hn::MulAdd(a4, b, c);
    a5 = hn::MulAdd(a5, b, c);
    a6 = hn::MulAdd(a6, b, c);
    a7 = hn::MulAdd(a7, b, c);
    a8 = hn::MulAdd(a8, b, c);
    a9 = hn::MulAdd(a9, b, c);
    a10 = hn::MulAdd(a10, b, c);
    a11 = hn::MulAdd(a11, b, c);
  }
  auto s =
      hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::Add(hn::Add(a4, a5), hn::Add(a6, a7)));
  s = hn::Add(s, hn::Add(hn::Add(a8, a9), hn::Add(a10, a11)));
  *sink = hn::GetLane(hn::SumOfLanes(d, s));
  return static_cast<double>(iters) * 12 * hn::Lanes(d) * 2;
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::bench
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <omp.h>

#include <chrono>

namespace gaze::bench {
HWY_EXPORT(FmaLoop);

double measure_fma_peak_gflops(int threads) {
  double total = 0;
#pragma omp parallel num_threads(threads) reduction(+ : total)
  {
    float sink = 0;
    double best = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      const double flops = HWY_DYNAMIC_DISPATCH(FmaLoop)(20'000'000, &sink);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, flops / s * 1e-9);
    }
    total += best + (sink == 12345.f ? 1e-12 : 0.0);
  }
  return total;
}
}  // namespace gaze::bench
#endif
