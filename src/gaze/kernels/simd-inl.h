// Shared SIMD helpers for the kernels, compiled once per Highway target.
//
// The one Highway pattern gaze uses: a kernel .cpp defines HWY_TARGET_INCLUDE to its own path,
// includes "hwy/foreach_target.h" (which re-includes the file once per target) and puts its SIMD
// code in namespace gaze::kernels::HWY_NAMESPACE; under `#if HWY_ONCE` it exports the per-target
// entry points with HWY_EXPORT and calls them through HWY_DYNAMIC_DISPATCH from plain C++
// functions. Headers like this one, included from such files, use the toggle guard below so they
// are re-expanded for every target.

#if defined(GAZE_KERNELS_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef GAZE_KERNELS_SIMD_INL_H_
#undef GAZE_KERNELS_SIMD_INL_H_
#else
#define GAZE_KERNELS_SIMD_INL_H_
#endif

#include <cmath>
#include <limits>

#include "hwy/contrib/math/math-inl.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

template <class D>
using VecT = hn::Vec<D>;

// Loads/stores the first `n` (< Lanes) elements; masked-off lanes read as zero and are not written.
template <class D, typename T>
HWY_INLINE VecT<D> LoadTail(D d, const T* p, size_t n) {
  return hn::MaskedLoad(hn::FirstN(d, n), d, p);
}
template <class D, typename T>
HWY_INLINE void StoreTail(VecT<D> v, D d, T* p, size_t n) {
  hn::BlendedStore(v, hn::FirstN(d, n), d, p);
}

// The `n` elements at p (n <= Lanes): a full vector when n == Lanes, else a tail (loops whose
// body runs for the last, partial vector too).
template <class D, typename T>
HWY_INLINE VecT<D> LoadUpTo(D d, const T* p, size_t n) {
  return n == hn::Lanes(d) ? hn::LoadU(d, p) : LoadTail(d, p, n);
}
template <class D, typename T>
HWY_INLINE void StoreUpTo(VecT<D> v, D d, T* p, size_t n) {
  if (n == hn::Lanes(d))
    hn::StoreU(v, d, p);
  else
    StoreTail(v, d, p, n);
}

template <class D>
HWY_INLINE hn::TFromD<D> SumLanes(D d, VecT<D> v) {
  return hn::GetLane(hn::SumOfLanes(d, v));
}
template <class D>
HWY_INLINE hn::TFromD<D> MaxLanes(D d, VecT<D> v) {
  return hn::GetLane(hn::MaxOfLanes(d, v));
}

// e^x with IEEE edge cases: overflow gives +inf, NaN stays NaN. Highway's Exp is only specified on
// [-max, 104] (float) / [-max, 706] (double).
template <class D>
HWY_INLINE VecT<D> ExpSafe(D d, VecT<D> x) {
  using T = hn::TFromD<D>;
  const T hi = sizeof(T) == 4 ? T(88.72283935546875) : T(709.782712893384);
  const auto big = hn::Gt(x, hn::Set(d, hi));
  const auto nan = hn::IsNaN(x);
  auto y = hn::Exp(d, hn::Min(x, hn::Set(d, hi)));
  y = hn::IfThenElse(big, hn::Set(d, std::numeric_limits<T>::infinity()), y);
  return hn::IfThenElse(nan, x, y);
}

// e^x for float32 x <= 1 (the Gaussian's exponents, softmax's shifted scores), within 2 ulp: a
// Cody-Waite reduction x = q ln 2 + r, |r| <= ln 2 / 2 (ln 2 in two parts, the first with 15
// significant bits so q ln2_hi is exact), a degree-6 polynomial in r and 2^q applied by vscalefps
// on AVX-512 (an exponent add elsewhere). About half the operations of ExpSafe, whose range checks
// these callers do not need. Results below 2^-126 flush to 0; -inf gives 0 and NaN stays NaN.
template <class D>
HWY_INLINE VecT<D> ExpFast(D d, VecT<D> x) {
  static_assert(sizeof(hn::TFromD<D>) == 4, "float32 only");
  // Max(lo, x) returns x when x is NaN (its second operand), so NaN passes through.
  const auto xc = hn::Max(hn::Set(d, -87.3f), x);  // e^-87.3 is just above 2^-126
  const auto q = hn::Round(hn::Mul(xc, hn::Set(d, 1.4426950408889634f)));
  auto r =
      hn::NegMulAdd(q, hn::Set(d, 0.693145751953125f), xc);  // ln 2 in two parts: exact q ln2_hi
  r = hn::NegMulAdd(q, hn::Set(d, 1.428606765330187e-6f), r);
  auto p = hn::Set(d, 1.0f / 720);
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 120));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 24));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 6));
  p = hn::MulAdd(p, r, hn::Set(d, 0.5f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f));
  VecT<D> y;
#if HWY_TARGET <= HWY_AVX3 && !HWY_HAVE_SCALABLE
  if constexpr (hn::MaxLanes(D()) == 16) {
    y = VecT<D>{_mm512_scalef_ps(p.raw, q.raw)};
  } else
#endif
  {
    const hn::RebindToSigned<D> di;
    y = hn::BitCast(d, hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::ConvertTo(di, q))));
  }
  // NaN explicitly: Max and the integer conversion do not carry it through on every target.
  return hn::IfThenElse(hn::IsNaN(x), x, hn::IfThenZeroElse(hn::Lt(x, hn::Set(d, -87.3f)), y));
}

// e^x for x <= 1 in the cheapest form that keeps the type's accuracy: ExpFast for float32,
// ExpSafe for float64 (which serves gradient checks).
template <class D>
HWY_INLINE VecT<D> ExpUpToOne(D d, VecT<D> x) {
  if constexpr (sizeof(hn::TFromD<D>) == 4)
    return ExpFast(d, x);
  else
    return ExpSafe(d, x);
}

// 1 / x for float32 x >= 1: the reciprocal estimate refined by one Newton step (within ~2 ulp; a
// division costs several times more). x is capped at 1e30 so that x = inf gives ~0, not the NaN
// of Newton's 2 - inf * 0; a NaN x gives 1e-30 (callers carry NaN through another operand).
template <class D>
HWY_INLINE VecT<D> ReciprocalRefined(D d, VecT<D> x) {
  static_assert(sizeof(hn::TFromD<D>) == 4, "float32 only");
  const auto capped = hn::Min(x, hn::Set(d, 1e30f));
  const auto r = hn::ApproximateReciprocal(capped);
  return hn::Mul(r, hn::NegMulAdd(capped, r, hn::Set(d, 2.0f)));
}

// Standard normal CDF Phi(x) for float: 0.5 * erfc(-x / sqrt 2), with erfc from the Chebyshev fit
// in Numerical Recipes (fractional error < 1.2e-7 for all arguments), so the left tail keeps its
// relative precision (1 + erf(x) would cancel to 0 there).
template <class D>
HWY_INLINE VecT<D> NormalCdf(D d, VecT<D> x) {
  using T = hn::TFromD<D>;
  const auto z = hn::Mul(hn::Abs(x), hn::Set(d, T(0.70710678118654752)));
  const auto den = hn::MulAdd(hn::Set(d, T(0.5)), z, hn::Set(d, T(1)));
  VecT<D> t;  // a NaN x gives NaN through z^2 below
  if constexpr (sizeof(T) == 4)
    t = ReciprocalRefined(d, den);
  else
    t = hn::Div(hn::Set(d, T(1)), den);
  auto p = hn::Set(d, T(0.17087277));
  p = hn::MulAdd(p, t, hn::Set(d, T(-0.82215223)));
  p = hn::MulAdd(p, t, hn::Set(d, T(1.48851587)));
  p = hn::MulAdd(p, t, hn::Set(d, T(-1.13520398)));
  p = hn::MulAdd(p, t, hn::Set(d, T(0.27886807)));
  p = hn::MulAdd(p, t, hn::Set(d, T(-0.18628806)));
  p = hn::MulAdd(p, t, hn::Set(d, T(0.09678418)));
  p = hn::MulAdd(p, t, hn::Set(d, T(0.37409196)));
  p = hn::MulAdd(p, t, hn::Set(d, T(1.00002368)));
  p = hn::MulAdd(p, t, hn::Set(d, T(-1.26551223)));
  const auto erfc = hn::Mul(t, ExpUpToOne(d, hn::Sub(p, hn::Mul(z, z))));  // exponent <= 0
  const auto half_erfc = hn::Mul(hn::Set(d, T(0.5)), erfc);
  // x >= 0: 1 - erfc(z)/2; x < 0: erfc(z)/2. NaN falls through to the x >= 0 branch and stays NaN.
  return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), half_erfc, hn::Sub(hn::Set(d, T(1)), half_erfc));
}

// 2^f for float32 f in [-1/2, 1/2]: a degree-6 polynomial, max relative error 1e-7.
template <class D>
HWY_INLINE VecT<D> Exp2Fraction(D d, VecT<D> f) {
  auto p = hn::Set(d, 1.534581159414669e-4f);
  p = hn::MulAdd(p, f, hn::Set(d, 1.3399931215998181e-3f));
  p = hn::MulAdd(p, f, hn::Set(d, 9.618488958635471e-3f));
  p = hn::MulAdd(p, f, hn::Set(d, 5.550328776975118e-2f));
  p = hn::MulAdd(p, f, hn::Set(d, 0.24022646890620059f));
  p = hn::MulAdd(p, f, hn::Set(d, 0.6931472057372627f));
  return hn::MulAdd(p, f, hn::Set(d, 1.0f));
}

// 2^t for float32 t >= -125 (callers clamp; below that 2^t leaves the normal range): 2^fraction
// times 2^round(t) by an exponent add. About a third of Highway's general Exp, for the
// exponentials of softmax and of GELU's epilogue.
template <class D>
HWY_INLINE VecT<D> Exp2Poly(D d, VecT<D> t) {
  const hn::RebindToSigned<D> di;
  const auto q = hn::Round(t);
  const auto p = Exp2Fraction(d, hn::Sub(t, q));  // the fraction is exact, in [-1/2, 1/2]
  return hn::BitCast(d, hn::Add(hn::BitCast(di, p), hn::ShiftLeft<23>(hn::ConvertTo(di, q))));
}

// gelu(x, approximate="tanh") = 0.5 x (1 + tanh u), written x * sigmoid(2u) with u = sqrt(2/pi) (x
// + 0.044715 x^3): the same function without the cancellation of 1 + tanh u in the left tail (where
// it would lose every digit).
template <class D>
HWY_INLINE VecT<D> GeluTanh(D d, VecT<D> v) {
  using T = hn::TFromD<D>;
  const auto u = hn::Mul(hn::Set(d, T(0.7978845608028654)),
                         hn::MulAdd(hn::Mul(hn::Set(d, T(0.044715)), v), hn::Mul(v, v), v));
  const auto one = hn::Set(d, T(1));
  return hn::Mul(v, hn::Div(one, hn::Add(one, ExpSafe(d, hn::Mul(hn::Set(d, T(-2)), u)))));
}

// ln x with IEEE edge cases: ln 0 = -inf, ln(x < 0) = NaN, ln inf = inf, NaN stays NaN.
template <class D>
HWY_INLINE VecT<D> LogSafe(D d, VecT<D> x) {
  using T = hn::TFromD<D>;
  const auto zero = hn::Zero(d);
  const auto inf = hn::Set(d, std::numeric_limits<T>::infinity());
  const auto ok = hn::And(hn::Gt(x, zero), hn::Lt(x, inf));
  auto y = hn::Log(d, hn::IfThenElse(ok, x, hn::Set(d, T(1))));
  y = hn::IfThenElse(hn::Eq(x, zero), hn::Neg(inf), y);
  y = hn::IfThenElse(hn::Eq(x, inf), inf, y);
  const auto bad = hn::Or(hn::Lt(x, zero), hn::IsNaN(x));
  return hn::IfThenElse(bad, hn::Set(d, std::numeric_limits<T>::quiet_NaN()), y);
}

// Applies y[i] = f(d, x[i]) over n elements, with a masked tail.
template <class D, typename T, class F>
HWY_INLINE void Map1(D d, const T* x, T* y, size_t n, const F& f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(d, hn::LoadU(d, x + i)), d, y + i);
  if (i < n) StoreTail(f(d, LoadTail(d, x + i, n - i)), d, y + i, n - i);
}

// out[i] = f(d, a[i], b[i], c[i]) over n elements (any of the inputs may be unused by f).
template <class D, typename T, class F>
HWY_INLINE void Map3(D d, const T* a, const T* b, const T* c, T* out, size_t n, const F& f) {
  const size_t N = hn::Lanes(d);
  size_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(f(d, hn::LoadU(d, a + i), hn::LoadU(d, b + i), hn::LoadU(d, c + i)), d, out + i);
  if (i < n) {
    const size_t r = n - i;
    StoreTail(f(d, LoadTail(d, a + i, r), LoadTail(d, b + i, r), LoadTail(d, c + i, r)), d, out + i,
              r);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#endif  // GAZE_KERNELS_SIMD_INL_H_
