// The bf16 attention forward on AMX tiles (attention_amx.h). Same walk as attention_bf16.cpp (a
// task owns up to 64 queries of one head and streams blocks of 64 keys past an online softmax), but
// both products run on tdpbf16ps, which multiplies a 16 x 32 bf16 tile by a 32 x 16 one into 16 x
// 16 fp32 accumulators. The tiles put queries on the rows: Q K^T takes query rows of feature pairs
// times the keys transposed into pairs of features by keys (packed once per call), and P V takes
// each query's probabilities, rounded to bf16 in key order, times the values in pairs of keys. The
// softmax therefore runs along rows, one query at a time, in fp32.
#include "gaze/kernels/attention_amx.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmath>
#include <limits>

#include "gaze/core/threads.h"
#include "gaze/kernels/attention_bf16-inl.h"
#include "gaze/kernels/scratch.h"

namespace gaze::kernels {
namespace {

using namespace bf16_detail;

#define GAZE_AMX                                                                \
  __attribute__((                                                               \
      target("amx-tile,amx-bf16,avx512f,avx512bw,avx512dq,avx512vl,avx512bf16," \
             "fma")))

// GCC's tile loads are asm statements that do not tell the compiler they read memory: the barrier
// keeps the stores that fill a buffer before the load that reads it.
#define GAZE_TILE_LOAD(t, p, stride)   \
  do {                                 \
    __asm__ volatile("" ::: "memory"); \
    _tile_loadd(t, p, stride);         \
  } while (0)

constexpr int64_t kPairs = 16;  // bf16 pairs in a tile row (64 bytes)

struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

// Every tile is 16 rows of 64 bytes: 16 x 16 fp32 sums, or 16 rows of 16 bf16 pairs. Tiles 0-3
// accumulate a 2 x 2 block of outputs, 4-5 hold two row tiles of the left operand and 6-7 two
// column tiles of the right one.
GAZE_AMX void ConfigureTiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  // GCC's ldtilecfg names only the first 8 bytes of the configuration as its input: the barrier
  // keeps the stores to the rest.
  __asm__ volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
}

GAZE_AMX void ReleaseTiles() {
  _tile_release();
}

// Keys of every head as [block][feature pair][key] (64 keys a block, d2p pairs, zeros beyond D and
// Tk) and values as [key pair][column] (attention_bf16.cpp's layout), converted once per call.
struct Packed {
  int64_t d2p, dvp, tkp;
  uint32_t* kt;
  uint32_t* v;
  uint32_t* keys(int64_t b, int64_t kvh, int64_t Hkv, int64_t j0) const {
    return kt + ((b * Hkv + kvh) * tkp + j0) * d2p;
  }
  uint32_t* values(int64_t b, int64_t kvh, int64_t Hkv, int64_t j0) const {
    return v + ((b * Hkv + kvh) * tkp + j0) / 2 * dvp;
  }
};

// Key block j0 of key/value head kvh in batch b: each key row to bf16 pairs (rows in `rows`, d2p
// wide), then transposed by gathering 16 keys' pair d2 at a time.
GAZE_AMX void PackBlock(const AttentionArgs<float>& a, const Packed& kv, int64_t b, int64_t kvh,
                        int64_t j0, uint32_t* rows) {
  const int64_t bc = std::max<int64_t>(0, std::min(kKeys, a.Tk - j0)), d2p = kv.d2p;
  const float* kb = a.k + b * a.k_layout.b + kvh * a.k_layout.h + j0 * a.k_layout.t;
  std::fill(rows, rows + kKeys * d2p, 0u);
  for (int64_t j = 0; j < bc; ++j) RowToBf16(kb + j * a.k_layout.t, a.D, 1.0f, rows + j * d2p);
  const __m512i lane =
      _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                         _mm512_set1_epi32(static_cast<int>(d2p)));
  uint32_t* kt = kv.keys(b, kvh, a.Hkv, j0);
  for (int64_t d2 = 0; d2 < d2p; ++d2)
    for (int64_t g = 0; g < kKeys; g += 16)
      _mm512_storeu_si512(
          kt + d2 * kKeys + g,
          _mm512_i32gather_epi32(lane, reinterpret_cast<const int*>(rows + g * d2p + d2), 4));
  uint32_t* vp = kv.values(b, kvh, a.Hkv, j0);
  const float* vb = a.v + b * a.v_layout.b + kvh * a.v_layout.h + j0 * a.v_layout.t;
  PackValues(vb, a.v_layout.t, bc, a.Dv, kv.dvp, vp);
  std::fill(vp + (bc + 1) / 2 * kv.dvp, vp + kKeys / 2 * kv.dvp, 0u);
}

struct Buffers {
  Buffers(int64_t d2p, int64_t dvp)
      : q(static_cast<size_t>(kRows * d2p)),
        pp(static_cast<size_t>(kRows * kKeys / 2)),
        vtail(static_cast<size_t>(kKeys / 2 * dvp)),
        st(static_cast<size_t>(kRows * kKeys)),
        o(static_cast<size_t>(kRows * dvp)),
        m(kRows),
        l(kRows) {}
  // Query rows of bf16 pairs; each query's probabilities as 32 key pairs; a block's value pairs
  // with the keys it may not see zeroed (see ForwardRows).
  Scratch<uint32_t> q, pp, vtail;
  Scratch<float> st;  // scores st[r * kKeys + j]
  Scratch<float> o, m, l;
};

// c (tiles 0-3) += left rows [r0, r0 + 32) times right columns [c0, c0 + 16 nc), over `steps`
// steps of 16 pairs: left row r, step s at left + r * lstride + 16 s (uint32 units); right step s,
// column c at right + 16 s * rstride + c. nc (1 or 2) column tiles.
#define GAZE_TILE_PRODUCT(left, lstride, right, rstride, r0, c0, steps, nc)         \
  for (int64_t s = 0; s < (steps); ++s) {                                           \
    GAZE_TILE_LOAD(4, (left) + (r0) * (lstride) + kPairs * s, (lstride)*4);         \
    GAZE_TILE_LOAD(5, (left) + ((r0) + 16) * (lstride) + kPairs * s, (lstride)*4);  \
    GAZE_TILE_LOAD(6, (right) + kPairs * s * (rstride) + (c0), (rstride)*4);        \
    _tile_dpbf16ps(0, 4, 6);                                                        \
    _tile_dpbf16ps(2, 5, 6);                                                        \
    if ((nc) == 2) {                                                                \
      GAZE_TILE_LOAD(7, (right) + kPairs * s * (rstride) + (c0) + 16, (rstride)*4); \
      _tile_dpbf16ps(1, 4, 7);                                                      \
      _tile_dpbf16ps(3, 5, 7);                                                      \
    }                                                                               \
  }

// Queries [i0, i1) of head h in batch b.
GAZE_AMX void ForwardRows(const AttentionArgs<float>& a, const Packed& kv, int64_t b, int64_t h,
                          int64_t i0, int64_t i1, float* out, const HeadLayout& ol, Buffers& w) {
  const int64_t kvh = h / (a.H / a.Hkv);
  const int64_t rows = i1 - i0, d2p = kv.d2p, dvp = kv.dvp, steps = d2p / kPairs;
  // The queries times scale * log2(e), so the scores are in base-2 units for Exp2. Rows beyond
  // `rows` stay zero, and so do their probabilities: they only fill the tiles.
  const float* qb = a.q + b * a.q_layout.b + h * a.q_layout.h + i0 * a.q_layout.t;
  std::fill(w.q.data(), w.q.data() + kRows * d2p, 0u);
  for (int64_t r = 0; r < rows; ++r)
    RowToBf16(qb + r * a.q_layout.t, a.D, static_cast<float>(a.scale) * kLog2e,
              w.q.data() + r * d2p);
  std::fill(w.pp.data(), w.pp.data() + kRows * kKeys / 2, 0u);
  const int64_t kend = VisibleKeyEnd(a, b, i1);
  const float ninf = -std::numeric_limits<float>::infinity();
  std::fill(w.m.data(), w.m.data() + kRows, ninf);
  std::fill(w.l.data(), w.l.data() + kRows, 0.0f);
  float* st = w.st.data();
  float* o = w.o.data();
  uint32_t* pp = w.pp.data();
  bool first = true;
  for (int64_t j0 = 0; j0 < kend; j0 += kKeys) {
    const int64_t bc = std::min(kKeys, kend - j0);
    // Scores st[r][j], in 2 x 2 blocks of tiles (the second key half only if the block reaches it).
    const uint32_t* kt = kv.keys(b, kvh, a.Hkv, j0);
    for (int64_t r0 = 0; r0 < kRows; r0 += 32)
      for (int64_t c0 = 0; c0 < bc; c0 += 32) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        GAZE_TILE_PRODUCT(w.q.data(), d2p, kt, kKeys, r0, c0, steps, 2);
        _tile_stored(0, st + r0 * kKeys + c0, kKeys * 4);
        _tile_stored(1, st + r0 * kKeys + c0 + 16, kKeys * 4);
        _tile_stored(2, st + (r0 + 16) * kKeys + c0, kKeys * 4);
        _tile_stored(3, st + (r0 + 16) * kKeys + c0 + 16, kKeys * 4);
      }
    // The online softmax, row by row: keys it may not see (beyond bc, padding, after a causal
    // query's position) read as -inf.
    __mmask16 visible[4];
    for (int v = 0; v < 4; ++v) {
      visible[v] = first_n(bc - 16 * v);
      if (a.key_padding) {
        const bool* pad = a.key_padding + b * a.Tk + j0 + 16 * v;
        for (int64_t t = 0; t < 16 && 16 * v + t < bc; ++t)
          if (pad[t]) visible[v] &= static_cast<__mmask16>(~(1u << t));
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t seen = i0 + r + a.query_offset + 1 - j0;  // causal: keys [0, seen) of the block
      __m512 s[4];
      __m512 mx = _mm512_set1_ps(ninf);
      for (int v = 0; v < 4; ++v) {
        __mmask16 see = visible[v];
        if (a.causal) see &= first_n(seen - 16 * v);
        s[v] = _mm512_mask_loadu_ps(_mm512_set1_ps(ninf), see, st + r * kKeys + 16 * v);
        mx = _mm512_max_ps(mx, s[v]);
      }
      const float m_old = w.m[static_cast<size_t>(r)];
      const float m_new = std::max(m_old, _mm512_reduce_max_ps(mx));
      // 0 stands in for -inf (no visible key yet) so that the exponents give 0, not NaN.
      const float m_safe = m_new == ninf ? 0.0f : m_new;
      const __m512 sub = _mm512_set1_ps(m_safe);
      __m512 p[4];
      for (int v = 0; v < 4; ++v) p[v] = Exp2(_mm512_sub_ps(s[v], sub));
      const float lsum =
          _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(p[0], p[1]), _mm512_add_ps(p[2], p[3])));
      _mm512_storeu_si512(pp + r * kKeys / 2, as_i(_mm512_cvtne2ps_pbh(p[1], p[0])));
      _mm512_storeu_si512(pp + r * kKeys / 2 + 16, as_i(_mm512_cvtne2ps_pbh(p[3], p[2])));
      const float alpha = std::exp2(m_old - m_safe);
      w.l[static_cast<size_t>(r)] = w.l[static_cast<size_t>(r)] * alpha + lsum;
      w.m[static_cast<size_t>(r)] = m_new;
      // What was accumulated is rescaled in place, before the tiles load it again.
      if (!first) {
        const __m512 va = _mm512_set1_ps(alpha);
        for (int64_t c = 0; c < dvp; c += 16)
          _mm512_storeu_ps(o + r * dvp + c, _mm512_mul_ps(_mm512_loadu_ps(o + r * dvp + c), va));
      }
    }
    // A block's last keys may lie beyond what its queries see but before Tk: their probabilities
    // are 0, and their values must not enter either (0 times a NaN or an infinity is NaN).
    const uint32_t* vp = kv.values(b, kvh, a.Hkv, j0);
    const int64_t vsteps = (bc + 31) / 32;
    if (bc < kKeys) {
      uint32_t* t = w.vtail.data();
      std::fill(t, t + vsteps * kPairs * dvp, 0u);
      std::copy(vp, vp + bc / 2 * dvp, t);
      if (bc % 2)
        for (int64_t c = 0; c < dvp; ++c) t[bc / 2 * dvp + c] = vp[bc / 2 * dvp + c] & 0xffffu;
      vp = t;
    }
    for (int64_t r0 = 0; r0 < kRows; r0 += 32)
      for (int64_t c0 = 0; c0 < dvp; c0 += 32) {
        const int nc = c0 + 16 < dvp ? 2 : 1;
        if (first) {
          _tile_zero(0);
          _tile_zero(1);
          _tile_zero(2);
          _tile_zero(3);
        } else {
          GAZE_TILE_LOAD(0, o + r0 * dvp + c0, dvp * 4);
          GAZE_TILE_LOAD(2, o + (r0 + 16) * dvp + c0, dvp * 4);
          if (nc == 2) {
            GAZE_TILE_LOAD(1, o + r0 * dvp + c0 + 16, dvp * 4);
            GAZE_TILE_LOAD(3, o + (r0 + 16) * dvp + c0 + 16, dvp * 4);
          }
        }
        GAZE_TILE_PRODUCT(pp, kKeys / 2, vp, dvp, r0, c0, vsteps, nc);
        _tile_stored(0, o + r0 * dvp + c0, dvp * 4);
        _tile_stored(2, o + (r0 + 16) * dvp + c0, dvp * 4);
        if (nc == 2) {
          _tile_stored(1, o + r0 * dvp + c0 + 16, dvp * 4);
          _tile_stored(3, o + (r0 + 16) * dvp + c0 + 16, dvp * 4);
        }
      }
    first = false;
  }
  StoreRows(a, b, h, i0, rows, o, dvp, w.l.data(), first, out, ol);
}

}  // namespace

bool cpu_has_amx_bf16() {
  // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE (compilers disagree on the feature names
  // __builtin_cpu_supports takes for these).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (edx >> 22 & 1) && (edx >> 24 & 1);
}

bool amx_attention_usable() {
  static const bool usable = [] {
    if (!cpu_has_amx_bf16() || !__builtin_cpu_supports("avx512bf16")) return false;
    // Linux gives a process AMX's tile data only when it asks (arch_prctl ARCH_REQ_XCOMP_PERM for
    // XFEATURE_XTILEDATA); oneDNN asks the same for its own kernels.
    constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}

void attention_forward_amx(const AttentionArgs<float>& a, float* out, const HeadLayout& ol) {
  const int64_t d2p = round_up((a.D + 1) / 2, kPairs), dvp = round_up(a.Dv, 16),
                tkp = round_up(a.Tk, kKeys);
  const int64_t kblocks = tkp / kKeys, heads = a.B * a.Hkv;
  Scratch<uint32_t> keys(static_cast<size_t>(heads * tkp * d2p)),
      values(static_cast<size_t>(heads * tkp / 2 * dvp));
  const Packed kv{d2p, dvp, tkp, keys.data(), values.data()};
  parallel_for(0, heads * kblocks, 1, [&](int64_t lo, int64_t hi) {
    Scratch<uint32_t> rows(static_cast<size_t>(kKeys * d2p));
    for (int64_t t = lo; t < hi; ++t)
      PackBlock(a, kv, t / kblocks / a.Hkv, t / kblocks % a.Hkv, t % kblocks * kKeys, rows.data());
  });
  const int64_t qblocks = (a.Tq + kRows - 1) / kRows, tasks = a.B * a.H * qblocks;
  // Each thread's buffers made before the region: an allocation failing inside it would end the
  // process instead of reaching the caller. The tiles are configured per thread inside it.
  const int nt = team_for(tasks);
  PerThread<Buffers> buffers(nt, d2p, dvp);
#pragma omp parallel num_threads(nt) if (nt > 1)
  {
    Buffers& w = buffers[omp_get_thread_num()];
    ConfigureTiles();
#pragma omp for schedule(dynamic, 1)
    for (int64_t task = 0; task < tasks; ++task) {
      const int64_t qb = task % qblocks, bh = task / qblocks;
      const int64_t i0 = qb * kRows, i1 = std::min(a.Tq, i0 + kRows);
      ForwardRows(a, kv, bh / a.H, bh % a.H, i0, i1, out, ol, w);
    }
    ReleaseTiles();
  }
}

}  // namespace gaze::kernels
