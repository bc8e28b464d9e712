#include "gaze/kernels/dropout.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/dropout.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/philox-inl.h"
// clang-format on

#include "gaze/core/threads.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

constexpr int64_t kChunk = 2048;  // elements per Philox batch (8 KiB of words, stays in L1)

template <typename T>
T KeepScale(double p) {
  return p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
}

// Elements [lo, hi) of the stream, lo a multiple of 8 (whole Philox blocks, whole mask bytes).
template <typename T>
void DropoutRange(const T* x, T* y, int64_t lo, int64_t hi, double p, const DropoutStream& rs,
                  uint8_t* keep) {
  const T scale = KeepScale<T>(p);
  const uint32_t threshold = DropThreshold(p);
  HWY_ALIGN uint32_t words[kChunk + 8];
  for (int64_t c = lo; c < hi; c += kChunk) {
    const int64_t n = std::min(kChunk, hi - c);
    PhiloxWords(rs.seed, rs.stream, rs.first_block + static_cast<uint64_t>(c / 4), (n + 3) / 4,
                words);
    ApplyDropout(x + c, y + c, words, n, threshold, scale, keep ? keep + c / 8 : nullptr);
  }
}

// gx[i] = gy[i] * (bit i ? scale : 0) for i in [lo, hi), lo a multiple of 8.
template <typename T>
void MaskedRange(const T* gy, T* gx, int64_t lo, int64_t hi, double p, const uint8_t* keep) {
  const T scale = KeepScale<T>(p);
  int64_t i = lo;
#if HWY_TARGET != HWY_SCALAR
  const hn::ScalableTag<T> d;
  const auto N = static_cast<int64_t>(hn::Lanes(d));
  const auto vscale = hn::Set(d, scale);
  if (N % 8 == 0)
    for (; i + N <= hi; i += N) {
      const auto kept = hn::LoadMaskBits(d, keep + i / 8);
      hn::StoreU(hn::Mul(hn::LoadU(d, gy + i), hn::IfThenElseZero(kept, vscale)), d, gx + i);
    }
#endif
  for (; i < hi; ++i) gx[i] = gy[i] * (scale * static_cast<T>((keep[i / 8] >> (i % 8)) & 1));
}

void DropoutF32(const float* x, float* y, int64_t lo, int64_t hi, double p, const DropoutStream& rs,
                uint8_t* keep) {
  DropoutRange(x, y, lo, hi, p, rs, keep);
}
void DropoutF64(const double* x, double* y, int64_t lo, int64_t hi, double p,
                const DropoutStream& rs, uint8_t* keep) {
  DropoutRange(x, y, lo, hi, p, rs, keep);
}
void MaskedF32(const float* gy, float* gx, int64_t lo, int64_t hi, double p, const uint8_t* keep) {
  MaskedRange(gy, gx, lo, hi, p, keep);
}
void MaskedF64(const double* gy, double* gx, int64_t lo, int64_t hi, double p,
               const uint8_t* keep) {
  MaskedRange(gy, gx, lo, hi, p, keep);
}

void PhiloxWordsExport(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t n_blocks,
                       uint32_t* out) {
  PhiloxWords(seed, stream, first_block, n_blocks, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "gaze/kernels/dispatch.h"

namespace gaze::kernels {

HWY_EXPORT(DropoutF32);
HWY_EXPORT(DropoutF64);
HWY_EXPORT(MaskedF32);
HWY_EXPORT(MaskedF64);
HWY_EXPORT(PhiloxWordsExport);

void philox_words(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t n_blocks,
                  uint32_t* out) {
  HWY_DYNAMIC_DISPATCH(PhiloxWordsExport)(seed, stream, first_block, n_blocks, out);
}

// Work in whole units of 8 elements so every range starts on a Philox block and a mask byte.
template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, const DropoutStream& rs, uint8_t* keep) {
  auto f = pick<T>(HWY_DYNAMIC_DISPATCH(DropoutF32), HWY_DYNAMIC_DISPATCH(DropoutF64));
  parallel_for(0, (n + 7) / 8, 2048,
               [&](int64_t lo, int64_t hi) { f(x, y, 8 * lo, std::min(n, 8 * hi), p, rs, keep); });
}

template <typename T>
void dropout_masked(const T* gy, T* gx, int64_t n, double p, const uint8_t* keep) {
  auto f = pick<T>(HWY_DYNAMIC_DISPATCH(MaskedF32), HWY_DYNAMIC_DISPATCH(MaskedF64));
  parallel_for(0, (n + 7) / 8, 2048,
               [&](int64_t lo, int64_t hi) { f(gy, gx, 8 * lo, std::min(n, 8 * hi), p, keep); });
}

template void dropout<float>(const float*, float*, int64_t, double, const DropoutStream&, uint8_t*);
template void dropout<double>(const double*, double*, int64_t, double, const DropoutStream&,
                              uint8_t*);
template void dropout_masked<float>(const float*, float*, int64_t, double, const uint8_t*);
template void dropout_masked<double>(const double*, double*, int64_t, double, const uint8_t*);

}  // namespace gaze::kernels
#endif  // HWY_ONCE
