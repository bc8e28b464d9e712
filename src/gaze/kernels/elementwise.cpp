#include "gaze/kernels/elementwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "gaze/kernels/elementwise.cpp"
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
HWY_INLINE VecT<D> NormalPdf(D d, VecT<D> x) {
  using T = hn::TFromD<D>;
  return hn::Mul(hn::Set(d, T(0.3989422804014327)),
                 ExpUpToOne(d, hn::Mul(hn::Set(d, T(-0.5)), hn::Mul(x, x))));
}

constexpr double kSqrt2OverPi = 0.7978845608028654, kGeluC = 0.044715;

template <typename T>
void UnaryImpl(int op, const T* x, T* y, size_t n) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  switch (static_cast<UnaryOp>(op)) {
    case UnaryOp::relu:  // NaN < 0 is false, so NaN propagates as in torch.relu
      return Map1(d, x, y, n,
                  [](auto d, V v) { return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v); });
    case UnaryOp::gelu:
      if constexpr (sizeof(T) == 8) {  // float64 serves gradient checks: use libm's exact erfc
        for (size_t i = 0; i < n; ++i) y[i] = x[i] * 0.5 * std::erfc(-x[i] * M_SQRT1_2);
        return;
      } else {
        return Map1(d, x, y, n, [](auto d, V v) { return hn::Mul(v, NormalCdf(d, v)); });
      }
    case UnaryOp::gelu_tanh:
      return Map1(d, x, y, n, [](auto d, V v) { return GeluTanh(d, v); });
    case UnaryOp::tanh:
      return Map1(d, x, y, n, [](auto d, V v) { return hn::Tanh(d, v); });
    case UnaryOp::sigmoid:
      return Map1(d, x, y, n, [](auto d, V v) {
        const auto one = hn::Set(d, T(1));
        return hn::Div(one, hn::Add(one, ExpSafe(d, hn::Neg(v))));
      });
    case UnaryOp::exp:
      return Map1(d, x, y, n, [](auto d, V v) { return ExpSafe(d, v); });
    case UnaryOp::log:
      return Map1(d, x, y, n, [](auto d, V v) { return LogSafe(d, v); });
    case UnaryOp::neg:
      return Map1(d, x, y, n, [](auto d, V v) { return hn::Neg(v); });
    case UnaryOp::sqrt:
      return Map1(d, x, y, n, [](auto d, V v) { return hn::Sqrt(v); });
    case UnaryOp::abs:
      return Map1(d, x, y, n, [](auto d, V v) { return hn::Abs(v); });
    case UnaryOp::reciprocal:
      return Map1(d, x, y, n, [](auto d, V v) { return hn::Div(hn::Set(d, T(1)), v); });
  }
}

template <typename T>
void UnaryBackwardImpl(int op, const T* x, const T* y, const T* gy, T* gx, size_t n) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  switch (static_cast<UnaryOp>(op)) {
    case UnaryOp::relu:  // torch: grad where result > 0 (NaN results pass the gradient through)
      return Map3(d, y, gy, gy, gx, n, [](auto d, V yv, V g, V) {
        return hn::IfThenZeroElse(hn::Le(yv, hn::Zero(d)), g);
      });
    case UnaryOp::gelu:
      if constexpr (sizeof(T) == 8) {
        for (size_t i = 0; i < n; ++i) {
          const double cdf = 0.5 * std::erfc(-x[i] * M_SQRT1_2);
          const double pdf = 0.3989422804014327 * std::exp(-0.5 * x[i] * x[i]);
          gx[i] = gy[i] * (cdf + x[i] * pdf);
        }
        return;
      } else {
        return Map3(d, x, gy, gy, gx, n, [](auto d, V v, V g, V) {
          return hn::Mul(g, hn::MulAdd(v, NormalPdf(d, v), NormalCdf(d, v)));
        });
      }
    case UnaryOp::gelu_tanh:
      // d/dx [x s(2u)] = s + 2 x s (1 - s) u',  u' = sqrt(2/pi) (1 + 3c x^2)
      return Map3(d, x, gy, gy, gx, n, [](auto d, V v, V g, V) {
        const auto one = hn::Set(d, T(1));
        const auto x2 = hn::Mul(v, v);
        const auto u = hn::Mul(hn::Set(d, T(kSqrt2OverPi)),
                               hn::MulAdd(hn::Mul(hn::Set(d, T(kGeluC)), v), x2, v));
        const auto s = hn::Div(one, hn::Add(one, ExpSafe(d, hn::Mul(hn::Set(d, T(-2)), u))));
        const auto du =
            hn::Mul(hn::Set(d, T(kSqrt2OverPi)), hn::MulAdd(hn::Set(d, T(3 * kGeluC)), x2, one));
        const auto right = hn::Mul(hn::Mul(hn::Add(v, v), hn::Mul(s, hn::Sub(one, s))), du);
        return hn::Mul(g, hn::Add(s, right));
      });
    case UnaryOp::tanh:  // 1 - y^2
      return Map3(d, y, gy, gy, gx, n, [](auto d, V yv, V g, V) {
        return hn::Mul(g, hn::NegMulAdd(yv, yv, hn::Set(d, T(1))));
      });
    case UnaryOp::sigmoid:  // y (1 - y)
      return Map3(d, y, gy, gy, gx, n, [](auto d, V yv, V g, V) {
        return hn::Mul(g, hn::Mul(yv, hn::Sub(hn::Set(d, T(1)), yv)));
      });
    case UnaryOp::exp:
      return Map3(d, y, gy, gy, gx, n, [](auto, V yv, V g, V) { return hn::Mul(g, yv); });
    case UnaryOp::log:
      return Map3(d, x, gy, gy, gx, n, [](auto, V v, V g, V) { return hn::Div(g, v); });
    case UnaryOp::neg:
      return Map3(d, gy, gy, gy, gx, n, [](auto, V g, V, V) { return hn::Neg(g); });
    case UnaryOp::sqrt:  // 1 / (2 y)
      return Map3(d, y, gy, gy, gx, n,
                  [](auto d, V yv, V g, V) { return hn::Div(g, hn::Add(yv, yv)); });
    case UnaryOp::abs:  // sign(x), with sign(0) = 0 as in torch
      return Map3(d, x, gy, gy, gx, n, [](auto d, V v, V g, V) {
        const auto zero = hn::Zero(d);
        const auto s = hn::IfThenElse(hn::Gt(v, zero), hn::Set(d, T(1)),
                                      hn::IfThenElse(hn::Lt(v, zero), hn::Set(d, T(-1)), zero));
        return hn::Mul(g, s);
      });
    case UnaryOp::reciprocal:  // -y^2
      return Map3(d, y, gy, gy, gx, n,
                  [](auto, V yv, V g, V) { return hn::Neg(hn::Mul(g, hn::Mul(yv, yv))); });
  }
}

// One contiguous run of a broadcast binary op: a and b advance by sa, sb in {0, 1}.
template <typename T>
void BinaryRunImpl(int op, const T* a, int sa, const T* b, int sb, T* out, size_t n) {
  const hn::ScalableTag<T> d;
  using V = VecT<decltype(d)>;
  const size_t N = hn::Lanes(d);
  auto apply = [op](V x, V y) {
    switch (static_cast<BinaryOp>(op)) {
      case BinaryOp::add:
        return hn::Add(x, y);
      case BinaryOp::sub:
        return hn::Sub(x, y);
      case BinaryOp::mul:
        return hn::Mul(x, y);
      case BinaryOp::div:
        return hn::Div(x, y);
      case BinaryOp::first:
        return x;
    }
    return x;
  };
  const V as = hn::Set(d, a[0]), bs = hn::Set(d, b[0]);
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const V x = sa ? hn::LoadU(d, a + i) : as;
    const V y = sb ? hn::LoadU(d, b + i) : bs;
    hn::StoreU(apply(x, y), d, out + i);
  }
  if (i < n) {
    const size_t r = n - i;
    const V x = sa ? LoadTail(d, a + i, r) : as;
    const V y = sb ? LoadTail(d, b + i, r) : bs;
    StoreTail(apply(x, y), d, out + i, r);
  }
}

template <typename T>
void AffineImpl(const T* x, T* y, size_t n, T scale, T shift) {
  const hn::ScalableTag<T> d;
  const auto s = hn::Set(d, scale), b = hn::Set(d, shift);
  Map1(d, x, y, n, [&](auto, VecT<decltype(d)> v) { return hn::MulAdd(v, s, b); });
}

template <typename T>
void AxpyImpl(T* y, T a, const T* x, size_t n) {
  const hn::ScalableTag<T> d;
  const auto av = hn::Set(d, a);
  Map3(d, x, y, y, y, n, [&](auto, VecT<decltype(d)> xv, VecT<decltype(d)> yv, VecT<decltype(d)>) {
    return hn::MulAdd(av, xv, yv);
  });
}

// Plain functions for HWY_EXPORT (it cannot export templates).
void UnaryF32(int op, const float* x, float* y, size_t n) {
  UnaryImpl(op, x, y, n);
}
void UnaryF64(int op, const double* x, double* y, size_t n) {
  UnaryImpl(op, x, y, n);
}
void UnaryBackwardF32(int op, const float* x, const float* y, const float* gy, float* gx,
                      size_t n) {
  UnaryBackwardImpl(op, x, y, gy, gx, n);
}
void UnaryBackwardF64(int op, const double* x, const double* y, const double* gy, double* gx,
                      size_t n) {
  UnaryBackwardImpl(op, x, y, gy, gx, n);
}
void BinaryRunF32(int op, const float* a, int sa, const float* b, int sb, float* o, size_t n) {
  BinaryRunImpl(op, a, sa, b, sb, o, n);
}
void BinaryRunF64(int op, const double* a, int sa, const double* b, int sb, double* o, size_t n) {
  BinaryRunImpl(op, a, sa, b, sb, o, n);
}
void AffineF32(const float* x, float* y, size_t n, float s, float b) {
  AffineImpl(x, y, n, s, b);
}
void AffineF64(const double* x, double* y, size_t n, double s, double b) {
  AffineImpl(x, y, n, s, b);
}
void AxpyF32(float* y, float a, const float* x, size_t n) {
  AxpyImpl(y, a, x, n);
}
void AxpyF64(double* y, double a, const double* x, size_t n) {
  AxpyImpl(y, a, x, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace gaze::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <cmath>
#include "gaze/kernels/dispatch.h"

#include "gaze/core/threads.h"

namespace gaze::kernels {

HWY_EXPORT(UnaryF32);
HWY_EXPORT(UnaryF64);
HWY_EXPORT(UnaryBackwardF32);
HWY_EXPORT(UnaryBackwardF64);
HWY_EXPORT(BinaryRunF32);
HWY_EXPORT(BinaryRunF64);
HWY_EXPORT(AffineF32);
HWY_EXPORT(AffineF64);
HWY_EXPORT(AxpyF32);
HWY_EXPORT(AxpyF64);

namespace {
constexpr int64_t kGrain =
    1 << 15;  // elements per thread below which threads cost more than they save

}  // namespace

template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n) {
  auto fn = pick<T>(HWY_DYNAMIC_DISPATCH(UnaryF32), HWY_DYNAMIC_DISPATCH(UnaryF64));
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    fn(static_cast<int>(op), x + lo, y + lo, static_cast<size_t>(hi - lo));
  });
}

template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n) {
  auto fn = pick<T>(HWY_DYNAMIC_DISPATCH(UnaryBackwardF32), HWY_DYNAMIC_DISPATCH(UnaryBackwardF64));
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    fn(static_cast<int>(op), x ? x + lo : nullptr, y ? y + lo : nullptr, gy + lo, gx + lo,
       static_cast<size_t>(hi - lo));
  });
}

template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out,
            const Shape& so) {
  const int64_t total = so.numel();
  if (total == 0) return;
  // Per-dimension strides of a and b over the output index space (0 where broadcast), then merge
  // adjacent dimensions that are contiguous for both, so the inner run is as long as possible.
  const int nd = so.ndim();
  int64_t size[Shape::kMaxDims], st_a[Shape::kMaxDims], st_b[Shape::kMaxDims];
  {
    int64_t acc_a = 1, acc_b = 1;
    for (int i = nd - 1; i >= 0; --i) {
      const int ia = sa.ndim() - nd + i, ib = sb.ndim() - nd + i;
      const int64_t da = ia >= 0 ? sa[ia] : 1, db = ib >= 0 ? sb[ib] : 1;
      size[i] = so[i];
      st_a[i] = (da == 1 && so[i] != 1) ? 0 : acc_a;
      st_b[i] = (db == 1 && so[i] != 1) ? 0 : acc_b;
      acc_a *= da;
      acc_b *= db;
    }
  }
  int m = 0;  // merged dims, innermost last
  int64_t msize[Shape::kMaxDims], ma[Shape::kMaxDims], mb[Shape::kMaxDims];
  for (int i = 0; i < nd; ++i) {
    if (size[i] == 1) continue;
    if (m > 0 && ma[m - 1] == st_a[i] * size[i] && mb[m - 1] == st_b[i] * size[i]) {
      msize[m - 1] *= size[i];
      ma[m - 1] = st_a[i];
      mb[m - 1] = st_b[i];
    } else {
      msize[m] = size[i];
      ma[m] = st_a[i];
      mb[m] = st_b[i];
      ++m;
    }
  }
  if (m == 0) {  // a single element
    msize[0] = 1;
    ma[0] = mb[0] = 1;
    m = 1;
  }
  auto run = pick<T>(HWY_DYNAMIC_DISPATCH(BinaryRunF32), HWY_DYNAMIC_DISPATCH(BinaryRunF64));
  const int64_t inner = msize[m - 1];
  const int ia = ma[m - 1] != 0, ib = mb[m - 1] != 0;
  // Work items: (outer index, chunk of the inner run); each thread walks a contiguous item range.
  const int64_t chunk = std::min<int64_t>(inner, 1 << 14);
  const int64_t chunks = (inner + chunk - 1) / chunk;
  const int64_t outer = total / inner;
  const int64_t items = outer * chunks;
  const int64_t grain = std::max<int64_t>(1, kGrain / chunk);
  parallel_for(0, items, grain, [&](int64_t lo, int64_t hi) {
    int64_t idx[Shape::kMaxDims] = {};
    int64_t o = lo / chunks, c = lo % chunks;
    int64_t off_a = 0, off_b = 0;
    for (int i = m - 2; i >= 0; --i) {
      idx[i] = o % msize[i];
      o /= msize[i];
      off_a += idx[i] * ma[i];
      off_b += idx[i] * mb[i];
    }
    int64_t out_row = (lo / chunks) * inner;
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t s = c * chunk, len = std::min(chunk, inner - s);
      run(static_cast<int>(op), a + off_a + s * ia, ia, b + off_b + s * ib, ib, out + out_row + s,
          static_cast<size_t>(len));
      if (++c == chunks) {
        c = 0;
        out_row += inner;
        for (int i = m - 2; i >= 0; --i) {  // odometer over the outer dims
          off_a += ma[i];
          off_b += mb[i];
          if (++idx[i] < msize[i]) break;
          off_a -= ma[i] * msize[i];
          off_b -= mb[i] * msize[i];
          idx[i] = 0;
        }
      }
    }
  });
}

template <typename T>
void affine(const T* x, T* y, int64_t n, T scale, T shift) {
  auto fn = pick<T>(HWY_DYNAMIC_DISPATCH(AffineF32), HWY_DYNAMIC_DISPATCH(AffineF64));
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    fn(x + lo, y + lo, static_cast<size_t>(hi - lo), scale, shift);
  });
}

template <typename T>
void add_inplace(T* y, const T* x, int64_t n) {
  axpy(y, T(1), x, n);
}

template <typename T>
void axpy(T* y, T a, const T* x, int64_t n) {
  auto fn = pick<T>(HWY_DYNAMIC_DISPATCH(AxpyF32), HWY_DYNAMIC_DISPATCH(AxpyF64));
  parallel_for(0, n, kGrain, [&](int64_t lo, int64_t hi) {
    fn(y + lo, a, x + lo, static_cast<size_t>(hi - lo));
  });
}

template <typename T>
void pow_scalar(const T* x, T* y, int64_t n, double p) {
  parallel_for(0, n, kGrain / 4, [&](int64_t lo, int64_t hi) {
    if (p == 2.0) {
      for (int64_t i = lo; i < hi; ++i) y[i] = x[i] * x[i];
    } else {
      for (int64_t i = lo; i < hi; ++i) y[i] = static_cast<T>(std::pow(x[i], static_cast<T>(p)));
    }
  });
}

template <typename T>
void pow_scalar_backward(const T* x, const T* gy, T* gx, int64_t n, double p) {
  parallel_for(0, n, kGrain / 4, [&](int64_t lo, int64_t hi) {
    if (p == 0.0) {
      for (int64_t i = lo; i < hi; ++i) gx[i] = T(0);
    } else if (p == 2.0) {
      for (int64_t i = lo; i < hi; ++i) gx[i] = gy[i] * T(2) * x[i];
    } else {
      for (int64_t i = lo; i < hi; ++i)
        gx[i] = gy[i] * static_cast<T>(p) * static_cast<T>(std::pow(x[i], static_cast<T>(p - 1)));
    }
  });
}

#define GAZE_INSTANTIATE(T)                                                             \
  template void unary<T>(UnaryOp, const T*, T*, int64_t);                               \
  template void unary_backward<T>(UnaryOp, const T*, const T*, const T*, T*, int64_t);  \
  template void binary<T>(BinaryOp, const T*, const Shape&, const T*, const Shape&, T*, \
                          const Shape&);                                                \
  template void affine<T>(const T*, T*, int64_t, T, T);                                 \
  template void add_inplace<T>(T*, const T*, int64_t);                                  \
  template void axpy<T>(T*, T, const T*, int64_t);                                      \
  template void pow_scalar<T>(const T*, T*, int64_t, double);                           \
  template void pow_scalar_backward<T>(const T*, const T*, T*, int64_t, double);
GAZE_INSTANTIATE(float)
GAZE_INSTANTIATE(double)
#undef GAZE_INSTANTIATE

}  // namespace gaze::kernels
#endif  // HWY_ONCE
