// Per-target Philox4x32-10 (see simd-inl.h for the Highway pattern): the words of consecutive
// blocks, bit-identical to gaze::philox4x32, for dropout masks that must not cost more than the
// multiply they gate. Each 64-bit lane carries one block's 32-bit counter words, so the 32x32->64
// products of a round are one MulEven per pair of words.

#if defined(GAZE_KERNELS_PHILOX_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GAZE_KERNELS_PHILOX_INL_H_
#undef GAZE_KERNELS_PHILOX_INL_H_
#else
#define GAZE_KERNELS_PHILOX_INL_H_
#endif

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "gaze/core/rng.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out[4*i .. 4*i+3] = philox4x32(seed, stream, first_block + i) for i in [0, n_blocks).
inline void PhiloxWords(uint64_t seed, uint64_t stream, uint64_t first_block, int64_t n_blocks,
                        uint32_t* out) {
#if HWY_TARGET == HWY_SCALAR
  for (int64_t i = 0; i < n_blocks; ++i) {
    const auto w = philox4x32(seed, stream, first_block + static_cast<uint64_t>(i));
    std::memcpy(out + 4 * i, w.data(), sizeof(w));
  }
#else
  const hn::ScalableTag<uint64_t> d;
  const hn::Repartition<uint32_t, decltype(d)> d32;
  using V = hn::Vec<decltype(d)>;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const V low = hn::Set(d, 0xFFFFFFFFull);
  const V m0 = hn::Set(d, 0xD2511F53ull), m1 = hn::Set(d, 0xCD9E8D57ull);
  const V lane = hn::Iota(d, 0);
  // One block group: N blocks, one per 64-bit lane, c1/c3 in the low halves.
  struct Group {
    V c0, c1, c2, c3;
  };
  auto start = [&](int64_t i) {
    const V block = hn::Add(hn::Set(d, first_block + static_cast<uint64_t>(i)), lane);
    return Group{hn::And(block, low), hn::ShiftRight<32>(block), hn::Set(d, stream & 0xFFFFFFFFull),
                 hn::Set(d, stream >> 32)};
  };
  auto round = [&](Group& g, V k0, V k1) {
    const V p0 = hn::MulEven(hn::BitCast(d32, g.c0), hn::BitCast(d32, m0));
    const V p1 = hn::MulEven(hn::BitCast(d32, g.c2), hn::BitCast(d32, m1));
    g.c0 = hn::Xor(hn::Xor(hn::ShiftRight<32>(p1), g.c1), k0);
    g.c2 = hn::Xor(hn::Xor(hn::ShiftRight<32>(p0), g.c3), k1);
    g.c1 = hn::And(p1, low);
    g.c3 = hn::And(p0, low);
  };
  auto keys = [&](int r) {
    return std::pair{hn::Set(d, uint64_t{static_cast<uint32_t>(seed) + r * 0x9E3779B9u}),
                     hn::Set(d, uint64_t{static_cast<uint32_t>(seed >> 32) + r * 0xBB67AE85u})};
  };
  // Little-endian words c0, c1 | c2, c3 of each block, blocks in order.
  auto store = [&](const Group& g, uint64_t* dst) {
    hn::StoreInterleaved2(hn::Or(g.c0, hn::ShiftLeft<32>(g.c1)),
                          hn::Or(g.c2, hn::ShiftLeft<32>(g.c3)), d, dst);
  };
  int64_t i = 0;
  // Four independent groups per pass: a round is a chain of dependent multiplies, so one group
  // alone would leave the multiplier idle most of the time.
  for (; i + 4 * N <= n_blocks; i += 4 * N) {
    Group a = start(i), b = start(i + N), c = start(i + 2 * N), e = start(i + 3 * N);
    for (int r = 0; r < 10; ++r) {
      const auto [k0, k1] = keys(r);
      round(a, k0, k1), round(b, k0, k1), round(c, k0, k1), round(e, k0, k1);
    }
    uint64_t* dst = reinterpret_cast<uint64_t*>(out + 4 * i);
    store(a, dst), store(b, dst + 2 * N), store(c, dst + 4 * N), store(e, dst + 6 * N);
  }
  HWY_ALIGN uint64_t tail[2 * HWY_MAX_BYTES / sizeof(uint64_t)];
  for (; i < n_blocks; i += N) {
    Group a = start(i);
    for (int r = 0; r < 10; ++r) {
      const auto [k0, k1] = keys(r);
      round(a, k0, k1);
    }
    if (i + N <= n_blocks) {
      store(a, reinterpret_cast<uint64_t*>(out + 4 * i));
    } else {
      store(a, tail);
      std::memcpy(out + 4 * i, tail, static_cast<size_t>(n_blocks - i) * 4 * sizeof(uint32_t));
    }
  }
#endif
}

// The words of elements [first, first + n) of a stream whose element e uses word e % 4 of block
// first_block + e / 4: returns a pointer to n words inside buf, which must hold n + 8.
inline const uint32_t* PhiloxRange(uint64_t seed, uint64_t stream, uint64_t first_block,
                                   uint64_t first, int64_t n, uint32_t* buf) {
  const uint64_t b0 = first / 4, b1 = (first + static_cast<uint64_t>(n) + 3) / 4;
  PhiloxWords(seed, stream, first_block + b0, static_cast<int64_t>(b1 - b0), buf);
  return buf + first % 4;
}

// Keep/drop threshold on the 24 random bits: uniform_float(w) < p <=> (w >> 8) < DropThreshold(p).
inline uint32_t DropThreshold(double p) {
  const double t = std::ceil(p * 0x1.0p24);
  return t >= 0x1.0p24 ? (1u << 24) : static_cast<uint32_t>(t);
}

// y[i] = x[i] * (dropped ? 0 : scale), dropped <=> (w[i] >> 8) < threshold. A multiply, never a
// select of 0, so a NaN input stays NaN as in torch; x and y may alias. With keep, bit i % 8 of
// keep[i / 8] records whether element i was kept (the bytes are overwritten, not or-ed).
template <typename T>
void ApplyDropout(const T* x, T* y, const uint32_t* w, int64_t n, uint32_t threshold, T scale,
                  uint8_t* keep = nullptr) {
  int64_t i = 0;
#if HWY_TARGET != HWY_SCALAR
  if constexpr (sizeof(T) == 4) {
    const hn::ScalableTag<float> df;
    const hn::RebindToSigned<decltype(df)> di;
    const hn::RebindToUnsigned<decltype(df)> du;
    const int64_t N = static_cast<int64_t>(hn::Lanes(df));
    const auto vscale = hn::Set(df, scale);
    const auto vthr = hn::Set(di, static_cast<int32_t>(threshold));
    if (N % 8 == 0 || !keep) {  // the mask bits of a vector fill whole bytes
      for (; i + N <= n; i += N) {
        const auto bits = hn::BitCast(di, hn::ShiftRight<8>(hn::LoadU(du, w + i)));
        const auto drop = hn::RebindMask(df, hn::Lt(bits, vthr));
        hn::StoreU(hn::Mul(hn::LoadU(df, x + i), hn::IfThenZeroElse(drop, vscale)), df, y + i);
        if (keep) hn::StoreMaskBits(df, hn::Not(drop), keep + i / 8);
      }
    }
  }
#endif
  for (; i < n; ++i) {
    const bool kept = (w[i] >> 8) >= threshold;
    y[i] = x[i] * (scale * static_cast<T>(kept));
    if (keep) {
      uint8_t& byte = keep[i / 8];
      const auto bit = static_cast<uint8_t>(1u << (i % 8));
      byte = static_cast<uint8_t>(i % 8 == 0 ? 0 : byte & ~bit) | (kept ? bit : 0);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#endif  // GAZE_KERNELS_PHILOX_INL_H_
