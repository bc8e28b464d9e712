// Helpers shared by the two bf16 attention kernels (attention_bf16.cpp on AVX512-BF16,
// attention_amx.cpp on AMX tiles): conversions to bf16 pairs, the base-2 exponential, masks.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "gaze/kernels/attention.h"

// GCC 12 warns that the "undefined" source vector of its own AVX-512 intrinsics is uninitialised.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// AVX512-BF16 code is enabled function by function: the rest of the including file, and every
// inline function it shares with others, stays at the baseline ISA. Called only after the CPU
// check.
#define GAZE_BF16 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512bf16,fma")))

namespace gaze::kernels::bf16_detail {

constexpr int64_t kRows = 64;  // queries per task: four vectors of 16 lanes
constexpr int64_t kKeys = 64;  // keys per block
constexpr int64_t kMaxDim = 256;
constexpr float kLog2e = 1.4426950408889634f;

inline int64_t round_up(int64_t n, int64_t m) {
  return (n + m - 1) / m * m;
}

GAZE_BF16 inline __m512bh as_bh(__m512i x) {
  return (__m512bh)x;
}
GAZE_BF16 inline __m512i as_i(__m512bh x) {
  return (__m512i)x;
}

GAZE_BF16 inline __mmask16 first_n(int64_t n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << std::max<int64_t>(n, 0)) - 1);
}

// 2^x for x <= 0: 2^round(x) (vscalefps, which also rounds 2^-150, where -inf and anything below
// clamp, to exactly 0) times a degree-4 polynomial of the fraction. Its relative error, 3e-6, is
// far below the bf16 rounding the probabilities get (4e-3); degree 6 cost two more operations on
// each of the Tq x Tk scores. Max(lo, x) returns x when x is NaN, so a NaN score stays NaN, as in
// the fp32 kernel.
GAZE_BF16 inline __m512 Exp2(__m512 x) {
  const __m512 xc = _mm512_max_ps(_mm512_set1_ps(-150.0f), x);
  const __m512 n = _mm512_roundscale_ps(xc, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 f = _mm512_sub_ps(xc, n);
  __m512 p = _mm512_set1_ps(9.58334095776081e-3f);
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5906377732753754e-2f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.2402408868074417f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.6931241750717163f));
  p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// n floats of x times s, rounded to bf16 (nearest even) in order: ceil(n / 2) pairs (an odd last
// value pairs with 0).
GAZE_BF16 inline void RowToBf16(const float* x, int64_t n, float s, uint32_t* dst) {
  const __m512 vs = _mm512_set1_ps(s);
  for (int64_t i = 0; i < n; i += 32) {
    const int64_t r = n - i;
    const __m512 lo = _mm512_mul_ps(_mm512_maskz_loadu_ps(first_n(r), x + i), vs);
    const __m512 hi = _mm512_mul_ps(_mm512_maskz_loadu_ps(first_n(r - 16), x + i + 16), vs);
    _mm512_mask_storeu_epi32(dst + i / 2, first_n((std::min<int64_t>(r, 32) + 1) / 2),
                             as_i(_mm512_cvtne2ps_pbh(hi, lo)));
  }
}

// 16 pairs (a[i], b[i]) from the bf16 halves of cvtne2ps_pbh(b, a): a in lanes 0-15, b in 16-31.
GAZE_BF16 inline __m512i Interleave(__m512bh ab) {
  const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                       23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(idx, as_i(ab));
}

// Value rows [0, bc) (row stride ld) as key pairs: vp[j2 * dvp + c] = (v[2 j2][c], v[2 j2 + 1][c]),
// zero beyond bc and beyond Dv.
GAZE_BF16 inline void PackValues(const float* v, int64_t ld, int64_t bc, int64_t Dv, int64_t dvp,
                                 uint32_t* vp) {
  for (int64_t j2 = 0; j2 < (bc + 1) / 2; ++j2) {
    const float* even = v + 2 * j2 * ld;
    const bool has_odd = 2 * j2 + 1 < bc;
    for (int64_t c = 0; c < dvp; c += 16) {
      const __mmask16 mk = first_n(Dv - c);
      const __m512 e = _mm512_maskz_loadu_ps(mk, even + c);
      const __m512 o = has_odd ? _mm512_maskz_loadu_ps(mk, even + ld + c) : _mm512_setzero_ps();
      _mm512_storeu_si512(vp + j2 * dvp + c, Interleave(_mm512_cvtne2ps_pbh(o, e)));
    }
  }
}

// The end of the keys any query of [i0, i1) in batch b may see: the key length, the causal limit
// of the block's last query.
inline int64_t VisibleKeyEnd(const AttentionArgs<float>& a, int64_t b, int64_t i1) {
  int64_t kend = a.Tk;
  if (a.key_lengths) kend = std::min(kend, a.key_lengths[b]);
  if (a.causal) kend = std::min(kend, i1 - 1 + a.query_offset + 1);
  return kend;
}

// Queries [i0, i0 + rows) of head h in batch b: output row r = o[r] (row stride dvp) / l[r].
// none_seen: no key block ran, so every row is 0. The reciprocals are taken 16 rows at a time: one
// division per row was 4 % of the kernel at 128 tokens.
GAZE_BF16 inline void StoreRows(const AttentionArgs<float>& a, int64_t b, int64_t h, int64_t i0,
                                int64_t rows, const float* o, int64_t dvp, const float* l,
                                bool none_seen, float* out, const HeadLayout& ol) {
  alignas(64) float inv[16];
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t n = std::min<int64_t>(16, rows - r0);
    const __m512 lr = _mm512_maskz_loadu_ps(first_n(none_seen ? 0 : n), l + r0);
    // No visible key (l = 0): 0, not 0/0.
    const __mmask16 pos = _mm512_cmp_ps_mask(lr, _mm512_setzero_ps(), _CMP_GT_OQ);
    _mm512_store_ps(inv, _mm512_maskz_div_ps(pos, _mm512_set1_ps(1.0f), lr));
    for (int64_t r = r0; r < r0 + n; ++r) {
      const __m512 vinv = _mm512_set1_ps(inv[r - r0]);
      float* dst = out + b * ol.b + h * ol.h + (i0 + r) * ol.t;
      for (int64_t c = 0; c < a.Dv; c += 16)
        _mm512_mask_storeu_ps(dst + c, first_n(a.Dv - c),
                              none_seen ? _mm512_setzero_ps()
                                        : _mm512_mul_ps(_mm512_loadu_ps(o + r * dvp + c), vinv));
    }
  }
}

}  // namespace gaze::kernels::bf16_detail
