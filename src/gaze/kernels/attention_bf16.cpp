// The bf16 attention forward (attention_bf16.h): the FlashAttention-2 walk of attention_forward.cpp
// (a task owns up to 64 queries of one head, one per lane across four vectors, and streams the key
// blocks past an online softmax), with both products on vdpbf16ps, which multiplies pairs of bf16
// values and adds both products to one fp32 lane: twice the multiply-adds of an fp32 FMA. Operands
// are therefore laid out in pairs along the summed axis: the query rows pair adjacent features, the
// value rows and the probabilities pair adjacent keys.
#include "gaze/kernels/attention_bf16.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "gaze/core/error.h"
#include "gaze/core/precision.h"
#include "gaze/core/threads.h"
#include "gaze/kernels/attention_amx.h"
#include "gaze/kernels/attention_bf16-inl.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/kernels/scratch.h"

namespace gaze::kernels {
namespace {

using namespace bf16_detail;

// The register tiles' loops must unroll fully, or their accumulators live in memory.
#define GAZE_UNROLL _Pragma("GCC unroll 16")

// Keys and values converted once (each query block reads them all): key rows of d2n pairs, value
// pairs of dvp columns; Tk padded to whole blocks with zeros. PackHeads writes the blocks,
// ForwardRows reads them.
struct Packed {
  int64_t d2n, dvp, tkp;
  uint32_t* k;  // [heads held, tkp, d2n]
  uint32_t* v;  // [heads held, tkp / 2, dvp]
  // 0: k and v hold every head of the batch; n: the n consecutive heads of one sequence that a
  // task packed for itself (head kvh at kvh % n).
  int64_t task_heads = 0;
  int64_t head(int64_t b, int64_t kvh, int64_t Hkv) const {
    return task_heads ? kvh % task_heads : b * Hkv + kvh;
  }
  uint32_t* keys(int64_t b, int64_t kvh, int64_t Hkv, int64_t j0) const {
    return k + (head(b, kvh, Hkv) * tkp + j0) * d2n;
  }
  uint32_t* values(int64_t b, int64_t kvh, int64_t Hkv, int64_t j0) const {
    return v + (head(b, kvh, Hkv) * tkp + j0) / 2 * dvp;
  }
};

struct Buffers {
  Buffers(int64_t d2, int64_t dvp)
      : rows(static_cast<size_t>(kRows * d2)),
        qp(static_cast<size_t>(kRows * d2)),
        pp(static_cast<size_t>(kKeys / 2 * kRows)),
        tail(static_cast<size_t>(dvp)),
        st(static_cast<size_t>(kKeys * kRows)),
        o(static_cast<size_t>(kRows * dvp)),
        m(kRows),
        l(kRows),
        alpha(kRows),
        ones(kRows) {
    std::fill(ones.data(), ones.data() + kRows, 1.0f);
  }
  // Pairs of bf16 in one uint32 (the lower half first): query rows as converted, then transposed
  // (qp[d2 * kRows + r] = features 2 d2 and 2 d2 + 1 of query r); probability pairs
  // pp[j2 * kRows + r]; the value pairs of a block's odd last key with its zero partner.
  Scratch<uint32_t> rows, qp, pp, tail;
  Scratch<float> st;  // scores st[j * kRows + r]
  Scratch<float> o, m, l, alpha, ones;
};

// dst[c * kRows + r] = src[r * ld + c] for c < cols: 16 rows (those from `live` on read as zeros)
// of up to 16 columns. log2(16) rounds of even/odd lane selection, each rotating the bits of the
// (row, lane) index by one, swap row and lane.
GAZE_BF16 void TransposePairs(const uint32_t* src, int64_t ld, int64_t live, int64_t cols,
                              uint32_t* dst) {
  const __mmask16 in = first_n(cols);
  __m512i v[16], t[16];
  GAZE_UNROLL
  for (int r = 0; r < 16; ++r)
    v[r] = r < live ? _mm512_maskz_loadu_epi32(in, src + r * ld) : _mm512_setzero_si512();
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  GAZE_UNROLL
  for (int round = 0; round < 4; ++round) {
    GAZE_UNROLL
    for (int i = 0; i < 8; ++i) {
      t[i] = _mm512_permutex2var_epi32(v[2 * i], even, v[2 * i + 1]);
      t[i + 8] = _mm512_permutex2var_epi32(v[2 * i], odd, v[2 * i + 1]);
    }
    GAZE_UNROLL
    for (int i = 0; i < 16; ++i) v[i] = t[i];
  }
  // Whole, with a test per column: constant indices keep v in registers.
  GAZE_UNROLL
  for (int c = 0; c < 16; ++c)
    if (c < cols) _mm512_storeu_si512(dst + c * kRows, v[c]);
}

// st[j][g * 16 + lane] = q . k_j for keys [0, nkeys) (a multiple of 4) and G groups of 16 queries.
template <int G>
GAZE_BF16 void Scores(const uint32_t* qp, const uint32_t* kp, int64_t d2n, int64_t nkeys,
                      float* st) {
  for (int64_t j = 0; j < nkeys; j += 4) {
    __m512 acc[G][4];
    GAZE_UNROLL
    for (int g = 0; g < G; ++g) GAZE_UNROLL
    for (int jj = 0; jj < 4; ++jj) acc[g][jj] = _mm512_setzero_ps();
    const uint32_t* k = kp + j * d2n;
    for (int64_t d2 = 0; d2 < d2n; ++d2) {
      __m512i q[G];
      GAZE_UNROLL
      for (int g = 0; g < G; ++g) q[g] = _mm512_loadu_si512(qp + d2 * kRows + g * 16);
      GAZE_UNROLL
      for (int jj = 0; jj < 4; ++jj) {
        const __m512bh kb = as_bh(_mm512_set1_epi32(static_cast<int>(k[jj * d2n + d2])));
        GAZE_UNROLL
        for (int g = 0; g < G; ++g) acc[g][jj] = _mm512_dpbf16_ps(acc[g][jj], as_bh(q[g]), kb);
      }
    }
    GAZE_UNROLL
    for (int g = 0; g < G; ++g) GAZE_UNROLL
    for (int jj = 0; jj < 4; ++jj) _mm512_storeu_ps(st + (j + jj) * kRows + g * 16, acc[g][jj]);
  }
}

// o[r] = o[r] * alpha[r] + sum_j p[r][j] v_j (just the sum on the first block) for rows [0, rows)
// (a multiple of 4) and columns [c0, c0 + 16 NC).
// `tail` (if not null) replaces the last pair row: the block's odd last key paired with zeros.
template <int NC>
GAZE_BF16 void ProbsTimesValues(const uint32_t* pp, const uint32_t* vp, const uint32_t* tail,
                                int64_t n2, int64_t dvp, int64_t rows, int64_t c0,
                                const float* alpha, bool first, float* o) {
  for (int64_t r = 0; r < rows; r += 4) {
    __m512 acc[4][NC];
    GAZE_UNROLL
    for (int rr = 0; rr < 4; ++rr) GAZE_UNROLL
    for (int c = 0; c < NC; ++c) acc[rr][c] = _mm512_setzero_ps();
    for (int64_t j2 = 0; j2 < n2; ++j2) {
      __m512i v[NC];
      const uint32_t* row = tail && j2 == n2 - 1 ? tail : vp + j2 * dvp;
      GAZE_UNROLL
      for (int c = 0; c < NC; ++c) v[c] = _mm512_loadu_si512(row + c0 + 16 * c);
      GAZE_UNROLL
      for (int rr = 0; rr < 4; ++rr) {
        const __m512bh p = as_bh(_mm512_set1_epi32(static_cast<int>(pp[j2 * kRows + r + rr])));
        GAZE_UNROLL
        for (int c = 0; c < NC; ++c) acc[rr][c] = _mm512_dpbf16_ps(acc[rr][c], as_bh(v[c]), p);
      }
    }
    GAZE_UNROLL
    for (int rr = 0; rr < 4; ++rr) {
      const __m512 a = _mm512_set1_ps(alpha[r + rr]);
      GAZE_UNROLL
      for (int c = 0; c < NC; ++c) {
        float* dst = o + (r + rr) * dvp + c0 + 16 * c;
        _mm512_storeu_ps(dst,
                         first ? acc[rr][c] : _mm512_fmadd_ps(_mm512_loadu_ps(dst), a, acc[rr][c]));
      }
    }
  }
}

// The online softmax of a block's keys [0, bc) for queries [16 g, 16 g + 16): masks (padding keys,
// keys after a causal query's position) become -inf, m and l are updated, alpha gets the factor
// for what was accumulated, and the probabilities go to pp in key pairs.
GAZE_BF16 void Softmax(const AttentionArgs<float>& a, int64_t b, int64_t i0, int64_t j0, int64_t bc,
                       int g, Buffers& w) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  const bool* pad = a.key_padding ? a.key_padding + b * a.Tk + j0 : nullptr;
  // Query lane t sits at position first + t: it sees key j iff j <= first + t.
  const int64_t first = i0 + g * 16 + a.query_offset;
  float* st = w.st.data() + g * 16;
  __m512 mx = ninf;
  const bool masked = pad != nullptr || (a.causal && j0 + bc - 1 > first);
  if (!masked) {  // four chains: one would wait out Max's latency on every key
    __m512 mx1 = ninf, mx2 = ninf, mx3 = ninf;
    int64_t j = 0;
    for (; j + 4 <= bc; j += 4) {
      mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + j * kRows));
      mx1 = _mm512_max_ps(mx1, _mm512_loadu_ps(st + (j + 1) * kRows));
      mx2 = _mm512_max_ps(mx2, _mm512_loadu_ps(st + (j + 2) * kRows));
      mx3 = _mm512_max_ps(mx3, _mm512_loadu_ps(st + (j + 3) * kRows));
    }
    for (; j < bc; ++j) mx = _mm512_max_ps(mx, _mm512_loadu_ps(st + j * kRows));
    mx = _mm512_max_ps(_mm512_max_ps(mx, mx1), _mm512_max_ps(mx2, mx3));
  }
  for (int64_t j = 0; j < bc && masked; ++j) {
    __m512 s = _mm512_loadu_ps(st + j * kRows);
    __mmask16 see = 0xffff;
    if (pad && pad[j]) see = 0;
    if (a.causal && j0 + j > first) see &= static_cast<__mmask16>(~first_n(j0 + j - first));
    if (see != 0xffff) {
      s = _mm512_mask_mov_ps(ninf, see, s);
      _mm512_storeu_ps(st + j * kRows, s);
    }
    mx = _mm512_max_ps(mx, s);
  }
  const __m512 m_old = _mm512_loadu_ps(w.m.data() + g * 16);
  const __m512 m_new = _mm512_max_ps(m_old, mx);
  // 0 stands in for -inf (no visible key yet) so that the exponents give 0, not NaN.
  const __m512 m_safe = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(m_new, ninf, _CMP_NEQ_OQ), m_new);
  const __m512 alpha = Exp2(_mm512_sub_ps(m_old, m_safe));
  __m512 lsum = _mm512_setzero_ps();
  for (int64_t j = 0; j < bc; j += 2) {
    const __m512 p0 = Exp2(_mm512_sub_ps(_mm512_loadu_ps(st + j * kRows), m_safe));
    const __m512 p1 = j + 1 < bc
                          ? Exp2(_mm512_sub_ps(_mm512_loadu_ps(st + (j + 1) * kRows), m_safe))
                          : _mm512_setzero_ps();
    lsum = _mm512_add_ps(lsum, _mm512_add_ps(p0, p1));
    _mm512_storeu_si512(w.pp.data() + j / 2 * kRows + g * 16,
                        Interleave(_mm512_cvtne2ps_pbh(p1, p0)));
  }
  const __m512 l = _mm512_loadu_ps(w.l.data() + g * 16);
  _mm512_storeu_ps(w.l.data() + g * 16, _mm512_fmadd_ps(l, alpha, lsum));
  _mm512_storeu_ps(w.m.data() + g * 16, m_new);
  _mm512_storeu_ps(w.alpha.data() + g * 16, alpha);
}

// Queries [i0, i1) of head h in batch b.
GAZE_BF16 void ForwardRows(const AttentionArgs<float>& a, const Packed& kv, int64_t b, int64_t h,
                           int64_t i0, int64_t i1, float* out, const HeadLayout& ol, Buffers& w) {
  const int64_t kvh = h / (a.H / a.Hkv);
  const int64_t rows = i1 - i0, G = (rows + 15) / 16, d2n = kv.d2n, dvp = kv.dvp,
                rows4 = round_up(rows, 4);
  // The queries times scale * log2(e), so the scores are in base-2 units for Exp2.
  const float* qb = a.q + b * a.q_layout.b + h * a.q_layout.h + i0 * a.q_layout.t;
  for (int64_t r = 0; r < rows; ++r)
    RowToBf16(qb + r * a.q_layout.t, a.D, static_cast<float>(a.scale) * kLog2e,
              w.rows.data() + r * d2n);
  // Transposed 16 x 16 pairs at a time in registers (zeros beyond `rows`): a gather per 16 rows'
  // pair was a sixth of this function.
  for (int g = 0; g < G; ++g) {
    const int64_t live = std::min<int64_t>(16, rows - g * 16);
    for (int64_t d0 = 0; d0 < d2n; d0 += 16)
      TransposePairs(w.rows.data() + g * 16 * d2n + d0, d2n, live, std::min<int64_t>(16, d2n - d0),
                     w.qp.data() + d0 * kRows + g * 16);
  }
  const int64_t kend = VisibleKeyEnd(a, b, i1);
  std::fill(w.m.data(), w.m.data() + kRows, -std::numeric_limits<float>::infinity());
  std::fill(w.l.data(), w.l.data() + kRows, 0.0f);
  bool first = true;
  for (int64_t j0 = 0; j0 < kend; j0 += kKeys) {
    const int64_t bc = std::min(kKeys, kend - j0), bc4 = round_up(bc, 4);
    const uint32_t* kp = kv.keys(b, kvh, a.Hkv, j0);
    switch (G) {
      case 1:
        Scores<1>(w.qp.data(), kp, d2n, bc4, w.st.data());
        break;
      case 2:
        Scores<2>(w.qp.data(), kp, d2n, bc4, w.st.data());
        break;
      case 3:
        Scores<3>(w.qp.data(), kp, d2n, bc4, w.st.data());
        break;
      default:
        Scores<4>(w.qp.data(), kp, d2n, bc4, w.st.data());
        break;
    }
    for (int g = 0; g < G; ++g) Softmax(a, b, i0, j0, bc, g, w);
    const uint32_t* vp = kv.values(b, kvh, a.Hkv, j0);
    const int64_t n2 = (bc + 1) / 2;
    // An odd last key's partner is beyond what this block may see: its probability is 0, and its
    // value must not enter either (0 times a NaN or an infinity is NaN).
    const uint32_t* tail = nullptr;
    if (bc % 2) {
      const __m512i low = _mm512_set1_epi32(0xffff);
      for (int64_t c = 0; c < dvp; c += 16)
        _mm512_storeu_si512(w.tail.data() + c,
                            _mm512_and_si512(_mm512_loadu_si512(vp + (n2 - 1) * dvp + c), low));
      tail = w.tail.data();
    }
    for (int64_t c0 = 0; c0 < dvp; c0 += 64) {
      const float* al = w.alpha.data();
      float* o = w.o.data();
      switch (std::min<int64_t>(4, (dvp - c0) / 16)) {
        case 1:
          ProbsTimesValues<1>(w.pp.data(), vp, tail, n2, dvp, rows4, c0, al, first, o);
          break;
        case 2:
          ProbsTimesValues<2>(w.pp.data(), vp, tail, n2, dvp, rows4, c0, al, first, o);
          break;
        case 3:
          ProbsTimesValues<3>(w.pp.data(), vp, tail, n2, dvp, rows4, c0, al, first, o);
          break;
        default:
          ProbsTimesValues<4>(w.pp.data(), vp, tail, n2, dvp, rows4, c0, al, first, o);
          break;
      }
    }
    first = false;
  }
  StoreRows(a, b, h, i0, rows, w.o.data(), dvp, w.l.data(), first, out, ol);
}

// Key block j0 of key/value heads [kvh0, kvh0 + n) of sequence b into `kv` (zeros beyond Tk), row
// by row across the heads: heads side by side in a row ([B, T, H, D], as attention modules lay
// them out) are then read in memory order, one stream per sequence. Head after head, each row was
// read in pieces a head apart, and a batch that did not fit in the cache waited on memory.
GAZE_BF16 void PackHeads(const AttentionArgs<float>& a, const Packed& kv, int64_t b, int64_t kvh0,
                         int64_t n, int64_t j0) {
  const int64_t bc = std::max<int64_t>(0, std::min(kKeys, a.Tk - j0));
  for (int64_t j = 0; j < bc; ++j)
    for (int64_t kvh = kvh0; kvh < kvh0 + n; ++kvh)
      RowToBf16(a.k + b * a.k_layout.b + kvh * a.k_layout.h + (j0 + j) * a.k_layout.t, a.D, 1.0f,
                kv.keys(b, kvh, a.Hkv, j0) + j * kv.d2n);
  // The value rows a pair of keys at a time across the heads (one head: the whole block at once).
  const int64_t step = n == 1 ? kKeys : 2;
  for (int64_t j = 0; j < bc; j += step)
    for (int64_t kvh = kvh0; kvh < kvh0 + n; ++kvh)
      PackValues(a.v + b * a.v_layout.b + kvh * a.v_layout.h + (j0 + j) * a.v_layout.t,
                 a.v_layout.t, std::min(step, bc - j), a.Dv, kv.dvp,
                 kv.values(b, kvh, a.Hkv, j0) + j / 2 * kv.dvp);
  for (int64_t kvh = kvh0; kvh < kvh0 + n; ++kvh) {
    uint32_t* kp = kv.keys(b, kvh, a.Hkv, j0);
    std::fill(kp + bc * kv.d2n, kp + kKeys * kv.d2n, 0u);
    uint32_t* vp = kv.values(b, kvh, a.Hkv, j0);
    std::fill(vp + (bc + 1) / 2 * kv.dvp, vp + kKeys / 2 * kv.dvp, 0u);
  }
}

}  // namespace

bool attention_bf16_handles(const AttentionArgs<float>& a) {
  static const bool cpu =
      precision_supported(Precision::bf16) && __builtin_cpu_supports("avx512bf16");
  return cpu && a.mask.data == nullptr && a.alibi_slopes == nullptr && a.window < 0 &&
         a.dropout_p == 0 && a.kv_rows == nullptr && !a.kv_bf16 && a.D >= 1 && a.D <= kMaxDim &&
         a.Dv >= 1 && a.Dv <= kMaxDim;
}

bool attention_bf16_pays() {
  static const bool pays = !cpu_has_amx_bf16() || amx_attention_usable();
  return pays;
}

void attention_forward_bf16(const AttentionArgs<float>& a, float* out, const HeadLayout& ol,
                            Bf16Kernel kernel) {
  GAZE_CHECK(kernel != Bf16Kernel::amx || amx_attention_usable(), ValueError,
             "attention_forward_bf16: AMX tiles asked for on a CPU or OS without them");
  if (kernel == Bf16Kernel::amx || (kernel == Bf16Kernel::automatic && amx_attention_usable())) {
    attention_forward_amx(a, out, ol);
    return;
  }
  const int64_t d2n = (a.D + 1) / 2, dvp = round_up(a.Dv, 16), tkp = round_up(a.Tk, kKeys);
  const int64_t kblocks = tkp / kKeys, heads = a.B * a.Hkv;
  if (heads == 0 || a.Tq == 0) return;  // nothing to write (and no thread count of 0 below)
  const int threads = omp_in_parallel() ? 1 : num_threads();
  // Tasks that pack their own keys and values into buffers of their own and run every query that
  // reads them while they are in their core's cache. Packing all heads first, then computing, sent
  // them through memory once they outgrew the cache (32 x 128 tokens of 4 heads: 96 us per sequence
  // against 68 for one) and on two threads put a region and a hand-over between the cores before
  // every small attention (1 x 128: 68 us on 1 thread and on 2).
  // A task per sequence (all its heads) where the heads lie side by side in each row ([B, T, H, D]
  // or [T, B, H, D]), a sequence's packed heads fit in a core's L2 (1 MB on Zen 4 and 5), and there
  // are at least two sequences a thread that share out evenly (or many): a task per head read each
  // row in pieces, and 32 x 128 tokens of 4 heads, or 8 x 512, took 11 % longer when they came
  // from memory. Otherwise a task per key/value head if those share out evenly: one head's packed
  // block, a quarter the size, stays nearer when the inputs are in the cache anyway.
  const int64_t head_bytes = (tkp * d2n + tkp / 2 * dvp) * 4;
  const bool per_sequence = a.B >= 2 * threads && (a.B % threads == 0 || a.B >= 4 * threads) &&
                            a.Hkv * head_bytes <= (int64_t{1} << 20) &&
                            a.k_layout.h < a.k_layout.t && a.v_layout.h < a.v_layout.t;
  if (per_sequence || heads % threads == 0 || heads >= 4 * threads) {
    const int64_t n = per_sequence ? a.Hkv : 1, tasks = heads / n;
    const int nt = team_for(tasks);
    const int64_t task_k = n * tkp * d2n, task_v = n * tkp / 2 * dvp;
    // Each thread's packed heads, allocated here: an allocation failing inside the region would
    // end the process instead of reaching the caller.
    Scratch<uint32_t> keys(static_cast<size_t>(nt * task_k)),
        values(static_cast<size_t>(nt * task_v));
    // Chunks of consecutive tasks, so that a thread mostly keeps to its own sequences, taken
    // dynamically, so that sequences of different lengths still share out evenly.
    const int64_t chunk = std::max<int64_t>(1, tasks / (4 * nt));
    PerThread<Buffers> buffers(nt, d2n, dvp);
    const int64_t group = a.H / a.Hkv;
    for_team(nt, tasks, chunk, [&](int me, int64_t t) {
      const Packed mine{d2n, dvp, tkp, keys.data() + me * task_k, values.data() + me * task_v, n};
      const int64_t b = t * n / a.Hkv, kvh0 = t * n % a.Hkv;
      for (int64_t j0 = 0; j0 < tkp; j0 += kKeys) PackHeads(a, mine, b, kvh0, n, j0);
      for (int64_t h = kvh0 * group; h < (kvh0 + n) * group; ++h)
        for (int64_t i0 = 0; i0 < a.Tq; i0 += kRows)
          ForwardRows(a, mine, b, h, i0, std::min(a.Tq, i0 + kRows), out, ol, buffers[me]);
    });
    return;
  }
  // Fewer heads than split evenly: all packed first, then tasks of kRows queries.
  Scratch<uint32_t> keys(static_cast<size_t>(heads * tkp * d2n)),
      values(static_cast<size_t>(heads * tkp / 2 * dvp));
  const Packed kv{d2n, dvp, tkp, keys.data(), values.data()};
  parallel_for(0, heads * kblocks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t t = lo; t < hi; ++t)
      PackHeads(a, kv, t / kblocks / a.Hkv, t / kblocks % a.Hkv, 1, t % kblocks * kKeys);
  });
  const int64_t qblocks = (a.Tq + kRows - 1) / kRows, tasks = a.B * a.H * qblocks;
  const int team = team_for(tasks);
  PerThread<Buffers> buffers(team, d2n, dvp);
  for_team(team, tasks, 1, [&](int t, int64_t task) {
    const int64_t qb = task % qblocks, bh = task / qblocks;
    const int64_t i0 = qb * kRows, i1 = std::min(a.Tq, i0 + kRows);
    ForwardRows(a, kv, bh / a.H, bh % a.H, i0, i1, out, ol, buffers[t]);
  });
}

}  // namespace gaze::kernels
