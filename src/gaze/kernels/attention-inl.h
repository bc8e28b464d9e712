// Per-target building blocks of the fused attention kernels (see simd-inl.h for the Highway
// pattern): a register-tiled matmul on packed operands, packing, the score transform of one row
// (scale, masks, ALiBi, causal and length limits) and dropout by counter.

#if defined(GAZE_KERNELS_ATTENTION_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GAZE_KERNELS_ATTENTION_INL_H_
#undef GAZE_KERNELS_ATTENTION_INL_H_
#else
#define GAZE_KERNELS_ATTENTION_INL_H_
#endif

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "gaze/core/rng.h"
#include "gaze/kernels/attention.h"
#include "gaze/kernels/philox-inl.h"
#include "gaze/kernels/simd-inl.h"
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

// Accumulator budget of the register tile: 24 of the 32 vector registers on AVX-512, 12 of 16 on
// AVX2.
#if HWY_TARGET <= HWY_AVX3
constexpr size_t kMaxAcc = 24;
#else
constexpr size_t kMaxAcc = 12;
#endif
constexpr size_t kMaxNv = 4;

inline size_t RoundUp(size_t n, size_t m) {
  return (n + m - 1) / m * m;
}

// C[MR x NV*L] (+)= sum_k A(r, k) * B[k, :] with A(r, k) = A[r * a_rs + k * a_cs] (any strides, so
// A may be a transposed view) and B packed: rows of ldb elements, NV*L of them used. Each C element
// is one FMA chain over k in order, so its value does not depend on MR, NV or the tile position: a
// row computed alone (decoding) equals the same row computed in a block. With colmax, also
// colmax[0:NV*L) = max(colmax, the tile's column maxima) while the tile is still in registers (the
// softmax's row maxima of a transposed score tile, without a pass over memory). kAUnit names a
// stride of A known to be 1 (kRow: a_rs, kCol: a_cs), so the compiler addresses A from one pointer
// per k or per row instead of multiplying strides in the inner loop.
enum class AUnit { kNone, kRow, kCol };

// Per-row work a product can do while its tile is in registers, instead of a pass of its own over
// memory: the rows of C it accumulates onto multiplied by in[r] as they are loaded (the online
// softmax's rescale), and the result rows written as acc * out_scale[r] to out (rows ldo apart,
// whole vectors: the caller's rows must hold NV*L columns) instead of to C. Each is one rounding,
// as the separate pass made, so the results keep their bits.
template <typename T>
struct RowScaling {
  const T* in = nullptr;
  const T* out_scale = nullptr;
  T* out = nullptr;
  size_t ldo = 0;
  RowScaling at(size_t r0, size_t c0) const {
    return {in ? in + r0 : nullptr, out_scale ? out_scale + r0 : nullptr,
            out ? out + r0 * ldo + c0 : nullptr, ldo};
  }
};

template <size_t MR, size_t NV, AUnit kAUnit, class D, typename T>
HWY_INLINE void Tile(D d, const T* HWY_RESTRICT A, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t K,
                     const T* HWY_RESTRICT B, size_t ldb, T* HWY_RESTRICT C, size_t ldc,
                     bool accumulate, T* HWY_RESTRICT colmax, const RowScaling<T>& rs) {
  if constexpr (kAUnit == AUnit::kRow) a_rs = 1;
  if constexpr (kAUnit == AUnit::kCol) a_cs = 1;
  const size_t L = hn::Lanes(d);
  using V = VecT<D>;
  V acc[MR][NV];
#pragma GCC unroll 8
  for (size_t r = 0; r < MR; ++r) {
    const V in = hn::Set(d, rs.in ? rs.in[r] : T(1));
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) {
      acc[r][v] = accumulate ? hn::LoadU(d, C + r * ldc + v * L) : hn::Zero(d);
      if (rs.in && accumulate) acc[r][v] = hn::Mul(acc[r][v], in);
    }
  }
  for (size_t k = 0; k < K; ++k) {
    V b[NV];
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) b[v] = hn::LoadU(d, B + k * ldb + v * L);
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; ++r) {
      const V av =
          hn::Set(d, A[static_cast<ptrdiff_t>(r) * a_rs + static_cast<ptrdiff_t>(k) * a_cs]);
#pragma GCC unroll 4
      for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(av, b[v], acc[r][v]);
    }
  }
  if (rs.out) {
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; ++r) {
      const V scale = hn::Set(d, rs.out_scale[r]);
#pragma GCC unroll 4
      for (size_t v = 0; v < NV; ++v)
        hn::StoreU(hn::Mul(acc[r][v], scale), d, rs.out + r * rs.ldo + v * L);
    }
  } else {
#pragma GCC unroll 8
    for (size_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (size_t v = 0; v < NV; ++v) hn::StoreU(acc[r][v], d, C + r * ldc + v * L);
  }
  if (colmax) {
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) {
      V mx = hn::LoadU(d, colmax + v * L);
#pragma GCC unroll 8
      for (size_t r = 0; r < MR; ++r) mx = hn::Max(mx, acc[r][v]);
      hn::StoreU(mx, d, colmax + v * L);
    }
  }
}

template <size_t NV, AUnit kAUnit, class D, typename T>
HWY_INLINE void TileRows(D d, size_t mr, const T* A, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t K,
                         const T* B, size_t ldb, T* C, size_t ldc, bool acc, T* colmax,
                         const RowScaling<T>& rs) {
  constexpr size_t kMr = std::min<size_t>(8, kMaxAcc / NV);
  switch (mr) {
#define GAZE_TILE_CASE(n)   \
  case n:                   \
    if constexpr (n <= kMr) \
      return Tile<n, NV, kAUnit>(d, A, a_rs, a_cs, K, B, ldb, C, ldc, acc, colmax, rs);
    GAZE_TILE_CASE(1)
    GAZE_TILE_CASE(2)
    GAZE_TILE_CASE(3)
    GAZE_TILE_CASE(4)
    GAZE_TILE_CASE(5)
    GAZE_TILE_CASE(6)
    GAZE_TILE_CASE(7)
    GAZE_TILE_CASE(8)
#undef GAZE_TILE_CASE
    default:
      break;
  }
}

// C[M x nvec*L] (+)= A[M x K] * B[K x nvec*L], tiled into register blocks. With colmax (nvec*L
// elements, initialised by the caller), also the maximum of each column of C over its M rows;
// with rs, the row scaling described there.
template <AUnit kAUnit, class D, typename T>
void MatmulPackedA(D d, const T* A, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t M, size_t K, const T* B,
                   size_t ldb, size_t nvec, T* C, size_t ldc, bool accumulate, T* colmax,
                   const RowScaling<T>& rs) {
  const size_t L = hn::Lanes(d);
  for (size_t v0 = 0; v0 < nvec; v0 += kMaxNv) {
    const size_t nv = std::min(kMaxNv, nvec - v0);
    const size_t mr_max = std::min<size_t>(8, kMaxAcc / nv);
    for (size_t r0 = 0; r0 < M; r0 += mr_max) {
      const size_t mr = std::min(mr_max, M - r0);
      const T* a = A + static_cast<ptrdiff_t>(r0) * a_rs;
      T* c = C + r0 * ldc + v0 * L;
      const T* b = B + v0 * L;
      T* cm = colmax ? colmax + v0 * L : nullptr;
      const RowScaling<T> rt = rs.at(r0, v0 * L);
      switch (nv) {
        case 1:
          TileRows<1, kAUnit>(d, mr, a, a_rs, a_cs, K, b, ldb, c, ldc, accumulate, cm, rt);
          break;
        case 2:
          TileRows<2, kAUnit>(d, mr, a, a_rs, a_cs, K, b, ldb, c, ldc, accumulate, cm, rt);
          break;
        case 3:
          TileRows<3, kAUnit>(d, mr, a, a_rs, a_cs, K, b, ldb, c, ldc, accumulate, cm, rt);
          break;
        default:
          TileRows<4, kAUnit>(d, mr, a, a_rs, a_cs, K, b, ldb, c, ldc, accumulate, cm, rt);
          break;
      }
    }
  }
}

template <class D, typename T>
void MatmulPacked(D d, const T* A, ptrdiff_t a_rs, ptrdiff_t a_cs, size_t M, size_t K, const T* B,
                  size_t ldb, size_t nvec, T* C, size_t ldc, bool accumulate, T* colmax = nullptr,
                  const RowScaling<T>& rs = {}) {
  if (a_rs == 1)
    MatmulPackedA<AUnit::kRow>(d, A, a_rs, a_cs, M, K, B, ldb, nvec, C, ldc, accumulate, colmax,
                               rs);
  else if (a_cs == 1)
    MatmulPackedA<AUnit::kCol>(d, A, a_rs, a_cs, M, K, B, ldb, nvec, C, ldc, accumulate, colmax,
                               rs);
  else
    MatmulPackedA<AUnit::kNone>(d, A, a_rs, a_cs, M, K, B, ldb, nvec, C, ldc, accumulate, colmax,
                                rs);
}

// dst[r, 0:ld) = src[r * stride + 0:cols), zero padded to ld.
template <typename T>
void PackRows(const T* src, int64_t stride, size_t rows, size_t cols, T* dst, size_t ld) {
  for (size_t r = 0; r < rows; ++r) {
    std::memcpy(dst + r * ld, src + static_cast<int64_t>(r) * stride, cols * sizeof(T));
    std::fill(dst + r * ld + cols, dst + (r + 1) * ld, T(0));
  }
}

// Asks for every cache line of rows [0, rows) x columns [0, cols) at once. Operands of attention
// usually come from L3 or memory, and their lines then arrive together instead of one row at a
// time.
template <typename T>
void PrefetchRows(const T* src, int64_t stride, size_t rows, size_t cols) {
  constexpr size_t kLine = 64 / sizeof(T);
  for (size_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < cols; c += kLine)
      hwy::Prefetch(src + static_cast<int64_t>(r) * stride + c);
}

// dst[c, r] = src[r * stride + c] for r < rows, c < cols; columns rows..ld of dst are zero. Whole
// L x L blocks are transposed in registers: log2(L) rounds of ConcatEven/ConcatOdd, each of which
// rotates the bits of the (row, lane) index by one, so after log2(L) rounds row and lane have
// swapped. The edges go element by element.
template <class D, typename T>
void PackTransposed(D d, const T* src, int64_t stride, size_t rows, size_t cols, T* dst,
                    size_t ld) {
  // The first rows at once; each block of rows asks for the block after next as it starts (the
  // backward packs a whole sequence, which would not stay in cache).
  constexpr size_t kAhead = 64;
  PrefetchRows(src, stride, std::min(rows, kAhead), cols);
  if (rows < ld)
    for (size_t c = 0; c < cols; ++c) std::fill(dst + c * ld + rows, dst + (c + 1) * ld, T(0));
#if HWY_TARGET == HWY_SCALAR || HWY_HAVE_SCALABLE  // one lane, or no arrays of vectors
  const size_t rfull = 0, cfull = 0;
#else
  // Lanes known at compile time (the x86 targets), so the rounds unroll into registers.
  constexpr size_t kL = hn::MaxLanes(D());
  const bool blocks = kL >= 2 && kL <= 16 && hn::Lanes(d) == kL;
  const size_t rfull = blocks ? rows / kL * kL : 0, cfull = blocks ? cols / kL * kL : 0;
  using V = VecT<D>;
  for (size_t r0 = 0; r0 < rfull; r0 += kL) {
    if (r0 + kAhead < rows)
      PrefetchRows(src + static_cast<int64_t>(r0 + kAhead) * stride, stride,
                   std::min(kL, rows - r0 - kAhead), cols);
    for (size_t c0 = 0; c0 < cfull; c0 += kL) {
      V v[kL], t[kL];
#pragma GCC unroll 16
      for (size_t i = 0; i < kL; ++i)
        v[i] = hn::LoadU(d, src + static_cast<int64_t>(r0 + i) * stride + c0);
#pragma GCC unroll 4
      for (size_t round = 1; round < kL; round *= 2) {
#pragma GCC unroll 8
        for (size_t i = 0; i < kL / 2; ++i) {
          t[i] = hn::ConcatEven(d, v[2 * i + 1], v[2 * i]);
          t[i + kL / 2] = hn::ConcatOdd(d, v[2 * i + 1], v[2 * i]);
        }
#pragma GCC unroll 16
        for (size_t i = 0; i < kL; ++i) v[i] = t[i];
      }
#pragma GCC unroll 16
      for (size_t i = 0; i < kL; ++i) hn::StoreU(v[i], d, dst + (c0 + i) * ld + r0);
    }
  }
#endif
  // The right edge of the whole row blocks, then the rows below them.
  for (size_t c = cfull; c < cols; ++c)
    for (size_t r = 0; r < rfull; ++r) dst[c * ld + r] = src[static_cast<int64_t>(r) * stride + c];
  for (size_t c = 0; c < cols; ++c)
    for (size_t r = rfull; r < rows; ++r)
      dst[c * ld + r] = src[static_cast<int64_t>(r) * stride + c];
}

// e^x for x <= 0 (scores minus a row maximum): -inf gives 0 and NaN stays NaN (Highway's Exp alone
// would turn NaN into 0 and hide a NaN in the inputs).
template <class D>
HWY_INLINE VecT<D> ExpNonPositive(D d, VecT<D> x) {
  using T = hn::TFromD<D>;
  const auto y = hn::Exp(d, hn::Max(x, hn::Set(d, std::numeric_limits<T>::lowest())));
  return hn::IfThenElse(hn::IsNaN(x), x, y);
}

// The softmax exponent, evaluated in the unit that is cheapest per type: float32 works in base 2
// (the caller folds log2(e) into its one FMA, and 2^t needs a 6th-degree polynomial on [-1/2, 1/2]
// plus an exponent add, max relative error 1e-7); float64 keeps the accurate e^x (it serves
// gradient checks).
template <typename T>
constexpr T kExpUnit = sizeof(T) == 4 ? T(1.4426950408889634) : T(1);

template <class D>
HWY_INLINE VecT<D> SoftmaxExp(D d, VecT<D> t) {
  using T = hn::TFromD<D>;
  if constexpr (sizeof(T) == 8) {
    return ExpNonPositive(d, t);
  } else {
#if HWY_TARGET <= HWY_AVX3 && !HWY_HAVE_SCALABLE
    if constexpr (hn::MaxLanes(D()) == 16) {
      // AVX-512: the same polynomial with vscalefps applying 2^q, which also rounds 2^-150 (where
      // -inf and anything below clamp) to exactly 0. Max(lo, t) returns t when t is NaN (the
      // second operand), so NaN passes through: 10 operations instead of 17.
      const auto tc = hn::Max(hn::Set(d, -150.0f), t);
      const auto q = hn::Round(tc);
      const auto p = Exp2Fraction(d, hn::Sub(tc, q));
      return VecT<D>{_mm512_scalef_ps(p.raw, q.raw)};
    }
#endif
    const auto lo =
        hn::Set(d, -125.0f);  // below 2^-125 the result is 0 (stays in the normal range)
    const auto y = hn::IfThenZeroElse(hn::Lt(t, lo), Exp2Poly(d, hn::Max(t, lo)));
    return hn::IfThenElse(hn::IsNaN(t), t, y);
  }
}

// Whether the scores get additive terms (ALiBi, a float mask) or a scale that is not positive. Then
// a score row is rewritten as s * scale + bias before the softmax; otherwise the raw dot products
// are kept (masking only writes -inf) and the scale is folded into the exponent. The choice depends
// on the call, never on the block, so a query's arithmetic is the same whichever block it falls in.
template <typename T>
bool AdditiveScores(const AttentionArgs<T>& a) {
  return a.alibi_slopes || (a.mask.data && !a.mask.is_bool) || !(a.scale > 0);
}

// Whether block (queries [i0, i0 + rows), keys [j0, j0 + bc)) needs PrepareKeyRow at all.
template <typename T>
bool BlockNeedsRowPass(const AttentionArgs<T>& a, int64_t i0, int64_t rows, int64_t j0,
                       int64_t bc) {
  if (AdditiveScores(a) || a.mask.data || a.key_padding || a.key_lengths) return true;
  if (a.window >= 0) {  // unless every (query, key) pair of the block lies inside the band
    const int64_t last = i0 + rows - 1 + a.query_offset;
    if (last - j0 > a.window || j0 + bc - 1 - (i0 + a.query_offset) > a.window) return true;
  }
  return a.causal &&
         j0 + bc - 1 > i0 + a.query_offset;  // the first query cannot see the whole block
}

// Prepares row j of a score tile (key j against queries i0..): masked entries become -inf (boolean
// masks, key padding and lengths, causal limit) and, for AdditiveScores calls, the rest become
// s * scale + bias (ALiBi, float mask).
template <class D, typename T>
void PrepareKeyRow(D d, const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t j, int64_t i0,
                   size_t brp, T* st) {
  const size_t L = hn::Lanes(d);
  const T ninf = -std::numeric_limits<T>::infinity();
  const bool key_hidden =
      (a.key_lengths && j >= a.key_lengths[b]) || (a.key_padding && a.key_padding[b * a.Tk + j]);
  if (key_hidden) {
    std::fill(st, st + brp, ninf);
    return;
  }
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(brp), a.Tq - i0);
  if (AdditiveScores(a)) {
    using V = VecT<D>;
    const V vscale = hn::Set(d, static_cast<T>(a.scale));
    if (a.alibi_slopes) {  // -slope * |(i + offset) - j|, one query per lane
      const V slope = hn::Set(d, a.alibi_slopes[h]);
      V pos = hn::Add(hn::Iota(d, T(0)), hn::Set(d, static_cast<T>(i0 + a.query_offset - j)));
      const V step = hn::Set(d, static_cast<T>(L));
      for (size_t c = 0; c < brp; c += L, pos = hn::Add(pos, step))
        hn::StoreU(hn::NegMulAdd(slope, hn::Abs(pos), hn::Mul(hn::LoadU(d, st + c), vscale)), d,
                   st + c);
    } else {
      for (size_t c = 0; c < brp; c += L)
        hn::StoreU(hn::Mul(hn::LoadU(d, st + c), vscale), d, st + c);
    }
  }
  if (a.mask.data) {  // element (i, j) sits at stride mask.q along the queries
    const ScoreMask& m = a.mask;
    const int64_t base = b * m.b + h * m.h + i0 * m.q + j * m.k;
    if (m.is_bool) {
      const bool* mb = static_cast<const bool*>(m.data) + base;
      for (int64_t c = 0; c < n; ++c)
        if (!mb[c * m.q]) st[c] = ninf;
    } else {
      const T* mf = static_cast<const T*>(m.data) + base;
      for (int64_t c = 0; c < n; ++c) st[c] += mf[c * m.q];
    }
  }
  if (a.causal) {  // queries i < j - offset cannot see key j: a prefix of the lanes
    const int64_t first =
        std::clamp<int64_t>(j - a.query_offset - i0, 0, static_cast<int64_t>(brp));
    std::fill(st, st + first, ninf);
  }
  if (a.window >= 0) {  // queries farther than the window from key j: a prefix and a suffix
    const int64_t lo = std::clamp<int64_t>(j - a.window - a.query_offset - i0, 0,
                                           static_cast<int64_t>(brp)),
                  hi = std::clamp<int64_t>(j + a.window - a.query_offset - i0 + 1, 0,
                                           static_cast<int64_t>(brp));
    std::fill(st, st + lo, ninf);
    std::fill(st + hi, st + brp, ninf);
  }
}

// The coefficients turning a prepared score s into the exponent t = s * sk - m * mk of SoftmaxExp,
// given a row maximum m in natural (scaled) units.
template <typename T>
struct ExpArgs {
  T sk, mk;
};
template <typename T>
ExpArgs<T> exp_args(const AttentionArgs<T>& a) {
  const T scale = AdditiveScores(a) ? T(1) : static_cast<T>(a.scale);
  return {scale * kExpUnit<T>, kExpUnit<T>};
}

// Dropout counters are laid out key-major, ((b*H + h)*Tk + j)*Tq + i, so the queries of one key row
// share Philox blocks. st[0:n) (queries i0..) *= keep / (1 - p).
template <typename T>
void DropoutKeyRow(const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t j, int64_t i0,
                   int64_t n, T* st) {
  constexpr int64_t kChunk = 256;
  const T scale = static_cast<T>(1.0 / (1.0 - a.dropout_p));
  const uint32_t threshold = DropThreshold(a.dropout_p);
  const uint64_t base = static_cast<uint64_t>(((b * a.H + h) * a.Tk + j) * a.Tq + i0);
  HWY_ALIGN uint32_t buf[kChunk + 8];
  for (int64_t c = 0; c < n; c += kChunk) {
    const int64_t m = std::min(kChunk, n - c);
    const uint32_t* w = PhiloxRange(a.dropout.seed, a.dropout.stream, a.dropout.first_block,
                                    base + static_cast<uint64_t>(c), m, buf);
    ApplyDropout(st + c, st + c, w, m, threshold, scale);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#endif  // GAZE_KERNELS_ATTENTION_INL_H_
