// Fused attention forward (FlashAttention-2): each task owns a block of query rows of one (batch,
// head), walks the key/value blocks it can see with an online softmax (running max m and sum l per
// row) and keeps only a [rows x Dv] accumulator: the Tq x Tk scores never exist in memory.
// Also: the explicit probabilities for the heads a caller asks for.
#include "gaze/kernels/attention.h"

#include <cstring>
#include <type_traits>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/attention_forward.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/attention-inl.h"
// clang-format on

#include "gaze/core/threads.h"
#include "gaze/kernels/scratch.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

// Queries per task (one per SIMD lane across a few vectors) and keys per block: the working set
// (Q^T, the score tile, the output accumulator) stays in L1/L2.
constexpr int64_t kFwdRows = 64, kFwdKeys = 128;
// Calls with at most this many queries (decoding: one per step) take each query on its own
// (ForwardQuery): the tile puts the queries on the SIMD lanes, which one query fills to 1/16th.
constexpr int64_t kFewRows = 4;

template <typename T>
struct FwdBuffers {
  FwdBuffers(size_t D, size_t brp, size_t dvp)
      : qt(D * brp),
        vp(kFwdKeys * dvp),
        st(kFwdKeys * brp),
        o(brp * dvp),
        m(brp),
        l(brp),
        alpha(brp),
        mx(brp),
        inv(brp) {}
  Scratch<T> qt, vp, st, o, m, l, alpha, mx, inv;
};

// Whether ForwardQuery serves the call: few queries whose visible keys are one range (lengths,
// causal limit, window). Masks, ALiBi, dropout and scales that are not positive take the tiled
// path; calls with kv_rows always come here (the operator leaves them no mask, ALiBi or dropout).
template <typename T>
bool QueryPathServes(const AttentionArgs<T>& a) {
  return a.kv_rows || a.kv_bf16 ||
         (a.Tq <= kFewRows && !AdditiveScores(a) && !a.mask.data && !a.key_padding &&
          a.dropout_p == 0);
}

// A vector of keys or values: as stored, or widened from bfloat16 bit patterns (KV = uint16_t,
// float only: a bf16 value is the high half of a float's bits).
template <class D>
HWY_INLINE VecT<D> LoadKV(D d, const hn::TFromD<D>* p) {
  return hn::LoadU(d, p);
}
template <class D>
HWY_INLINE VecT<D> LoadKV(D d, const uint16_t* p) {
  const hn::RebindToUnsigned<D> du;
  const hn::Rebind<uint16_t, D> d16;
  return hn::BitCast(d, hn::ShiftLeft<16>(hn::PromoteTo(du, hn::LoadU(d16, p))));
}
template <typename T>
HWY_INLINE T ScalarKV(T x) {
  return x;
}
HWY_INLINE float ScalarKV(uint16_t x) {
  const uint32_t bits = static_cast<uint32_t>(x) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// q . k over n elements: whole vectors into one accumulator, then the tail.
template <class D, typename T, typename KV>
HWY_INLINE VecT<D> DotVectors(D d, const T* q, const KV* k, size_t whole, VecT<D> acc) {
  for (size_t c = 0; c < whole; c += hn::Lanes(d))
    acc = hn::MulAdd(hn::LoadU(d, q + c), LoadKV(d, k + c), acc);
  return acc;
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// Lane k of the result: the sum of acc[k]'s lanes, for 512-bit float vectors (four blocks of four
// lanes). A tree that transposes as it adds: two rounds within 128-bit blocks, one across them.
template <class D>
HWY_INLINE VecT<D> TransposeSum16(D d, const VecT<D>* acc) {
  using V = VecT<D>;
  const hn::Repartition<double, D> d64;
  // Keys 2i, 2i+1 -> per block (a0+a2, b0+b2, a1+a3, b1+b3).
  V x[8];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)
    x[i] = hn::Add(hn::InterleaveLower(d, acc[2 * i], acc[2 * i + 1]),
                   hn::InterleaveUpper(d, acc[2 * i], acc[2 * i + 1]));
  // Keys 4g..4g+3 -> per block each key's sum over that block's four lanes.
  V z[4];
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {
    const auto lo = hn::BitCast(d64, x[2 * g]), hi = hn::BitCast(d64, x[2 * g + 1]);
    z[g] = hn::Add(hn::BitCast(d, hn::InterleaveLower(d64, lo, hi)),
                   hn::BitCast(d, hn::InterleaveUpper(d64, lo, hi)));
  }
  // Across the blocks: [z0 | z2] and [z1 | z3] halves summed, then the two blocks of each half.
  const V p02 = hn::Add(hn::ConcatLowerLower(d, z[2], z[0]), hn::ConcatUpperUpper(d, z[2], z[0]));
  const V p13 = hn::Add(hn::ConcatLowerLower(d, z[3], z[1]), hn::ConcatUpperUpper(d, z[3], z[1]));
  return hn::Add(hn::OddEvenBlocks(p13, p02),
                 hn::OddEvenBlocks(hn::SwapAdjacentBlocks(p13), hn::SwapAdjacentBlocks(p02)));
}

// The dot products of q (dw floats, whole vectors) with 16 keys as one vector, lane k for key k.
// A decoding step takes one query at a time, and a horizontal sum per key, scalar stores and a
// scalar max after them were most of its attention.
template <class D, typename KV, class KeyRow>
HWY_INLINE VecT<D> Dot16(D d, const float* q, size_t dw, const KeyRow& key) {
  using V = VecT<D>;
  const KV* rows[16];
  V acc[16];
#pragma GCC unroll 16
  for (int k = 0; k < 16; ++k) rows[k] = key(k), acc[k] = hn::Zero(d);
  for (size_t c = 0; c < dw; c += 16) {
    const V qv = hn::LoadU(d, q + c);
#pragma GCC unroll 16
    for (int k = 0; k < 16; ++k) acc[k] = hn::MulAdd(qv, LoadKV(d, rows[k] + c), acc[k]);
  }
  return TransposeSum16(d, acc);
}
#endif

// The log-sum-exp of rows with running maxima m and sums l: m + ln l where a row saw a key (l > 0);
// -inf where it saw none (l = 0); NaN stays NaN. One vector at a time: a scalar logf per query was
// 3 % of the forward at T = 128. ForwardQuery takes the same function on one lane, so a row's lse
// does not depend on the path.
template <class D>
HWY_INLINE VecT<D> RowLse(D d, VecT<D> m, VecT<D> l) {
  using T = hn::TFromD<D>;
  const auto pos = hn::Gt(l, hn::Zero(d));
  const auto lse = hn::Add(m, LogSafe(d, hn::IfThenElse(pos, l, hn::Set(d, T(1)))));
  const auto none =
      hn::IfThenElse(hn::IsNaN(l), l, hn::Set(d, -std::numeric_limits<T>::infinity()));
  return hn::IfThenElse(pos, lse, none);
}

// o[c0, c0 + NV L) = o alpha (nothing on the first block) + sum_j p_j v_j[c0, ...) over the
// block's keys, even and odd keys in separate accumulators. NV is a template argument so that the
// accumulators stay in registers.
template <size_t NV, class D, typename T, class ValueRow>
HWY_INLINE void AccumulateValues(D d, const T* p, int64_t j0, int64_t bc, size_t c0,
                                 const ValueRow& value, T* o, bool first, T alpha) {
  using V = VecT<D>;
  const size_t L = hn::Lanes(d);
  V e[NV], f[NV];
#pragma GCC unroll 4
  for (size_t v = 0; v < NV; ++v) e[v] = f[v] = hn::Zero(d);
  int64_t j = 0;
  for (; j + 2 <= bc; j += 2) {
    const auto *v0 = value(j0 + j) + c0, *v1 = value(j0 + j + 1) + c0;
    const V p0 = hn::Set(d, p[j]), p1 = hn::Set(d, p[j + 1]);
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) {
      e[v] = hn::MulAdd(p0, LoadKV(d, v0 + v * L), e[v]);
      f[v] = hn::MulAdd(p1, LoadKV(d, v1 + v * L), f[v]);
    }
  }
  if (j < bc) {
    const auto* v0 = value(j0 + j) + c0;
    const V p0 = hn::Set(d, p[j]);
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) e[v] = hn::MulAdd(p0, LoadKV(d, v0 + v * L), e[v]);
  }
#pragma GCC unroll 4
  for (size_t v = 0; v < NV; ++v) {
    const V sum = hn::Add(e[v], f[v]);
    T* op = o + c0 + v * L;
    hn::StoreU(first ? sum : hn::MulAdd(hn::LoadU(d, op), hn::Set(d, alpha), sum), d, op);
  }
}

// One query's block of bc raw scores s into probabilities, the online softmax's running maximum m
// and sum l updated; returns the factor that rescales what was accumulated before the block.
template <class D, typename T>
HWY_INLINE T BlockSoftmax(D d, T* s, int64_t bc, T mscale, const ExpArgs<T>& ea, T& m, T& l) {
  using V = VecT<D>;
  const auto L = static_cast<int64_t>(hn::Lanes(d));
  const T ninf = -std::numeric_limits<T>::infinity();
  // The block's largest score, a vector at a time (a scalar chain of maxima was 8 % of a decoding
  // step's attention). A NaN score makes the row NaN whichever maximum it leaves.
  const int64_t whole = bc / L * L;
  int64_t j = 0;
  V mxv = hn::Set(d, ninf);
  for (; j < whole; j += L) mxv = hn::Max(mxv, hn::LoadU(d, s + j));
  T mx = MaxLanes(d, mxv);
  for (; j < bc; ++j) mx = std::max(mx, s[j]);
  const T m_new = std::max(m, mx * mscale);
  const T m_safe = m_new == ninf ? T(0) : m_new;  // no finite score yet: exponents give 0
  const V vsk = hn::Set(d, ea.sk), sub = hn::Set(d, m_safe * ea.mk);
  V lsum = hn::Zero(d);
  for (j = 0; j < whole; j += L) {
    const V p = SoftmaxExp(d, hn::MulSub(hn::LoadU(d, s + j), vsk, sub));
    hn::StoreU(p, d, s + j);
    lsum = hn::Add(lsum, p);
  }
  // The keys past the whole vectors: their exponents as one vector, summed in key order (a short
  // row then sums as a tile's lane does).
  T tail = 0;
  if (j < bc) {
    const auto n = static_cast<size_t>(bc - j);
    StoreTail(SoftmaxExp(d, hn::MulSub(LoadTail(d, s + j, n), vsk, sub)), d, s + j, n);
    for (; j < bc; ++j) tail += s[j];
  }
  const T alpha = hn::GetLane(ExpNonPositive(d, hn::Set(d, m - m_safe)));
  l = l * alpha + (SumLanes(d, lsum) + tail);
  m = m_new;
  return alpha;
}

// Key and value j of batch entry b, key/value head kvh, as stored (KV: T, or uint16_t for bf16):
// with kv_rows, read from batch entry kv_rows[j * B + b].
template <typename T, typename KV>
struct KVRows {
  const AttentionArgs<T>& a;
  int64_t b, kvh;
  int64_t entry(int64_t j) const { return a.kv_rows ? a.kv_rows[j * a.B + b] : b; }
  const KV* key(int64_t j) const {
    return reinterpret_cast<const KV*>(a.k) + entry(j) * a.k_layout.b + kvh * a.k_layout.h +
           j * a.k_layout.t;
  }
  const KV* value(int64_t j) const {
    return reinterpret_cast<const KV*>(a.v) + entry(j) * a.v_layout.b + kvh * a.v_layout.h +
           j * a.v_layout.t;
  }
};

// Query i of head h in batch b on its own: scores as dot products along the head (16 keys at a time
// on AVX-512 with whole vectors of features, then four, then one), an online softmax over blocks
// of keys, and O += p v with two keys per step, the accumulator in w.o. Same function as
// ForwardRows; the sums run in other orders, so results may differ from a tiled row in the last
// bits (and a key's score from one call to the next, as the group it falls in changes). With
// kv_rows, key j of batch b is read from batch entry kv_rows[j * B + b]. KV: the stored element
// type of keys and values (T, or uint16_t for bf16).
template <typename T, typename KV>
void ForwardQuery(const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t i, T* out,
                  const HeadLayout& ol, T* lse, FwdBuffers<T>& w) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t L = hn::Lanes(d);
  const int64_t kvh = h / (a.H / a.Hkv), pos = i + a.query_offset;
  const T* q = a.q + b * a.q_layout.b + h * a.q_layout.h + i * a.q_layout.t;
  const auto D = static_cast<size_t>(a.D), Dv = static_cast<size_t>(a.Dv);
  const size_t dw = D / L * L, dvw = Dv / L * L;  // whole vectors
  const KVRows<T, KV> stored{a, b, kvh};
  auto key = [&](int64_t j) { return stored.key(j); };
  auto value = [&](int64_t j) { return stored.value(j); };
  auto dot_tail = [&](const KV* k) {
    T t = 0;
    for (size_t c = dw; c < D; ++c) t += q[c] * ScalarKV(k[c]);
    return t;
  };
  int64_t lo = 0, hi = a.Tk;  // the visible keys
  if (a.key_lengths) hi = std::min(hi, a.key_lengths[b]);
  if (a.causal) hi = std::min(hi, pos + 1);
  if (a.window >= 0)
    hi = std::min(hi, pos + a.window + 1), lo = std::max<int64_t>(0, pos - a.window);
  const T ninf = -std::numeric_limits<T>::infinity();
  const ExpArgs<T> ea = exp_args(a);
  // Raw dot products with the scale folded into the exponent, as the tile keeps them; a scale
  // that is not positive (AdditiveScores, which only kv_rows calls bring here) is applied first.
  const bool scaled = AdditiveScores(a);
  const T mscale = scaled ? T(1) : static_cast<T>(a.scale);
  T* s = w.st.data();  // the block's scores, then its probabilities
  T* o = w.o.data();
  T m = ninf, l = 0;
  for (int64_t j0 = lo; j0 < hi; j0 += kFwdKeys) {
    const int64_t bc = std::min(kFwdKeys, hi - j0);
    int64_t j = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    if constexpr (std::is_same_v<T, float>)
      if (dw == D && L == 16)
        for (; j + 16 <= bc; j += 16)
          hn::StoreU(Dot16<decltype(d), KV>(d, q, dw, [&](int k) { return key(j0 + j + k); }), d,
                     s + j);
#endif
    for (; j + 4 <= bc; j += 4) {
      const KV *k0 = key(j0 + j), *k1 = key(j0 + j + 1), *k2 = key(j0 + j + 2),
               *k3 = key(j0 + j + 3);
      V c0 = hn::Zero(d), c1 = hn::Zero(d), c2 = hn::Zero(d), c3 = hn::Zero(d);
      for (size_t c = 0; c < dw; c += L) {
        const V qv = hn::LoadU(d, q + c);
        c0 = hn::MulAdd(qv, LoadKV(d, k0 + c), c0);
        c1 = hn::MulAdd(qv, LoadKV(d, k1 + c), c1);
        c2 = hn::MulAdd(qv, LoadKV(d, k2 + c), c2);
        c3 = hn::MulAdd(qv, LoadKV(d, k3 + c), c3);
      }
      s[j] = SumLanes(d, c0) + dot_tail(k0), s[j + 1] = SumLanes(d, c1) + dot_tail(k1);
      s[j + 2] = SumLanes(d, c2) + dot_tail(k2), s[j + 3] = SumLanes(d, c3) + dot_tail(k3);
    }
    for (; j < bc; ++j) {
      const KV* kj = key(j0 + j);
      s[j] = SumLanes(d, DotVectors(d, q, kj, dw, hn::Zero(d))) + dot_tail(kj);
    }
    if (scaled)
      for (j = 0; j < bc; ++j) s[j] *= static_cast<T>(a.scale);
    const T alpha = BlockSoftmax(d, s, bc, mscale, ea, m, l);
    // O = O alpha + sum_j p_j v_j, four vectors of the row at a time, even and odd keys apart.
    const bool first = j0 == lo;
    for (size_t c0 = 0; c0 < dvw; c0 += 4 * L) {
      switch (std::min<size_t>(4, (dvw - c0) / L)) {
        case 1:
          AccumulateValues<1>(d, s, j0, bc, c0, value, o, first, alpha);
          break;
        case 2:
          AccumulateValues<2>(d, s, j0, bc, c0, value, o, first, alpha);
          break;
        case 3:
          AccumulateValues<3>(d, s, j0, bc, c0, value, o, first, alpha);
          break;
        default:
          AccumulateValues<4>(d, s, j0, bc, c0, value, o, first, alpha);
          break;
      }
    }
    for (size_t c = dvw; c < Dv; ++c) {  // the columns past the whole vectors
      T sum = 0;
      for (j = 0; j < bc; ++j) sum += s[j] * ScalarKV(value(j0 + j)[c]);
      o[c] = first ? sum : o[c] * alpha + sum;
    }
  }
  const T inv = l > 0 ? T(1) / l : T(0);  // a query that saw no key gives 0, not 0/0
  T* dst = out + b * ol.b + h * ol.h + i * ol.t;
  if (lo < hi) {
    // Explicit vectors: the compiler cannot rule out that dst overlaps o and keeps this scalar.
    const V vinv = hn::Set(d, inv);
    for (size_t c = 0; c < dvw; c += L) hn::StoreU(hn::Mul(hn::LoadU(d, o + c), vinv), d, dst + c);
    for (size_t c = dvw; c < Dv; ++c) dst[c] = o[c] * inv;
  } else {
    std::fill(dst, dst + Dv, T(0));
  }
  lse[(b * a.H + h) * a.Tq + i] = hn::GetLane(RowLse(d, hn::Set(d, m), hn::Set(d, l)));
}

#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
// O_r = O_r alpha_r + sum_j p_rj v_j for the four queries r of ForwardQueries, NV vectors of
// features from c0: each value vector loaded once for all four.
template <size_t NV, class D, class ValueRow>
HWY_INLINE void AccumulateValues4(D d, const float* s, int64_t j0, int64_t bc, size_t c0,
                                  const ValueRow& value, float* o, size_t Dv, bool first,
                                  const float* alpha) {
  using V = VecT<D>;
  V acc[4][NV];
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  for (int64_t j = 0; j < bc; ++j) {
    const auto* row = value(j0 + j) + c0;
    V vv[NV];
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) vv[v] = LoadKV(d, row + 16 * v);
#pragma GCC unroll 4
    for (int r = 0; r < 4; ++r) {
      const V p = hn::Set(d, s[r * kFwdKeys + j]);
#pragma GCC unroll 4
      for (size_t v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(p, vv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r)
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; ++v) {
      float* op = o + r * Dv + c0 + 16 * v;
      hn::StoreU(first ? acc[r][v] : hn::MulAdd(hn::LoadU(d, op), hn::Set(d, alpha[r]), acc[r][v]),
                 d, op);
    }
}

// Queries [i0, i0 + nq) (2 to 4) of head h in batch b that see the same keys, as ForwardQuery
// computes each, but with every key and value vector loaded once for all of them: a
// cross-attention's beams of one source, which decoding passes as that source's queries, read
// the same keys and values (translating 200 verses in int8: a tenth of the run went to reading
// them once a beam). Four keys of four queries make sixteen dot products, one transposing sum.
// No causal limit, window or additive scores; whole vectors of features. Rows past nq repeat
// the last query and are dropped.
template <typename KV>
void ForwardQueries(const AttentionArgs<float>& a, int64_t b, int64_t h, int64_t i0, int64_t nq,
                    float* out, const HeadLayout& ol, float* lse, FwdBuffers<float>& w) {
  const hn::ScalableTag<float> d;
  using V = VecT<decltype(d)>;
  const int64_t kvh = h / (a.H / a.Hkv);
  const auto D = static_cast<size_t>(a.D), Dv = static_cast<size_t>(a.Dv);
  const float* q[4];
  for (int64_t r = 0; r < 4; ++r)
    q[r] = a.q + b * a.q_layout.b + h * a.q_layout.h + (i0 + std::min(r, nq - 1)) * a.q_layout.t;
  const KVRows<float, KV> stored{a, b, kvh};
  auto key = [&](int64_t j) { return stored.key(j); };
  auto value = [&](int64_t j) { return stored.value(j); };
  const int64_t hi = a.key_lengths ? std::min(a.Tk, a.key_lengths[b]) : a.Tk;
  const ExpArgs<float> ea = exp_args(a);
  const auto mscale = static_cast<float>(a.scale);
  float* s = w.st.data();  // query r's block at s + r * kFwdKeys: scores, then probabilities
  float* o = w.o.data();   // query r's accumulator at o + r * Dv
  float m[4], l[4], alpha[4];
  std::fill(m, m + 4, -std::numeric_limits<float>::infinity());
  std::fill(l, l + 4, 0.0f);
  for (int64_t j0 = 0; j0 < hi; j0 += kFwdKeys) {
    const int64_t bc = std::min(kFwdKeys, hi - j0);
    int64_t j = 0;
    for (; j + 4 <= bc; j += 4) {
      const KV* rows[4] = {key(j0 + j), key(j0 + j + 1), key(j0 + j + 2), key(j0 + j + 3)};
      V acc[16];
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k) acc[k] = hn::Zero(d);
      for (size_t c = 0; c < D; c += 16) {
        V kv[4];
#pragma GCC unroll 4
        for (int k = 0; k < 4; ++k) kv[k] = LoadKV(d, rows[k] + c);
#pragma GCC unroll 4
        for (int r = 0; r < 4; ++r) {
          const V qv = hn::LoadU(d, q[r] + c);
#pragma GCC unroll 4
          for (int k = 0; k < 4; ++k) acc[4 * r + k] = hn::MulAdd(qv, kv[k], acc[4 * r + k]);
        }
      }
      alignas(64) float sums[16];  // block r: query r's four scores
      hn::Store(TransposeSum16(d, acc), d, sums);
      for (int r = 0; r < 4; ++r) std::copy_n(sums + 4 * r, 4, s + r * kFwdKeys + j);
    }
    for (; j < bc; ++j) {
      const KV* kj = key(j0 + j);
      for (int r = 0; r < 4; ++r)
        s[r * kFwdKeys + j] = SumLanes(d, DotVectors(d, q[r], kj, D, hn::Zero(d)));
    }
    for (int r = 0; r < 4; ++r)
      alpha[r] = BlockSoftmax(d, s + r * kFwdKeys, bc, mscale, ea, m[r], l[r]);
    const bool first = j0 == 0;
    for (size_t c0 = 0; c0 < Dv; c0 += 64) {
      switch (std::min<size_t>(4, (Dv - c0) / 16)) {
        case 1:
          AccumulateValues4<1>(d, s, j0, bc, c0, value, o, Dv, first, alpha);
          break;
        case 2:
          AccumulateValues4<2>(d, s, j0, bc, c0, value, o, Dv, first, alpha);
          break;
        case 3:
          AccumulateValues4<3>(d, s, j0, bc, c0, value, o, Dv, first, alpha);
          break;
        default:
          AccumulateValues4<4>(d, s, j0, bc, c0, value, o, Dv, first, alpha);
          break;
      }
    }
  }
  for (int64_t r = 0; r < nq; ++r) {
    const float inv = l[r] > 0 ? 1.0f / l[r] : 0.0f;  // a query that saw no key gives 0
    float* dst = out + b * ol.b + h * ol.h + (i0 + r) * ol.t;
    const V vinv = hn::Set(d, inv);
    for (size_t c = 0; c < Dv; c += 16)
      hn::StoreU(hi > 0 ? hn::Mul(hn::LoadU(d, o + r * Dv + c), vinv) : hn::Zero(d), d, dst + c);
    lse[(b * a.H + h) * a.Tq + i0 + r] = hn::GetLane(RowLse(d, hn::Set(d, m[r]), hn::Set(d, l[r])));
  }
}
#endif

// The value rows of keys [j0, j0 + bc) as a B operand: in place when whole vectors fit in a row,
// else copied with zero padding.
template <typename T>
const T* ValueRows(const AttentionArgs<T>& a, const T* vb, int64_t j0, int64_t bc, size_t L,
                   size_t dvp, T* buf, size_t* ldb) {
  if (a.Dv % static_cast<int64_t>(L) == 0) {
    *ldb = static_cast<size_t>(a.v_layout.t);
    return vb + j0 * a.v_layout.t;
  }
  PackRows(vb + j0 * a.v_layout.t, a.v_layout.t, bc, a.Dv, buf, dvp);
  *ldb = dvp;
  return buf;
}

// Queries [i0, i1) of head h in batch b.
template <typename T>
void ForwardRows(const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t i0, int64_t i1, T* out,
                 const HeadLayout& ol, T* lse, FwdBuffers<T>& w) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t L = hn::Lanes(d);
  const int64_t kvh = h / (a.H / a.Hkv);
  const size_t rows = static_cast<size_t>(i1 - i0), brp = RoundUp(rows, L), dvp = RoundUp(a.Dv, L);
  const T* kb = a.k + b * a.k_layout.b + kvh * a.k_layout.h;
  const T* vb = a.v + b * a.v_layout.b + kvh * a.v_layout.h;
  PackTransposed(d, a.q + b * a.q_layout.b + h * a.q_layout.h + i0 * a.q_layout.t, a.q_layout.t,
                 rows, a.D, w.qt.data(), brp);
  int64_t kend = a.Tk;  // keys beyond this are invisible to every query of the block
  if (a.key_lengths) kend = std::min(kend, a.key_lengths[b]);
  if (a.causal) kend = std::min(kend, i1 - 1 + a.query_offset + 1);
  // A window: keys before the first query's band are skipped by whole blocks (kept aligned to
  // kFwdKeys, so a row meets the same blocks whichever query block it is in), those after the last
  // query's band are not visited.
  int64_t kstart = 0;
  if (a.window >= 0) {
    kend = std::min(kend, i1 - 1 + a.query_offset + a.window + 1);
    kstart = std::max<int64_t>(0, i0 + a.query_offset - a.window) / kFwdKeys * kFwdKeys;
  }

  const T ninf = -std::numeric_limits<T>::infinity();
  const ExpArgs<T> ea = exp_args(a);
  const V vsk = hn::Set(d, ea.sk), vmk = hn::Set(d, ea.mk);
  // Row maxima are kept in natural (scaled) units: raw maxima times the scale, unless rows were
  // already scaled by PrepareKeyRow.
  const V vmscale = hn::Set(d, AdditiveScores(a) ? T(1) : static_cast<T>(a.scale));
  std::fill(w.m.data(), w.m.data() + brp, ninf);
  std::fill(w.l.data(), w.l.data() + brp, T(0));
  // The accumulator starts with the first block's products (what 0 * alpha + P V gives bit for
  // bit), so it is neither zeroed nor rescaled before that block.
  bool first = true, written = false;
  for (int64_t j0 = kstart; j0 < kend; j0 += kFwdKeys) {
    const int64_t bc = std::min(kFwdKeys, kend - j0);
    // St[j][i] = k_j . q_i, K rows read in place. Without a row pass the tiles also give each
    // query's maximum over the block's keys.
    const bool rowpass = BlockNeedsRowPass(a, i0, static_cast<int64_t>(rows), j0, bc);
    if (!rowpass) std::fill(w.mx.data(), w.mx.data() + brp, ninf);
    MatmulPacked(d, kb + j0 * a.k_layout.t, a.k_layout.t, 1, bc, a.D, w.qt.data(), brp, brp / L,
                 w.st.data(), brp, false, rowpass ? nullptr : w.mx.data());
    if (rowpass)
      for (int64_t j = 0; j < bc; ++j)
        PrepareKeyRow(d, a, b, h, j0 + j, i0, brp, w.st.data() + j * brp);
    // Online softmax, one query per lane, a strip of lanes at a time so that the running maximum
    // and sum stay in registers while the keys of the block stream past.
    T* const st = w.st.data();
    for (size_t c = 0; c < brp; c += L) {
      V mx;
      int64_t j = 0;
      if (rowpass) {
        const T* col = st + c;
        // Four chains: one would wait out Max's latency on every key.
        V mx0 = hn::Set(d, ninf), mx1 = mx0, mx2 = mx0, mx3 = mx0;
        for (; j + 4 <= bc; j += 4) {
          mx0 = hn::Max(mx0, hn::LoadU(d, col + j * brp));
          mx1 = hn::Max(mx1, hn::LoadU(d, col + (j + 1) * brp));
          mx2 = hn::Max(mx2, hn::LoadU(d, col + (j + 2) * brp));
          mx3 = hn::Max(mx3, hn::LoadU(d, col + (j + 3) * brp));
        }
        for (; j < bc; ++j) mx0 = hn::Max(mx0, hn::LoadU(d, col + j * brp));
        mx = hn::Max(hn::Max(mx0, mx1), hn::Max(mx2, mx3));
      } else {
        mx = hn::LoadU(d, w.mx.data() + c);
      }
      const V m_old = hn::LoadU(d, w.m.data() + c);
      const V m_new = hn::Max(m_old, hn::Mul(mx, vmscale));
      // m_safe stands in for -inf (no visible key yet) so the exponents give 0, not NaN.
      const V m_safe = hn::IfThenZeroElse(hn::Eq(m_new, hn::Set(d, ninf)), m_new);
      const V alpha = ExpNonPositive(d, hn::Sub(m_old, m_safe));  // rescales what was accumulated
      const V sub = hn::Mul(m_safe, vmk);
      // One chain in key order, as ForwardQuery sums a short row: decoding then equals the full
      // computation bit for bit.
      V lsum = hn::Zero(d);
      T* sp = st + c;
      for (j = 0; j < bc; ++j, sp += brp) {
        const V p = SoftmaxExp(d, hn::MulSub(hn::LoadU(d, sp), vsk, sub));
        hn::StoreU(p, d, sp);
        lsum = hn::Add(lsum, p);
      }
      hn::StoreU(hn::MulAdd(hn::LoadU(d, w.l.data() + c), alpha, lsum), d, w.l.data() + c);
      hn::StoreU(m_new, d, w.m.data() + c);
      hn::StoreU(alpha, d, w.alpha.data() + c);
    }
    if (a.dropout_p > 0)  // on what multiplies V; l keeps the undropped sums
      for (int64_t j = 0; j < bc; ++j)
        DropoutKeyRow(a, b, h, j0 + j, i0, static_cast<int64_t>(rows), w.st.data() + j * brp);
    // O[i] = O[i] alpha_i + sum_j P[i][j] v_j, with P read transposed from St. The rescale happens
    // as the tile loads O; after the last block, whole-vector rows go straight to the output as
    // O[i] / l_i (a pass over O each, 3 % of the forward at T = 128).
    RowScaling<T> rs;
    if (!first) rs.in = w.alpha.data();
    if (j0 + kFwdKeys >= kend && a.Dv % static_cast<int64_t>(L) == 0) {
      for (size_t r = 0; r < rows; ++r) w.inv[r] = w.l[r] > 0 ? T(1) / w.l[r] : T(0);
      rs.out = out + b * ol.b + h * ol.h + i0 * ol.t;
      rs.out_scale = w.inv.data();
      rs.ldo = static_cast<size_t>(ol.t);
      written = true;
    }
    size_t ldv = 0;
    const T* vrows = ValueRows(a, vb, j0, bc, L, dvp, w.vp.data(), &ldv);
    MatmulPacked(d, w.st.data(), 1, static_cast<ptrdiff_t>(brp), rows, bc, vrows, ldv, dvp / L,
                 w.o.data(), dvp, !first, static_cast<T*>(nullptr), rs);
    first = false;
  }
  if (first) std::fill(w.o.data(), w.o.data() + rows * dvp, T(0));  // no key was visible
  const size_t dvw = static_cast<size_t>(a.Dv) / L * L;  // whole vectors of an output row
  for (size_t r = 0; r < rows && !written; ++r) {
    const int64_t i = i0 + static_cast<int64_t>(r);
    const T l = w.l[r];
    const T inv = l > 0 ? T(1) / l : T(0);  // a query that saw no key gives 0, not 0/0
    T* dst = out + b * ol.b + h * ol.h + i * ol.t;
    const T* o = w.o.data() + r * dvp;
    // Explicit vectors: the compiler cannot rule out that dst overlaps o and keeps this scalar.
    const V vinv = hn::Set(d, inv);
    for (size_t c = 0; c < dvw; c += L) hn::StoreU(hn::Mul(hn::LoadU(d, o + c), vinv), d, dst + c);
    for (size_t c = dvw; c < static_cast<size_t>(a.Dv); ++c) dst[c] = o[c] * inv;
  }
  // The rows' lse, brp lanes at a time (the lanes past `rows` are computed and dropped).
  for (size_t r = 0; r < rows; r += L)
    StoreUpTo(RowLse(d, hn::LoadU(d, w.m.data() + r), hn::LoadU(d, w.l.data() + r)), d,
              lse + (b * a.H + h) * a.Tq + i0 + static_cast<int64_t>(r), std::min(L, rows - r));
}

template <typename T>
void ForwardImpl(const AttentionArgs<T>& a, T* out, const HeadLayout& ol, T* lse) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  const bool by_query = QueryPathServes(a);
  const int64_t qblocks = by_query ? 1 : (a.Tq + kFwdRows - 1) / kFwdRows;
  const int64_t tasks = a.B * a.H * qblocks;
  const int team = team_for(tasks);
  PerThread<FwdBuffers<T>> buffers(team, a.D, RoundUp(kFwdRows, L), RoundUp(a.Dv, L));
  if (by_query) {
    // Each thread one run of consecutive (batch, head) tasks, as a static schedule.
    for_team(team, tasks, (tasks + team - 1) / team, [&](int t, int64_t bh) {
      FwdBuffers<T>& w = buffers[t];
      int64_t i0 = 0;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
      // Queries that see the same keys (no causal limit or window) read them once, four at a
      // time (ForwardQueries).
      if constexpr (std::is_same_v<T, float>)
        if (L == 16 && !a.causal && a.window < 0 && !AdditiveScores(a) && a.D % 16 == 0 &&
            a.Dv % 16 == 0)
          for (; i0 + 1 < a.Tq; i0 += 4) {
            const int64_t nq = std::min<int64_t>(4, a.Tq - i0);
            if (a.kv_bf16)
              ForwardQueries<uint16_t>(a, bh / a.H, bh % a.H, i0, nq, out, ol, lse, w);
            else
              ForwardQueries<float>(a, bh / a.H, bh % a.H, i0, nq, out, ol, lse, w);
          }
#endif
      for (int64_t i = i0; i < a.Tq; ++i) {
        if constexpr (std::is_same_v<T, float>) {
          if (a.kv_bf16) {
            ForwardQuery<T, uint16_t>(a, bh / a.H, bh % a.H, i, out, ol, lse, w);
            continue;
          }
        }
        ForwardQuery<T, T>(a, bh / a.H, bh % a.H, i, out, ol, lse, w);
      }
    });
    return;
  }
  // Dynamic, as causal blocks near the end of the sequence see more keys than those at the start;
  // in runs of consecutive query blocks (a whole head each when there are heads enough), so that
  // two threads seldom read one head's keys and values at the same moment: handing out single
  // blocks cost 5-8 % on two Zen 5 cores (T = 512, B*H = 64). qblocks is 0 when there are no
  // queries.
  const int64_t run = std::clamp<int64_t>(tasks / (4 * team), 1, std::max<int64_t>(qblocks, 1));
  for_team(team, (tasks + run - 1) / run, 1, [&](int t, int64_t r) {
    for (int64_t task = r * run; task < std::min(tasks, (r + 1) * run); ++task) {
      const int64_t qb = task % qblocks, bh = task / qblocks;
      const int64_t i0 = qb * kFwdRows, i1 = std::min(a.Tq, i0 + kFwdRows);
      ForwardRows(a, bh / a.H, bh % a.H, i0, i1, out, ol, lse, buffers[t]);
    }
  });
}

// probs[b, slot, i, :] for head heads[slot]: exp(score - lse), dropped out like the forward.
template <typename T>
void ProbsImpl(const AttentionArgs<T>& a, const T* lse, const int64_t* heads, int64_t n_heads,
               T* probs) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  const int64_t qblocks = (a.Tq + kFwdRows - 1) / kFwdRows;
  const int64_t tasks = a.B * n_heads * qblocks;
  const int team = team_for(tasks);
  struct Buffers {
    explicit Buffers(size_t D, size_t brp) : qt(D * brp), st(kFwdKeys * brp), lsep(brp) {}
    Scratch<T> qt, st, lsep;
  };
  PerThread<Buffers> buffers(team, static_cast<size_t>(a.D), RoundUp(kFwdRows, L));
  const ExpArgs<T> ea = exp_args(a);
  const auto vsk = hn::Set(d, ea.sk), vmk = hn::Set(d, ea.mk);
  for_team(team, tasks, 1, [&](int t, int64_t task) {
    Buffers& w = buffers[t];
    Scratch<T>& qt = w.qt;
    Scratch<T>& st = w.st;
    Scratch<T>& lsep = w.lsep;
    const int64_t qb = task % qblocks, slot = (task / qblocks) % n_heads,
                  b = task / (qblocks * n_heads);
    const int64_t h = heads[slot], kvh = h / (a.H / a.Hkv);
    const int64_t i0 = qb * kFwdRows, i1 = std::min(a.Tq, i0 + kFwdRows);
    const size_t rows = static_cast<size_t>(i1 - i0), brp = RoundUp(rows, L);
    PackTransposed(d, a.q + b * a.q_layout.b + h * a.q_layout.h + i0 * a.q_layout.t, a.q_layout.t,
                   rows, a.D, qt.data(), brp);
    // lse per lane; +inf where a query saw no key (or is padding), so its probabilities are 0.
    for (size_t r = 0; r < brp; ++r) {
      const T l = r < rows ? lse[(b * a.H + h) * a.Tq + i0 + static_cast<int64_t>(r)] : T(0);
      lsep[r] = (r >= rows || l == -std::numeric_limits<T>::infinity())
                    ? std::numeric_limits<T>::infinity()
                    : l;
    }
    const T* kb = a.k + b * a.k_layout.b + kvh * a.k_layout.h;
    for (int64_t j0 = 0; j0 < a.Tk; j0 += kFwdKeys) {
      const int64_t bc = std::min(kFwdKeys, a.Tk - j0);
      MatmulPacked(d, kb + j0 * a.k_layout.t, a.k_layout.t, 1, bc, a.D, qt.data(), brp, brp / L,
                   st.data(), brp, false);
      const bool rowpass = BlockNeedsRowPass(a, i0, static_cast<int64_t>(rows), j0, bc);
      for (int64_t j = 0; j < bc; ++j) {
        T* s = st.data() + j * brp;
        if (rowpass) PrepareKeyRow(d, a, b, h, j0 + j, i0, brp, s);
        for (size_t c = 0; c < brp; c += L)
          hn::StoreU(SoftmaxExp(d, hn::MulSub(hn::LoadU(d, s + c), vsk,
                                              hn::Mul(hn::LoadU(d, lsep.data() + c), vmk))),
                     d, s + c);
        if (a.dropout_p > 0) DropoutKeyRow(a, b, h, j0 + j, i0, static_cast<int64_t>(rows), s);
        T* dst = probs + ((b * n_heads + slot) * a.Tq + i0) * a.Tk + j0 + j;
        for (size_t r = 0; r < rows; ++r) dst[static_cast<int64_t>(r) * a.Tk] = s[r];
      }
    }
  });
}

void ForwardF32(const AttentionArgs<float>& a, float* out, const HeadLayout& ol, float* lse) {
  ForwardImpl(a, out, ol, lse);
}
void ForwardF64(const AttentionArgs<double>& a, double* out, const HeadLayout& ol, double* lse) {
  ForwardImpl(a, out, ol, lse);
}
void ProbsF32(const AttentionArgs<float>& a, const float* lse, const int64_t* heads, int64_t n,
              float* p) {
  ProbsImpl(a, lse, heads, n, p);
}
void ProbsF64(const AttentionArgs<double>& a, const double* lse, const int64_t* heads, int64_t n,
              double* p) {
  ProbsImpl(a, lse, heads, n, p);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "gaze/core/error.h"
#include "gaze/kernels/dispatch.h"

namespace gaze::kernels {

HWY_EXPORT(ForwardF32);
HWY_EXPORT(ForwardF64);
HWY_EXPORT(ProbsF32);
HWY_EXPORT(ProbsF64);

template <typename T>
void attention_forward(const AttentionArgs<T>& a, T* out, const HeadLayout& out_layout, T* lse) {
  GAZE_CHECK(!a.kv_bf16 || (std::is_same_v<T, float>), ValueError,
             "attention: keys and values in bf16 go with float32 queries");
  pick<T>(HWY_DYNAMIC_DISPATCH(ForwardF32), HWY_DYNAMIC_DISPATCH(ForwardF64))(a, out, out_layout,
                                                                              lse);
}

template <typename T>
void attention_probs(const AttentionArgs<T>& a, const T* lse, const int64_t* heads, int64_t n_heads,
                     T* probs) {
  GAZE_CHECK(!a.kv_bf16, ValueError, "attention weights: not for keys and values kept in bf16");
  pick<T>(HWY_DYNAMIC_DISPATCH(ProbsF32), HWY_DYNAMIC_DISPATCH(ProbsF64))(a, lse, heads, n_heads,
                                                                          probs);
}

template void attention_forward<float>(const AttentionArgs<float>&, float*, const HeadLayout&,
                                       float*);
template void attention_forward<double>(const AttentionArgs<double>&, double*, const HeadLayout&,
                                        double*);
template void attention_probs<float>(const AttentionArgs<float>&, const float*, const int64_t*,
                                     int64_t, float*);
template void attention_probs<double>(const AttentionArgs<double>&, const double*, const int64_t*,
                                      int64_t, double*);

void alibi_slopes(int64_t n, double* out) {
  // Slopes of a power of two p: 2^(-8/p), 2^(-16/p), ...
  auto powers = [](int64_t p, int64_t count, int64_t step, double* dst) {
    for (int64_t k = 0; k < count; ++k)
      dst[k] = std::pow(2.0, -8.0 * static_cast<double>(1 + k * step) / p);
  };
  int64_t p = 1;
  while (p * 2 <= n) p *= 2;
  powers(p, p, 1, out);
  if (p < n)
    powers(2 * p, n - p, 2, out + p);  // every other slope of 2p: 2^(-8*1/2p), 2^(-8*3/2p), ...
}

}  // namespace gaze::kernels
#endif  // HWY_ONCE
