#include "gaze/kernels/rnn.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/rnn.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/simd-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

template <class D>
HWY_INLINE VecT<D> Sigmoid(D d, VecT<D> x) {
  const auto one = hn::Set(d, hn::TFromD<D>(1));
  return hn::Div(one, hn::Add(one, ExpSafe(d, hn::Neg(x))));
}

// One batch row of the LSTM cell.
template <typename T>
void LstmRowImpl(const T* xg, const T* hg, const T* c_prev, size_t H, T* act, T* h, T* c) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  for (size_t k = 0; k < H; k += L) {
    const size_t n = std::min(L, H - k);
    const auto i = Sigmoid(d, hn::Add(LoadUpTo(d, xg + k, n), LoadUpTo(d, hg + k, n)));
    const auto f = Sigmoid(d, hn::Add(LoadUpTo(d, xg + H + k, n), LoadUpTo(d, hg + H + k, n)));
    const auto g =
        hn::Tanh(d, hn::Add(LoadUpTo(d, xg + 2 * H + k, n), LoadUpTo(d, hg + 2 * H + k, n)));
    const auto o =
        Sigmoid(d, hn::Add(LoadUpTo(d, xg + 3 * H + k, n), LoadUpTo(d, hg + 3 * H + k, n)));
    const auto cn = hn::MulAdd(f, LoadUpTo(d, c_prev + k, n), hn::Mul(i, g));
    StoreUpTo(i, d, act + k, n);
    StoreUpTo(f, d, act + H + k, n);
    StoreUpTo(g, d, act + 2 * H + k, n);
    StoreUpTo(o, d, act + 3 * H + k, n);
    StoreUpTo(cn, d, c + k, n);
    StoreUpTo(hn::Mul(o, hn::Tanh(d, cn)), d, h + k, n);
  }
}

template <typename T>
void LstmRowBackwardImpl(const T* act, const T* c_prev, const T* c, const T* dh, const T* dc,
                         size_t H, T* dg, T* dc_prev) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  const auto one = hn::Set(d, T(1));
  for (size_t k = 0; k < H; k += L) {
    const size_t n = std::min(L, H - k);
    const auto i = LoadUpTo(d, act + k, n), f = LoadUpTo(d, act + H + k, n),
               g = LoadUpTo(d, act + 2 * H + k, n), o = LoadUpTo(d, act + 3 * H + k, n);
    const auto tc = hn::Tanh(d, LoadUpTo(d, c + k, n));
    const auto dhv = LoadUpTo(d, dh + k, n);
    // dc_total = dc + dh o (1 - tanh(c)^2)
    const auto dct =
        hn::MulAdd(hn::Mul(dhv, o), hn::NegMulAdd(tc, tc, one), LoadUpTo(d, dc + k, n));
    StoreUpTo(hn::Mul(hn::Mul(dct, g), hn::Mul(i, hn::Sub(one, i))), d, dg + k, n);  // di
    StoreUpTo(hn::Mul(hn::Mul(dct, LoadUpTo(d, c_prev + k, n)), hn::Mul(f, hn::Sub(one, f))), d,
              dg + H + k,
              n);                                                                             // df
    StoreUpTo(hn::Mul(hn::Mul(dct, i), hn::NegMulAdd(g, g, one)), d, dg + 2 * H + k, n);      // dg
    StoreUpTo(hn::Mul(hn::Mul(dhv, tc), hn::Mul(o, hn::Sub(one, o))), d, dg + 3 * H + k, n);  // do
    StoreUpTo(hn::Mul(dct, f), d, dc_prev + k, n);
  }
}

template <typename T>
void GruRowImpl(const T* xg, const T* hg, const T* h_prev, size_t H, T* act, T* h) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  for (size_t k = 0; k < H; k += L) {
    const size_t n = std::min(L, H - k);
    const auto r = Sigmoid(d, hn::Add(LoadUpTo(d, xg + k, n), LoadUpTo(d, hg + k, n)));
    const auto z = Sigmoid(d, hn::Add(LoadUpTo(d, xg + H + k, n), LoadUpTo(d, hg + H + k, n)));
    const auto nn =
        hn::Tanh(d, hn::MulAdd(r, LoadUpTo(d, hg + 2 * H + k, n), LoadUpTo(d, xg + 2 * H + k, n)));
    StoreUpTo(r, d, act + k, n);
    StoreUpTo(z, d, act + H + k, n);
    StoreUpTo(nn, d, act + 2 * H + k, n);
    // (1 - z) n + z h_prev = n + z (h_prev - n)
    StoreUpTo(hn::MulAdd(z, hn::Sub(LoadUpTo(d, h_prev + k, n), nn), nn), d, h + k, n);
  }
}

template <typename T>
void GruRowBackwardImpl(const T* act, const T* hg, const T* h_prev, const T* dh, size_t H, T* dxg,
                        T* dhg, T* dh_prev) {
  const hn::ScalableTag<T> d;
  const size_t L = hn::Lanes(d);
  const auto one = hn::Set(d, T(1));
  for (size_t k = 0; k < H; k += L) {
    const size_t n = std::min(L, H - k);
    const auto r = LoadUpTo(d, act + k, n), z = LoadUpTo(d, act + H + k, n),
               nn = LoadUpTo(d, act + 2 * H + k, n);
    const auto dhv = LoadUpTo(d, dh + k, n), hp = LoadUpTo(d, h_prev + k, n),
               hn_ = LoadUpTo(d, hg + 2 * H + k, n);
    const auto dnpre =
        hn::Mul(hn::Mul(dhv, hn::Sub(one, z)), hn::NegMulAdd(nn, nn, one));  // through tanh
    const auto dz = hn::Mul(hn::Mul(dhv, hn::Sub(hp, nn)), hn::Mul(z, hn::Sub(one, z)));
    const auto dr = hn::Mul(hn::Mul(dnpre, hn_), hn::Mul(r, hn::Sub(one, r)));
    StoreUpTo(dr, d, dxg + k, n);
    StoreUpTo(dz, d, dxg + H + k, n);
    StoreUpTo(dnpre, d, dxg + 2 * H + k, n);
    StoreUpTo(dr, d, dhg + k, n);
    StoreUpTo(dz, d, dhg + H + k, n);
    StoreUpTo(hn::Mul(dnpre, r), d, dhg + 2 * H + k, n);
    StoreUpTo(hn::Mul(dhv, z), d, dh_prev + k, n);
  }
}

#define GAZE_RNN_EXPORTS(T, S)                                                                     \
  void LstmRow##S(const T* xg, const T* hg, const T* cp, size_t H, T* a, T* h, T* c) {             \
    LstmRowImpl(xg, hg, cp, H, a, h, c);                                                           \
  }                                                                                                \
  void LstmRowBackward##S(const T* a, const T* cp, const T* c, const T* dh, const T* dc, size_t H, \
                          T* dg, T* dcp) {                                                         \
    LstmRowBackwardImpl(a, cp, c, dh, dc, H, dg, dcp);                                             \
  }                                                                                                \
  void GruRow##S(const T* xg, const T* hg, const T* hp, size_t H, T* a, T* h) {                    \
    GruRowImpl(xg, hg, hp, H, a, h);                                                               \
  }                                                                                                \
  void GruRowBackward##S(const T* a, const T* hg, const T* hp, const T* dh, size_t H, T* dxg,      \
                         T* dhg, T* dhp) {                                                         \
    GruRowBackwardImpl(a, hg, hp, dh, H, dxg, dhg, dhp);                                           \
  }
GAZE_RNN_EXPORTS(float, F32)
GAZE_RNN_EXPORTS(double, F64)
#undef GAZE_RNN_EXPORTS

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cstring>

#include "gaze/core/threads.h"
#include "gaze/kernels/dispatch.h"

namespace gaze::kernels {

HWY_EXPORT(LstmRowF32);
HWY_EXPORT(LstmRowF64);
HWY_EXPORT(LstmRowBackwardF32);
HWY_EXPORT(LstmRowBackwardF64);
HWY_EXPORT(GruRowF32);
HWY_EXPORT(GruRowF64);
HWY_EXPORT(GruRowBackwardF32);
HWY_EXPORT(GruRowBackwardF64);

namespace {
constexpr int64_t kRowsGrain = 8;
}

template <typename T>
void lstm_cell(const T* xg, const T* hg, const T* h_prev, const T* c_prev, const bool* valid,
               int64_t B, int64_t H, T* act, T* h, T* c) {
  auto row = pick<T>(HWY_DYNAMIC_DISPATCH(LstmRowF32), HWY_DYNAMIC_DISPATCH(LstmRowF64));
  parallel_for(0, B, kRowsGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      if (valid && !valid[b]) {  // past the sequence's end: carry the state
        std::memcpy(h + b * H, h_prev + b * H, sizeof(T) * H);
        std::memcpy(c + b * H, c_prev + b * H, sizeof(T) * H);
        std::memset(act + b * 4 * H, 0, sizeof(T) * 4 * H);
        continue;
      }
      row(xg + b * 4 * H, hg + b * 4 * H, c_prev + b * H, static_cast<size_t>(H), act + b * 4 * H,
          h + b * H, c + b * H);
    }
  });
}

template <typename T>
void lstm_cell_backward(const T* act, const T* c_prev, const T* c, const bool* valid, const T* dh,
                        const T* dc, int64_t B, int64_t H, T* dgates, T* dc_prev, T* dh_prev) {
  auto row =
      pick<T>(HWY_DYNAMIC_DISPATCH(LstmRowBackwardF32), HWY_DYNAMIC_DISPATCH(LstmRowBackwardF64));
  parallel_for(0, B, kRowsGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      if (valid && !valid[b]) {
        std::memset(dgates + b * 4 * H, 0, sizeof(T) * 4 * H);
        std::memcpy(dc_prev + b * H, dc + b * H, sizeof(T) * H);
        std::memcpy(dh_prev + b * H, dh + b * H, sizeof(T) * H);
        continue;
      }
      row(act + b * 4 * H, c_prev + b * H, c + b * H, dh + b * H, dc + b * H,
          static_cast<size_t>(H), dgates + b * 4 * H, dc_prev + b * H);
      std::memset(dh_prev + b * H, 0, sizeof(T) * H);
    }
  });
}

template <typename T>
void gru_cell(const T* xg, const T* hg, const T* h_prev, const bool* valid, int64_t B, int64_t H,
              T* act, T* h) {
  auto row = pick<T>(HWY_DYNAMIC_DISPATCH(GruRowF32), HWY_DYNAMIC_DISPATCH(GruRowF64));
  parallel_for(0, B, kRowsGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      if (valid && !valid[b]) {
        std::memcpy(h + b * H, h_prev + b * H, sizeof(T) * H);
        std::memset(act + b * 3 * H, 0, sizeof(T) * 3 * H);
        continue;
      }
      row(xg + b * 3 * H, hg + b * 3 * H, h_prev + b * H, static_cast<size_t>(H), act + b * 3 * H,
          h + b * H);
    }
  });
}

template <typename T>
void gru_cell_backward(const T* act, const T* hg, const T* h_prev, const bool* valid, const T* dh,
                       int64_t B, int64_t H, T* dxg, T* dhg, T* dh_prev) {
  auto row =
      pick<T>(HWY_DYNAMIC_DISPATCH(GruRowBackwardF32), HWY_DYNAMIC_DISPATCH(GruRowBackwardF64));
  parallel_for(0, B, kRowsGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) {
      if (valid && !valid[b]) {
        std::memset(dxg + b * 3 * H, 0, sizeof(T) * 3 * H);
        std::memset(dhg + b * 3 * H, 0, sizeof(T) * 3 * H);
        std::memcpy(dh_prev + b * H, dh + b * H, sizeof(T) * H);
        continue;
      }
      row(act + b * 3 * H, hg + b * 3 * H, h_prev + b * H, dh + b * H, static_cast<size_t>(H),
          dxg + b * 3 * H, dhg + b * 3 * H, dh_prev + b * H);
    }
  });
}

#define GAZE_INSTANTIATE(T)                                                                        \
  template void lstm_cell<T>(const T*, const T*, const T*, const T*, const bool*, int64_t,         \
                             int64_t, T*, T*, T*);                                                 \
  template void lstm_cell_backward<T>(const T*, const T*, const T*, const bool*, const T*,         \
                                      const T*, int64_t, int64_t, T*, T*, T*);                     \
  template void gru_cell<T>(const T*, const T*, const T*, const bool*, int64_t, int64_t, T*, T*);  \
  template void gru_cell_backward<T>(const T*, const T*, const T*, const bool*, const T*, int64_t, \
                                     int64_t, T*, T*, T*);
GAZE_INSTANTIATE(float)
GAZE_INSTANTIATE(double)
#undef GAZE_INSTANTIATE

}  // namespace gaze::kernels
#endif  // HWY_ONCE
