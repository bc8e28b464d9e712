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

// Elements [lo, hi) of the stream, lo a multiple of 4.
template <typename T>
void DropoutRange(const T* x, T* y, int64_t lo, int64_t hi, double p, const DropoutStream& rs) {
  const T scale = p < 1.0 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  const uint32_t threshold = DropThreshold(p);
  HWY_ALIGN uint32_t words[kChunk + 8];
  for (int64_t c = lo; c < hi; c += kChunk) {
    const int64_t n = std::min(kChunk, hi - c);
    PhiloxWords(rs.seed, rs.stream, rs.first_block + static_cast<uint64_t>(c / 4), (n + 3) / 4,
                words);
    ApplyDropout(x + c, y + c, words, n, threshold, scale);
  }
}

void DropoutF32(const float* x, float* y, int64_t lo, int64_t hi, double p,
                const DropoutStream& rs) {
  DropoutRange(x, y, lo, hi, p, rs);
}
void DropoutF64(const double* x, double* y, int64_t lo, int64_t hi, double p,
                const DropoutStream& rs) {
  DropoutRange(x, y, lo, hi, p, rs);
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
HWY_EXPORT(PhiloxWordsExport);

void philox_words(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t n_blocks,
                  uint32_t* out) {
  HWY_DYNAMIC_DISPATCH(PhiloxWordsExport)(seed, stream, first_block, n_blocks, out);
}

template <typename T>
void dropout(const T* x, T* y, int64_t n, double p, const DropoutStream& rs) {
  auto f = pick<T>(HWY_DYNAMIC_DISPATCH(DropoutF32), HWY_DYNAMIC_DISPATCH(DropoutF64));
  // Work in whole chunks of 4 elements so every range starts on a Philox block.
  parallel_for(0, (n + 3) / 4, 4096,
               [&](int64_t lo, int64_t hi) { f(x, y, 4 * lo, std::min(n, 4 * hi), p, rs); });
}

template void dropout<float>(const float*, float*, int64_t, double, const DropoutStream&);
template void dropout<double>(const double*, double*, int64_t, double, const DropoutStream&);

}  // namespace gaze::kernels
#endif  // HWY_ONCE
