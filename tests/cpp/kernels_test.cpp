// Kernels on every compiled SIMD target: float32 results against the float64 instantiation of the
// same kernel, for sizes that hit full vectors, tails and the parallel split.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <tuple>

#include "gaze/core/rng.h"
#include "gaze/core/simd.h"
#include "gaze/core/threads.h"
#include "gaze/kernels/dropout.h"
#include "gaze/kernels/elementwise.h"
#include "gaze/kernels/gemm.h"
#include "gaze/kernels/layer_norm.h"
#include "gaze/kernels/reduce.h"
#include "gaze/kernels/softmax.h"
#include "gaze/ops/random.h"

namespace gaze {
namespace {

using kernels::UnaryOp;

std::vector<double> widen(const std::vector<float>& v) {
  return {v.begin(), v.end()};
}

// |got - want| <= atol + rtol |want|, where want is the float64 result; a float64 value outside the
// float range must come out as the float's inf (or 0), and NaN as NaN.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rtol,
                  double atol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      ASSERT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    if (std::isinf(static_cast<float>(want[i]))) {
      ASSERT_EQ(got[i], static_cast<float>(want[i])) << what << " at " << i;
      continue;
    }
    ASSERT_LE(std::abs(got[i] - want[i]), atol + rtol * std::abs(want[i]))
        << what << " at " << i << ": " << got[i] << " vs " << want[i];
  }
}

class PerTarget : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { force_simd_target(GetParam()); }
  void TearDown() override { force_simd_target(""); }
};

TEST_P(PerTarget, UnaryForwardAndBackward) {
  Generator g(1);
  for (int64_t n : {1, 7, 16, 33, 1000, 70001}) {
    std::vector<float> x(n), gy(n);
    g.uniform(x.data(), n, -6.0, 6.0);
    g.uniform(gy.data(), n, -1.0, 1.0);
    if (n > 4) x[0] = 0.0f, x[1] = -100.0f, x[2] = 100.0f, x[3] = std::nanf("");
    const std::vector<double> xd = widen(x), gd = widen(gy);
    for (UnaryOp op : {UnaryOp::relu, UnaryOp::gelu, UnaryOp::gelu_tanh, UnaryOp::tanh,
                       UnaryOp::sigmoid, UnaryOp::exp, UnaryOp::log, UnaryOp::neg, UnaryOp::sqrt,
                       UnaryOp::abs, UnaryOp::reciprocal}) {
      std::vector<float> y(n), gx(n);
      std::vector<double> yd(n), gxd(n);
      kernels::unary(op, x.data(), y.data(), n);
      kernels::unary(op, xd.data(), yd.data(), n);
      const std::string what =
          GetParam() + " op " + std::to_string(static_cast<int>(op)) + " n " + std::to_string(n);
      // atol: float32 rounding of O(1) intermediates (e.g. 1 - y^2 near |y| = 1) is ~1e-7 absolute.
      expect_close(y, yd, 2e-6, 1e-7, what + " forward");
      kernels::unary_backward(op, x.data(), y.data(), gy.data(), gx.data(), n);
      kernels::unary_backward(op, xd.data(), yd.data(), gd.data(), gxd.data(), n);
      expect_close(gx, gxd, 1e-5, 1e-6, what + " backward");
    }
  }
}

TEST_P(PerTarget, GeluAtInfinitiesAndNaN) {
  // As torch: gelu(inf) = inf, gelu(-inf) = -inf * 0 = NaN, gelu(NaN) = NaN; so for the tanh form.
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {inf, -inf, std::nanf(""), 0.0f};
  for (UnaryOp op : {UnaryOp::gelu, UnaryOp::gelu_tanh}) {
    std::vector<float> y(x.size());
    kernels::unary(op, x.data(), y.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(y[0], inf) << GetParam();
    EXPECT_TRUE(std::isnan(y[1])) << GetParam();
    EXPECT_TRUE(std::isnan(y[2])) << GetParam();
    EXPECT_EQ(y[3], 0.0f) << GetParam();
  }
}

TEST_P(PerTarget, GeluTailsKeepRelativePrecision) {
  // The left tails are where a naive 1 + erf(x) or 1 + tanh(u) cancels to nothing.
  std::vector<float> x;
  for (float v = -9.0f; v <= 3.0f; v += 0.01f) x.push_back(v);
  const int64_t n = static_cast<int64_t>(x.size());
  const std::vector<double> xd = widen(x);
  for (UnaryOp op : {UnaryOp::gelu, UnaryOp::gelu_tanh}) {
    std::vector<float> y(n);
    std::vector<double> yd(n);
    kernels::unary(op, x.data(), y.data(), n);
    kernels::unary(op, xd.data(), yd.data(), n);
    expect_close(y, yd, 2e-5, 1e-37, GetParam() + " gelu tail");
  }
}

TEST_P(PerTarget, BroadcastBinary) {
  Generator g(2);
  const Shape sa{3, 1, 37}, sb{5, 1}, so{3, 5, 37};
  std::vector<float> a(sa.numel()), b(sb.numel()), out(so.numel());
  g.uniform(a.data(), a.size(), -2, 2);
  g.uniform(b.data(), b.size(), 0.5, 2);
  for (auto op : {kernels::BinaryOp::add, kernels::BinaryOp::sub, kernels::BinaryOp::mul,
                  kernels::BinaryOp::div}) {
    kernels::binary(op, a.data(), sa, b.data(), sb, out.data(), so);
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 5; ++j)
        for (int k = 0; k < 37; ++k) {
          const double x = a[i * 37 + k], y = b[j];
          const double want = op == kernels::BinaryOp::add   ? x + y
                              : op == kernels::BinaryOp::sub ? x - y
                              : op == kernels::BinaryOp::mul ? x * y
                                                             : x / y;
          ASSERT_NEAR(out[(i * 5 + j) * 37 + k], want, 1e-6 * (1 + std::abs(want)));
        }
  }
}

TEST_P(PerTarget, SoftmaxLayerNormAndSums) {
  Generator g(3);
  for (auto [outer, n, inner] : {std::tuple<int64_t, int64_t, int64_t>{3, 1, 1},
                                 {5, 17, 1},
                                 {4, 1000, 1},
                                 {3, 9, 21},
                                 {2, 64, 8}}) {
    const int64_t total = outer * n * inner;
    std::vector<float> x(total), gy(total), y(total), gx(total);
    g.uniform(x.data(), total, -20, 20);
    g.uniform(gy.data(), total, -1, 1);
    const std::vector<double> xd = widen(x), gd = widen(gy);
    std::vector<double> yd(total), gxd(total);
    for (bool log : {false, true}) {
      kernels::softmax(x.data(), y.data(), outer, n, inner, log);
      kernels::softmax(xd.data(), yd.data(), outer, n, inner, log);
      expect_close(y, yd, 1e-5, 1e-7, GetParam() + " softmax");
      kernels::softmax_backward(y.data(), gy.data(), gx.data(), outer, n, inner, log);
      kernels::softmax_backward(yd.data(), gd.data(), gxd.data(), outer, n, inner, log);
      expect_close(gx, gxd, 1e-4, 1e-6, GetParam() + " softmax backward");
    }
    std::vector<float> s(outer * inner);
    std::vector<double> sd(outer * inner);
    kernels::sum_axis(x.data(), s.data(), outer, n, inner);
    kernels::sum_axis(xd.data(), sd.data(), outer, n, inner);
    expect_close(s, sd, 1e-5, 1e-4, GetParam() + " sum");
    if (inner == 1) {
      std::vector<float> w(n), b(n), mean(outer), rstd(outer);
      g.uniform(w.data(), n, 0.5, 1.5);
      g.uniform(b.data(), n, -1, 1);
      std::vector<double> wd = widen(w), bd = widen(b), meand(outer), rstdd(outer);
      kernels::layer_norm(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), outer,
                          n, 1e-5);
      kernels::layer_norm(xd.data(), wd.data(), bd.data(), yd.data(), meand.data(), rstdd.data(),
                          outer, n, 1e-5);
      expect_close(y, yd, 1e-4, 1e-5, GetParam() + " layer_norm");
      std::vector<float> gw(n, 0), gb(n, 0);
      std::vector<double> gwd(n, 0), gbd(n, 0);
      kernels::layer_norm_backward(x.data(), w.data(), mean.data(), rstd.data(), gy.data(),
                                   gx.data(), gw.data(), gb.data(), outer, n);
      kernels::layer_norm_backward(xd.data(), wd.data(), meand.data(), rstdd.data(), gd.data(),
                                   gxd.data(), gwd.data(), gbd.data(), outer, n);
      expect_close(gx, gxd, 1e-3, 1e-5, GetParam() + " layer_norm backward x");
      expect_close(gw, gwd, 1e-4, 1e-4, GetParam() + " layer_norm backward w");
    }
  }
}

TEST_P(PerTarget, SumsOfManyRowsIntoFewPositionsAreSharedAndThreadCountInvariant) {
  // A bias's gradient keeps one row and sums thousands: fixed blocks of rows are summed apart (on
  // any thread), then in order, so 1 and 2 threads give the same bits.
  Generator g(11);
  const int saved = num_threads();
  for (auto [outer, n, inner] :
       {std::tuple<int64_t, int64_t, int64_t>{1, 4096, 40}, {3, 1000, 17}, {1, 513, 4100}}) {
    const int64_t total = outer * n * inner;
    std::vector<float> x(total);
    g.uniform(x.data(), total, -1, 1);
    const std::vector<double> xd = widen(x);
    std::vector<double> sd(outer * inner);
    kernels::sum_axis(xd.data(), sd.data(), outer, n, inner);
    std::vector<float> s1(outer * inner), s2(outer * inner);
    set_num_threads(1);
    kernels::sum_axis(x.data(), s1.data(), outer, n, inner);
    set_num_threads(2);
    kernels::sum_axis(x.data(), s2.data(), outer, n, inner);
    set_num_threads(saved);
    expect_close(s1, sd, 1e-5, 1e-4, GetParam() + " sum of many rows");
    EXPECT_EQ(s1, s2) << outer << " x " << n << " x " << inner;
  }
}

TEST_P(PerTarget, PhiloxWordsEqualTheScalarGenerator) {
  // Block counters that carry into the high word, odd counts (vector tails) and a full key.
  for (const uint64_t first : {uint64_t{0}, uint64_t{0xFFFFFFFD}, ~uint64_t{0} - 40}) {
    for (const int64_t n : {1, 3, 8, 17, 64}) {
      std::vector<uint32_t> got(static_cast<size_t>(4 * n) + 1, 0xABCDu);
      kernels::philox_words(0x299f31d0a4093822ull, 0x0370734413198a2eull, first, n, got.data());
      for (int64_t i = 0; i < n; ++i) {
        const auto want = philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, first + i);
        for (int k = 0; k < 4; ++k) ASSERT_EQ(got[4 * i + k], want[k]) << first << " " << n;
      }
      EXPECT_EQ(got.back(), 0xABCDu);  // nothing written past the end
    }
  }
}

TEST_P(PerTarget, DropoutKeepsExactlyTheCountersAboveP) {
  const int64_t n = 4099;
  const double p = 0.3;
  std::vector<float> x(n, 2.0f), y(n);
  const kernels::DropoutStream rs{5, 6, 7};
  kernels::dropout(x.data(), y.data(), n, p, rs);
  for (int64_t i = 0; i < n; ++i) {
    const auto w = philox4x32(5, 6, 7 + i / 4);
    const bool drop = static_cast<double>(uniform_float(w[i % 4])) < p;
    ASSERT_EQ(y[i], drop ? 0.0f : static_cast<float>(2.0 * (1 / (1 - p)))) << i;
  }
}

// The forward's recorded bits reproduce, through dropout_masked, exactly what drawing the mask
// again gives: sizes with vector and byte tails and a parallel split, NaN gradients, both types.
template <typename T>
void check_recorded_mask(int64_t n, double p) {
  const kernels::DropoutStream rs{11, 12, 13};
  std::vector<T> x(static_cast<size_t>(n)), y(x.size()), gy(x.size()), want(x.size()),
      got(x.size());
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<T>(1 + i % 7);
    gy[i] = i % 13 == 5 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(0.5 - i % 5);
  }
  std::vector<uint8_t> keep(static_cast<size_t>((n + 7) / 8), 0xA5);
  kernels::dropout(x.data(), y.data(), n, p, rs, keep.data());
  kernels::dropout(gy.data(), want.data(), n, p, rs);  // the old backward: the mask drawn again
  kernels::dropout_masked(gy.data(), got.data(), n, p, keep.data());
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ((keep[i / 8] >> (i % 8)) & 1, y[i] != 0 ? 1 : 0) << n << " at " << i;
    if (std::isnan(want[i]))
      ASSERT_TRUE(std::isnan(got[i])) << n << " at " << i;
    else
      ASSERT_EQ(got[i], want[i]) << n << " at " << i;
  }
}

TEST_P(PerTarget, DropoutBackwardFromRecordedBitsEqualsTheRedrawnMask) {
  for (const int64_t n : {1, 7, 8, 13, 16, 33, 4099, 70001})
    for (const double p : {0.1, 0.5, 1.0}) {
      check_recorded_mask<float>(n, p);
      check_recorded_mask<double>(n, p);
    }
}

INSTANTIATE_TEST_SUITE_P(AllTargets, PerTarget, ::testing::ValuesIn(simd_targets()),
                         [](const auto& info) { return info.param; });

TEST(Reduce, FirstAtLeastFindsTheFirstQualifyingElement) {
  // Every position and length around the vector blocks, NaN never qualifying, -inf cut taking all.
  for (int64_t n : {0, 1, 15, 16, 17, 63, 64, 65, 200}) {
    for (int64_t at = 0; at <= n; ++at) {
      std::vector<float> x(static_cast<size_t>(n), -5.0f);
      for (int64_t i = 0; i < n; i += 7) x[static_cast<size_t>(i)] = std::nanf("");
      if (at < n) x[static_cast<size_t>(at)] = 1.0f;
      if (at + 3 < n) x[static_cast<size_t>(at + 3)] = 2.0f;  // later ones do not matter
      ASSERT_EQ(kernels::first_at_least(x.data(), n, 1.0f), at) << "n " << n;
      ASSERT_EQ(kernels::first_at_least(x.data(), n, std::nanf("")), n);
    }
    std::vector<float> x(static_cast<size_t>(n), -1e30f);
    const int64_t want = n > 1 ? 1 : n;  // x[0] is NaN
    if (n > 0) x[0] = std::nanf("");
    EXPECT_EQ(kernels::first_at_least(x.data(), n, -std::numeric_limits<float>::infinity()), want);
  }
}

TEST(Gemm, Float32AgreesWithFloat64ReferenceOnAllLayouts) {
  Generator g(4);
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1},
                         {3, 5, 7},
                         {64, 48, 33},
                         {1, 300, 200},
                         {129, 1, 65}}) {
    for (int t = 0; t < 4; ++t) {
      kernels::GemmArgs a;
      a.batch = 3;
      a.M = M;
      a.N = N;
      a.K = K;
      a.trans_a = t & 1;
      a.trans_b = t & 2;
      a.lda = a.trans_a ? M : K;
      a.ldb = a.trans_b ? K : N;
      a.ldc = N;
      a.stride_a = M * K;
      a.stride_b = (t == 3) ? 0 : K * N;  // also a broadcast B
      a.stride_c = M * N;
      std::vector<float> A(3 * M * K), B(3 * K * N), C(3 * M * N, 5.0f);
      g.uniform(A.data(), A.size(), -1, 1);
      g.uniform(B.data(), B.size(), -1, 1);
      std::vector<double> Ad = widen(A), Bd = widen(B), Cd(C.size(), 5.0);
      for (double beta : {0.0, 1.0}) {
        a.beta = beta;
        kernels::gemm(a, A.data(), B.data(), C.data());
        kernels::gemm(a, Ad.data(), Bd.data(), Cd.data());
        expect_close(C, Cd, 1e-4, 1e-5 * K, "gemm");
      }
    }
  }
}

TEST(Gemm, EpilogueBiasAndActivationMatchTheReference) {
  Generator g(5);
  const int64_t M = 37, N = 29, K = 19;
  std::vector<float> A(M * K), B(N * K), bias(N);
  g.uniform(A.data(), A.size(), -2, 2);
  g.uniform(B.data(), B.size(), -2, 2);
  g.uniform(bias.data(), bias.size(), -1, 1);
  const std::vector<double> Ad = widen(A), Bd = widen(B), biasd = widen(bias);
  for (auto act : {kernels::GemmAct::none, kernels::GemmAct::relu, kernels::GemmAct::gelu,
                   kernels::GemmAct::gelu_tanh}) {
    auto a = kernels::GemmArgs::dense(M, N, K, false, true);
    a.bias = true;
    a.act = act;
    std::vector<float> C(M * N);
    std::vector<double> Cd(M * N);
    kernels::gemm(a, A.data(), B.data(), C.data(), bias.data());
    kernels::gemm(a, Ad.data(), Bd.data(), Cd.data(), biasd.data());
    expect_close(C, Cd, 1e-4, 1e-5, "gemm epilogue " + std::to_string(static_cast<int>(act)));
    // And against plain arithmetic for the bias.
    if (act == kernels::GemmAct::none) {
      double ref = biasd[3];
      for (int64_t k = 0; k < K; ++k) ref += Ad[2 * K + k] * Bd[3 * K + k];
      EXPECT_NEAR(Cd[2 * N + 3], ref, 1e-12);
    }
  }
}

TEST(Gemm, NoLayoutFallsBackToTheReferenceKernel) {
  // oneDNN silently picks its reference kernel (hundreds of times slower) for layouts it does not
  // recognise; every layout gaze's ops produce must get an optimised one.
  for (int64_t batch : {1, 4})
    for (int t = 0; t < 4; ++t)
      for (bool bcast : {false, true})
        for (double beta : {0.0, 1.0})
          for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 64, 64},
                                 {64, 1, 64},
                                 {64, 64, 1},
                                 {33, 17, 65}}) {
            kernels::GemmArgs a;
            a.batch = batch;
            a.M = M, a.N = N, a.K = K;
            a.trans_a = t & 1, a.trans_b = t & 2;
            a.lda = a.trans_a ? M : K, a.ldb = a.trans_b ? K : N, a.ldc = N;
            a.stride_a = M * K, a.stride_b = bcast ? 0 : K * N, a.stride_c = M * N;
            a.beta = beta;
            a.bias = beta == 0.0;  // with and without the epilogue
            a.act = beta == 0.0 ? kernels::GemmAct::gelu : kernels::GemmAct::none;
            const std::string impl = kernels::gemm_implementation(a);
            EXPECT_NE(impl.rfind("ref", 0), 0u)
                << impl << " for batch " << batch << " trans " << t << " bcast " << bcast
                << " M,N,K " << M << "," << N << "," << K;
          }
}

}  // namespace
}  // namespace gaze
