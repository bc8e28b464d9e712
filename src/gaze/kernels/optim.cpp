#include "gaze/kernels/optim.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/optim.cpp"
// foreach_target.h must come first: it re-includes this file once per SIMD target.
// clang-format off
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "gaze/kernels/simd-inl.h"
// clang-format on

HWY_BEFORE_NAMESPACE();
namespace gaze::kernels {
namespace HWY_NAMESPACE {

void AdamImpl(float* p, const float* g, float* m, float* v, size_t n, const AdamStep& s) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto b1 = hn::Set(d, s.beta1), b2 = hn::Set(d, s.beta2),
             ob1 = hn::Set(d, s.one_minus_beta1), ob2 = hn::Set(d, s.one_minus_beta2),
             eps = hn::Set(d, s.eps), wd = hn::Set(d, s.weight_decay), decay = hn::Set(d, s.decay),
             step = hn::Set(d, s.lr / s.bias_correction1),
             rbc2 = hn::Set(d, 1.0f / std::sqrt(s.bias_correction2));
  for (size_t i = 0; i < n; i += L) {
    const size_t k = std::min(L, n - i);
    auto ld = [&](const float* x) { return LoadUpTo(d, x + i, k); };
    auto st = [&](auto val, float* x) { StoreUpTo(val, d, x + i, k); };
    auto pv = ld(p), gv = ld(g);
    if (s.weight_decay != 0) {
      if (s.decoupled)
        pv = hn::Mul(pv, decay);  // AdamW: decay the weights, not the gradient
      else
        gv = hn::MulAdd(wd, pv, gv);  // Adam: L2 penalty in the gradient
    }
    const auto mv = hn::MulAdd(b1, ld(m), hn::Mul(ob1, gv));
    const auto vv = hn::MulAdd(b2, ld(v), hn::Mul(hn::Mul(ob2, gv), gv));
    // torch: denom = sqrt(v) / sqrt(bc2) + eps; p -= lr / bc1 * m / denom
    const auto denom = hn::MulAdd(hn::Sqrt(vv), rbc2, eps);
    st(mv, m);
    st(vv, v);
    st(hn::NegMulAdd(step, hn::Div(mv, denom), pv), p);
  }
}

void SgdImpl(float* p, const float* g, float* buf, size_t n, const SgdStep& s) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto lr = hn::Set(d, s.lr), mom = hn::Set(d, s.momentum),
             damp = hn::Set(d, s.one_minus_dampening), wd = hn::Set(d, s.weight_decay);
  for (size_t i = 0; i < n; i += L) {
    const size_t k = std::min(L, n - i);
    auto ld = [&](const float* x) { return LoadUpTo(d, x + i, k); };
    auto st = [&](auto val, float* x) { StoreUpTo(val, d, x + i, k); };
    const auto pv = ld(p);
    auto dp = ld(g);
    if (s.weight_decay != 0) dp = hn::MulAdd(wd, pv, dp);
    if (s.momentum != 0) {
      const auto b = s.first ? dp : hn::MulAdd(mom, ld(buf), hn::Mul(damp, dp));
      st(b, buf);
      dp = s.nesterov ? hn::MulAdd(mom, b, dp) : b;
    }
    st(hn::NegMulAdd(lr, dp, pv), p);
  }
}

void LerpImpl(float* avg, const float* p, size_t n, float w) {
  const hn::ScalableTag<float> d;
  const size_t L = hn::Lanes(d);
  const auto vw = hn::Set(d, w);
  for (size_t i = 0; i < n; i += L) {
    const size_t k = std::min(L, n - i);
    const auto a = LoadUpTo(d, avg + i, k);
    StoreUpTo(hn::MulAdd(vw, hn::Sub(LoadUpTo(d, p + i, k), a), a), d, avg + i, k);
  }
}

double SumSquaresImpl(const float* x, size_t n) {
  double acc = 0;
  for (size_t i = 0; i < n; ++i) acc += static_cast<double>(x[i]) * x[i];
  return acc;
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "gaze/core/threads.h"

namespace gaze::kernels {
HWY_EXPORT(AdamImpl);
HWY_EXPORT(SgdImpl);
HWY_EXPORT(LerpImpl);

namespace {
constexpr int64_t kGrain = 1 << 15;
}

void adam_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamStep& s) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(AdamImpl)(p + lo, g + lo, m + lo, v + lo, static_cast<size_t>(hi - lo), s);
  });
}

void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdStep& s) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(SgdImpl)
    (p + lo, g + lo, buf ? buf + lo : nullptr, static_cast<size_t>(hi - lo), s);
  });
}

void lerp_update(float* avg, const float* p, int64_t n, float w) {
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    HWY_DYNAMIC_DISPATCH(LerpImpl)(avg + lo, p + lo, static_cast<size_t>(hi - lo), w);
  });
}

double sum_squares(const float* x, int64_t n) {
  return HWY_STATIC_DISPATCH(SumSquaresImpl)(x, static_cast<size_t>(n));
}

}  // namespace gaze::kernels
#endif
