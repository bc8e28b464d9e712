// Reduced-precision inference: the bf16/int8 conversions on every SIMD target, the packed products
// against exact references, and linear layers switching precision (ops/lowp.h, nn/precision.h).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include "gaze/core/grad_mode.h"
#include "gaze/core/rng.h"
#include "gaze/core/simd.h"
#include "gaze/core/threads.h"
#include "gaze/kernels/attention_amx.h"
#include "gaze/kernels/attention_bf16.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/kernels/onednn_matmul.h"
#include "gaze/nn/linear.h"
#include "gaze/nn/multihead_attention.h"
#include "gaze/nn/precision.h"
#include "gaze/ops/attention.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/lowp.h"
#include "gaze/ops/random.h"
#include "gaze/ops/shape_ops.h"

using namespace gaze;

namespace {

uint16_t bf16_reference(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  if (std::isnan(f)) return static_cast<uint16_t>((b >> 16) | 0x40);
  return static_cast<uint16_t>((b + 0x7fff + ((b >> 16) & 1)) >> 16);
}

float bf16_value(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}

std::vector<float> random(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  Generator g(seed);
  std::vector<float> v(static_cast<size_t>(n));
  g.uniform(v.data(), n, lo, hi);
  return v;
}

class LowpPerTarget : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override { force_simd_target(GetParam()); }
  void TearDown() override { force_simd_target(""); }
};

TEST_P(LowpPerTarget, Bf16RoundsToNearestEven) {
  std::vector<float> x = random(1000, 3, -1e3, 1e3);
  const float specials[] = {0.0f,
                            -0.0f,
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(),
                            std::nanf(""),
                            -std::nanf(""),
                            std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::denorm_min(),
                            1.0f + 1.0f / 256,  // a tie: rounds to even (1.0)
                            1.0f + 3.0f / 256,  // a tie: rounds to even (1 + 4/256)
                            65504.0f};
  for (size_t i = 0; i < std::size(specials); ++i) x[i] = specials[i];
  for (int64_t n : {1, 7, 16, 33, 1000}) {
    std::vector<uint16_t> got(static_cast<size_t>(n));
    kernels::float_to_bf16(x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      if (std::isnan(x[i])) {
        EXPECT_TRUE(std::isnan(bf16_value(got[i]))) << i;
        EXPECT_EQ(got[i] >> 15, bf16_reference(x[i]) >> 15) << i;  // sign kept
      } else {
        EXPECT_EQ(got[i], bf16_reference(x[i]))
            << GetParam() << " n " << n << " at " << i << " (" << x[i] << ")";
      }
    }
  }
  uint16_t tie;
  const float t = 1.0f + 1.0f / 256;
  kernels::float_to_bf16(&t, &tie, 1);
  EXPECT_EQ(bf16_value(tie), 1.0f);
}

TEST_P(LowpPerTarget, RowQuantizationIsSymmetricPerRow) {
  // Lengths around the vector width and the AVX-512 path's 64-value steps, with tails.
  for (int64_t K : {1, 5, 16, 33, 64, 128, 300, 1031}) {
    const int64_t M = 4;
    std::vector<float> x = random(M * K, 5 + K, -3, 3);
    std::fill_n(x.begin() + K, K, 0.0f);  // row 1: all zeros
    std::vector<int8_t> q(static_cast<size_t>(M * K)), q_offset(q.size());
    std::vector<float> s(M), s_offset(M);
    kernels::quantize_rows(x.data(), M, K, q.data(), s.data());
    // The offset form (uint8 = int8 + 128) is the same bytes with the sign bit flipped.
    kernels::quantize_rows(x.data(), M, K, q_offset.data(), s_offset.data(), true);
    EXPECT_EQ(s_offset, s) << GetParam() << " K " << K;
    for (size_t i = 0; i < q.size(); ++i)
      ASSERT_EQ(static_cast<uint8_t>(q_offset[i]), static_cast<uint8_t>(q[i] + 128))
          << GetParam() << " K " << K << " at " << i;
    for (int64_t m = 0; m < M; ++m) {
      float amax = 0;
      for (int64_t k = 0; k < K; ++k) amax = std::max(amax, std::abs(x[m * K + k]));
      const float want = amax > 0 ? amax / 127.0f : 1.0f;
      EXPECT_EQ(s[m], want) << GetParam() << " K " << K << " row " << m;
      for (int64_t k = 0; k < K; ++k)
        EXPECT_EQ(q[m * K + k], static_cast<int8_t>(std::nearbyint(x[m * K + k] * (1.0f / want))))
            << GetParam() << " K " << K << " at " << m << "," << k;
    }
  }
  // A row whose largest value is so small that 1 / scale overflows (below ~4e-37) quantizes to
  // zeros, not to flipped signs: the multiply by an infinite inverse scale must not run.
  for (int64_t K : {5, 64, 130}) {
    std::vector<float> tiny = random(K, 8, -1, 1);
    for (float& t : tiny) t *= 1e-38f;
    tiny[1] = 0.0f;
    std::vector<int8_t> q(static_cast<size_t>(K), 99);
    float s = 0;
    kernels::quantize_rows(tiny.data(), 1, K, q.data(), &s);
    EXPECT_TRUE(std::isfinite(s)) << GetParam();
    for (int64_t k = 0; k < K; ++k) ASSERT_EQ(q[k], 0) << GetParam() << " K " << K << " at " << k;
  }
  // A row holding inf or NaN anywhere (also past the first vector, where a running maximum would
  // drop a NaN) has no finite scale: it quantizes to a NaN scale, as float32 would propagate.
  for (int64_t at : {0, 1, 20, 39, 70, 129})
    for (float special : {std::nanf(""), std::numeric_limits<float>::infinity(),
                          -std::numeric_limits<float>::infinity()}) {
      std::vector<float> bad = random(130, 9, -1, 1);
      bad[at] = special;
      std::vector<int8_t> q(130);
      float s = 0;
      kernels::quantize_rows(bad.data(), 1, 130, q.data(), &s);
      EXPECT_TRUE(std::isnan(s)) << GetParam() << " at " << at << " " << special;
    }
}

// A quantized folder's matrices as the floats they stand for: q * scale of their row, each one
// rounding, for every stored byte and row lengths around the vector width (tails included).
TEST_P(LowpPerTarget, Int8WeightsDequantizeToQTimesTheirRowScale) {
  for (int64_t cols : {1, 7, 16, 17, 64, 255, 1031}) {
    kernels::LowpWeight w;
    w.precision = Precision::int8;
    w.rows = 5, w.cols = cols;
    w.q.resize(static_cast<size_t>(w.rows * cols));
    for (size_t i = 0; i < w.q.size(); ++i)
      w.q[i] = static_cast<int8_t>(static_cast<int>(i * 37 % 255) - 127);  // -127..127
    w.scale = {0.5f, 1e-3f, 0.0f, 3.1e-2f, 7.0f};
    std::vector<float> out(w.q.size(), -1.0f);
    kernels::dequantize_weight(w, out.data());
    for (int64_t r = 0; r < w.rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const size_t i = static_cast<size_t>(r * cols + c);
        ASSERT_EQ(out[i], static_cast<float>(w.q[i]) * w.scale[static_cast<size_t>(r)])
            << GetParam() << " cols " << cols << " at " << r << "," << c;
      }
  }
}

// The packed product against references computed in double from what it multiplies by: exact up
// to float32 accumulation.
TEST_P(LowpPerTarget, PackedProductsMatchTheirReference) {
  for (Precision p : {Precision::bf16, Precision::int8}) {
    if (!kernels::precision_supported(p)) continue;
    for (const auto [N, K] : {std::pair<int64_t, int64_t>{10, 64}, {100, 33}, {256, 128}}) {
      const std::vector<float> w = random(N * K, 11 + N), bias = random(N, 12 + N);
      const kernels::LowpWeight lw = kernels::quantize_weight(w.data(), N, K, p);
      std::vector<float> wd(static_cast<size_t>(N * K));
      kernels::dequantize_weight(lw, wd.data());
      const kernels::PackedWeight packed(lw, 0, N);
      for (int64_t M : {1, 3, 17, 64}) {
        const std::vector<float> x = random(M * K, 13 + M, -2, 2);
        // What the product multiplies the weights by: x rounded to bf16, or quantized per row.
        std::vector<double> xd(static_cast<size_t>(M * K));
        if (p == Precision::bf16) {
          std::vector<uint16_t> h(xd.size());
          kernels::float_to_bf16(x.data(), h.data(), M * K);
          for (size_t i = 0; i < h.size(); ++i) xd[i] = bf16_value(h[i]);
        } else {
          std::vector<int8_t> q(xd.size());
          std::vector<float> s(M);
          kernels::quantize_rows(x.data(), M, K, q.data(), s.data());
          for (int64_t m = 0; m < M; ++m)
            for (int64_t k = 0; k < K; ++k)
              xd[m * K + k] = static_cast<double>(q[m * K + k]) * s[m];
        }
        for (kernels::GemmAct act :
             {kernels::GemmAct::none, kernels::GemmAct::relu, kernels::GemmAct::gelu}) {
          std::vector<float> y(static_cast<size_t>(M * N));
          packed.run(x.data(), M, y.data(), bias.data(), act);
          double worst = 0, worst_fp32 = 0;
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
              double acc = bias[n], acc32 = bias[n];
              for (int64_t k = 0; k < K; ++k) {
                acc += xd[m * K + k] * wd[n * K + k];
                acc32 += static_cast<double>(x[m * K + k]) * w[n * K + k];
              }
              auto f = [&](double v) {
                return act == kernels::GemmAct::relu   ? std::max(v, 0.0)
                       : act == kernels::GemmAct::gelu ? v * 0.5 * std::erfc(-v * M_SQRT1_2)
                                                       : v;
              };
              worst = std::max(worst, std::abs(y[m * N + n] - f(acc)));
              worst_fp32 = std::max(worst_fp32, std::abs(y[m * N + n] - f(acc32)));
            }
          const std::string what = fmt::format("{} {} M={} N={} K={} act {}", GetParam(),
                                               enum_name(p), M, N, K, static_cast<int>(act));
          // Against its own reference: float32 accumulation of K products of size <= 2.
          EXPECT_LT(worst, 1e-4 * K) << what;
          // Against float32: the rounding of inputs and weights (bf16: 2^-9 relative each; int8:
          // half a step of 1/127 of each row's largest value), over K random-signed terms.
          EXPECT_LT(worst_fp32, (p == Precision::bf16 ? 0.01 : 0.03) * std::sqrt(K)) << what;
        }
      }
    }
  }
}

// The int8 epilogue's GELU (a cheaper erf fit than float32's, see lowp_gemm.cpp) against x Phi(x)
// in double, on the very pre-activations the epilogue computed (the same product without the
// activation): biases from -14 to 14 sweep them over GELU's whole shape, tails included.
TEST_P(LowpPerTarget, Int8GeluEpilogueIsWithinAMillionthOfGelu) {
  if (!kernels::precision_supported(Precision::int8)) GTEST_SKIP() << "no VNNI";
  const int64_t N = 2801, K = 8, M = 3;
  const std::vector<float> w = random(N * K, 21, -0.2f, 0.2f), x = random(M * K, 22, -1, 1);
  std::vector<float> bias(N);
  for (int64_t n = 0; n < N; ++n) bias[n] = -14.0f + 0.01f * static_cast<float>(n);
  // The far tails and the infinities: -0 far left (float32's x Phi(x)), NaN at -inf, x at the
  // right.
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> extremes = {-1e10f, -1e30f, -inf, 1e10f, 1e30f, inf, -9.0f, -100.0f};
  std::copy(extremes.begin(), extremes.end(), bias.end() - std::ssize(extremes));
  const kernels::PackedWeight packed(kernels::quantize_weight(w.data(), N, K, Precision::int8), 0,
                                     N);
  std::vector<float> v(static_cast<size_t>(M * N)), y(v.size());
  packed.run(x.data(), M, v.data(), bias.data(), kernels::GemmAct::none);
  packed.run(x.data(), M, y.data(), bias.data(), kernels::GemmAct::gelu);
  double worst = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double want = static_cast<double>(v[i]) * 0.5 * std::erfc(-v[i] * M_SQRT1_2);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(y[i])) << GetParam() << " at " << v[i];
    } else if (std::isinf(want)) {
      EXPECT_EQ(y[i], want) << GetParam();
    } else {
      worst = std::max(worst, std::abs(y[i] - want));
    }
  }
  EXPECT_LT(worst, 1e-6) << GetParam();
}

TEST_P(LowpPerTarget, Bf16KeysAndValuesGiveWhatTheirFloatValuesGive) {
  // SdpaOptions::kv_bf16: keys and values stored as bf16 pairs in float32 elements. The kernel
  // widens them and computes as on floats, so the result equals float32 attention over the rounded
  // values exactly: with and without kv_rows, causal, key lengths, a window, a head dim with a
  // tail.
  NoGradGuard no_grad;
  const int64_t Tk = 7, Bk = 3, B = 2, H = 4, Hkv = 2, D = 20;
  Generator g(9);
  const Tensor q2 = randn(Shape{B, H, 2, D}, DType::f32, &g);
  auto rounded = [&](Tensor* widened) {  // [Tk, Bk, Hkv, D/2] pairs and their float values
    const Tensor x = randn(Shape{Tk, Bk, Hkv, D}, DType::f32, &g);
    Tensor packed = Tensor::empty(Shape{Tk, Bk, Hkv, D / 2});
    kernels::float_to_bf16(x.data<float>(), reinterpret_cast<uint16_t*>(packed.data<float>()),
                           x.numel());
    *widened = Tensor::empty(x.shape());
    const auto* h = reinterpret_cast<const uint16_t*>(packed.data<float>());
    for (int64_t i = 0; i < x.numel(); ++i) widened->data<float>()[i] = bf16_value(h[i]);
    return packed;
  };
  Tensor kw, vw;
  const Tensor kp = rounded(&kw), vp = rounded(&vw);
  const Tensor rows =
      Tensor::from_vector<int64_t>({2, 0, 1, 1, 0, 2, 2, 2, 1, 0, 0, 1, 2, 1}, Shape{Tk, B});
  for (bool with_rows : {false, true})
    for (int64_t Tq : {1, 2})
      for (int variant = 0; variant < 3; ++variant) {
        SCOPED_TRACE(fmt::format("rows {} Tq {} variant {}", with_rows, Tq, variant));
        SdpaOptions o;
        o.kv_layout = HeadsLayout::tbhd;
        if (with_rows) o.kv_rows = rows;
        if (variant == 1) o.is_causal = true, o.causal_alignment = CausalAlignment::bottom_right;
        if (variant == 2)
          o.key_lengths = Tensor::from_vector<int64_t>({5, 7}, Shape{2}), o.window = 2,
          o.is_causal = true, o.causal_alignment = CausalAlignment::bottom_right;
        const Tensor q = narrow(q2, 2, 0, Tq);
        const Tensor kf = with_rows ? kw : narrow(kw, 1, 0, B),
                     vf = with_rows ? vw : narrow(vw, 1, 0, B);
        const Tensor kb = with_rows ? kp : narrow(kp, 1, 0, B),
                     vb = with_rows ? vp : narrow(vp, 1, 0, B);
        const auto want = scaled_dot_product_attention(q, kf, vf, o).output.to_vector<float>();
        o.kv_bf16 = true;
        const auto got = scaled_dot_product_attention(q, kb, vb, o).output.to_vector<float>();
        ASSERT_EQ(got, want);
      }
  // What it serves: float32 decoding steps for inference, as kv_rows.
  SdpaOptions o;
  o.kv_layout = HeadsLayout::tbhd;
  o.kv_bf16 = true;
  const Tensor kb = narrow(kp, 1, 0, B), vb = narrow(vp, 1, 0, B);
  EXPECT_THROW(scaled_dot_product_attention(randn(Shape{B, H, 5, D}), kb, vb, o), ValueError);
  SdpaOptions weights = o;
  weights.need_weights = true;
  EXPECT_THROW(scaled_dot_product_attention(q2, kb, vb, weights), ValueError);
  EXPECT_THROW(scaled_dot_product_attention(q2.to_dtype(DType::f64), kb.to_dtype(DType::f64),
                                            vb.to_dtype(DType::f64), o),
               ValueError);
  EXPECT_THROW(scaled_dot_product_attention(randn(Shape{B, H, 2, D + 2}), kb, vb, o), ValueError);
}

INSTANTIATE_TEST_SUITE_P(Targets, LowpPerTarget, ::testing::ValuesIn(simd_targets()));

TEST(Lowp, OneDnnRunsTheHardwareKernels) {
  // How we know the products run on the CPU's bf16 / VNNI instructions: oneDNN's kernel name. On
  // an AMX CPU the weights are packed for AMX, and a row count whose kernel cannot read that layout
  // would fall to oneDNN's reference kernel ("ref_int8"), as int8 activations once did for M = 1.
  // With VNNI only in its AVX2 form, oneDNN 2.6 has no brgemm matmul and runs int8 on its jit GEMM,
  // whose kernel uses vpdpbusd there: under ONEDNN_MAX_CPU_ISA=AVX2_VNNI it multiplied 512 x 1024
  // x 1024 at 132 G multiply-adds/s on one thread, against 72 under AVX2 (Sapphire Rapids).
  const char* int8_isa = kernels::int8_on_avx2_vnni() ? "gemm:jit" : "vnni";
  for (const auto [p, isa] :
       {std::pair{Precision::bf16, "bf16"}, std::pair{Precision::int8, int8_isa}}) {
    if (!kernels::precision_supported(p)) continue;
    const std::vector<float> w = random(64 * 64, 1);
    const kernels::PackedWeight packed(kernels::quantize_weight(w.data(), 64, 64, p), 0, 64);
    for (int64_t M : {1, 2, 4, 8, 16, 32, 128, 512}) {
      const std::string impl = packed.implementation(M);
      EXPECT_TRUE(impl.find(isa) != std::string::npos || impl.find("amx") != std::string::npos)
          << impl;
    }
  }
}

// A feed-forward's two products at precision p, 48 -> 96 -> 40, with their biases.
struct FeedForwardWeights {
  explicit FeedForwardWeights(Precision p)
      : b1(random(96, 5)),
        b2(random(40, 6)),
        p1(kernels::quantize_weight(random(96 * 48, 3).data(), 96, 48, p), 0, 96),
        p2(kernels::quantize_weight(random(40 * 96, 4).data(), 40, 96, p), 0, 40) {}
  std::vector<float> b1, b2;
  kernels::PackedWeight p1, p2;
};

TEST(Lowp, FeedForwardEqualsTwoProducts) {
  // bf16 hands the hidden layer over as bf16 from the first product's epilogue; the result must be
  // what float output + float_to_bf16 + the second product give, bit for bit.
  for (Precision p : {Precision::bf16, Precision::int8}) {
    if (!kernels::precision_supported(p)) continue;
    const FeedForwardWeights f(p);
    for (int64_t M : {1, 37, 128})
      for (auto act : {kernels::GemmAct::gelu, kernels::GemmAct::relu, kernels::GemmAct::none}) {
        const std::vector<float> x = random(static_cast<size_t>(M) * 48, 7);
        std::vector<float> h(static_cast<size_t>(M) * 96), want(static_cast<size_t>(M) * 40),
            got(want.size());
        f.p1.run(x.data(), M, h.data(), f.b1.data(), act);
        f.p2.run(h.data(), M, want.data(), f.b2.data(), kernels::GemmAct::none);
        f.p1.run_feed_forward(x.data(), M, f.b1.data(), act, f.p2, f.b2.data(), got.data());
        ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
            << enum_name(p) << " M=" << M << " act=" << static_cast<int>(act);
      }
    EXPECT_THROW(f.p2.run_feed_forward(random(48, 8).data(), 1, nullptr, kernels::GemmAct::none,
                                       f.p1, nullptr, std::vector<float>(96).data()),
                 ValueError);
  }
}

TEST(Lowp, FeedForwardAddsItsResidualInTheEpilogue) {
  // A pre-norm layer's x + feed_forward(x): the residual added by the second product's epilogue
  // (int8: the dequantization pass; bf16: a oneDNN post-op) must equal adding it afterwards, bit
  // for bit, at both thread counts (2 x 70 rows: a row task per thread).
  const int saved = num_threads();
  for (Precision p : {Precision::bf16, Precision::int8}) {
    if (!kernels::precision_supported(p)) continue;
    const FeedForwardWeights f(p);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int64_t M : {1, 37, 140})
        for (const float* bias2 : {f.b2.data(), static_cast<const float*>(nullptr)}) {
          const std::vector<float> x = random(static_cast<size_t>(M) * 48, 7),
                                   r = random(static_cast<size_t>(M) * 40, 8, -4, 4);
          std::vector<float> want(static_cast<size_t>(M) * 40), got(want.size());
          f.p1.run_feed_forward(x.data(), M, f.b1.data(), kernels::GemmAct::gelu, f.p2, bias2,
                                want.data());
          for (size_t i = 0; i < want.size(); ++i) want[i] = r[i] + want[i];
          f.p1.run_feed_forward(x.data(), M, f.b1.data(), kernels::GemmAct::gelu, f.p2, bias2,
                                got.data(), r.data());
          ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
              << enum_name(p) << " threads " << threads << " M=" << M << " bias " << !!bias2;
        }
    }
  }
  set_num_threads(saved);
}

TEST(Lowp, Int8RowTasksEqualOneRowAtATime) {
  // Many rows run as row tasks, each start to end on one thread with oneDNN single-threaded inside
  // the parallel region: every row must be what it is alone (exact s32 products, per-row scales),
  // so a task whose rows oneDNN skipped or split wrongly shows.
  if (!kernels::precision_supported(Precision::int8)) GTEST_SKIP() << "no VNNI here";
  const int saved = num_threads();
  set_num_threads(2);
  const std::vector<float> w1 = random(96 * 48, 3), w2 = random(40 * 96, 4), b1 = random(96, 5),
                           b2 = random(40, 6);
  const kernels::PackedWeight p1(kernels::quantize_weight(w1.data(), 96, 48, Precision::int8), 0,
                                 96),
      p2(kernels::quantize_weight(w2.data(), 40, 96, Precision::int8), 0, 40);
  const int64_t M = 6001;  // rows of 96 floats: tasks of at most 1365 rows, six of them here
  const std::vector<float> x = random(M * 48, 7, -3, 3);
  std::vector<float> h(M * 96), y(M * 40), one_h(96), one_y(40);
  p1.run(x.data(), M, h.data(), b1.data(), kernels::GemmAct::gelu);
  p1.run_feed_forward(x.data(), M, b1.data(), kernels::GemmAct::gelu, p2, b2.data(), y.data());
  set_num_threads(saved);
  for (int64_t m = 0; m < M; ++m) {
    p1.run(x.data() + m * 48, 1, one_h.data(), b1.data(), kernels::GemmAct::gelu);
    p2.run(one_h.data(), 1, one_y.data(), b2.data(), kernels::GemmAct::none);
    ASSERT_EQ(std::memcmp(one_h.data(), h.data() + m * 96, 96 * sizeof(float)), 0) << "row " << m;
    ASSERT_EQ(std::memcmp(one_y.data(), y.data() + m * 40, 40 * sizeof(float)), 0) << "row " << m;
  }
}

// oneDNN fixes a primitive's thread count when it is made: after set_num_threads, products must
// get new primitives (a 1-thread one ran on 1 thread at 2), and weights packed before must still
// be read in their layout.
TEST(Lowp, ThreadCountChangesMakeNewPrimitivesAndKeepPackedLayouts) {
  const int saved = num_threads();
  kernels::onednn::MatmulCache<1> cache;
  int made = 0;
  auto make = [&] {
    ++made;
    return kernels::onednn::Matmul{};
  };
  set_num_threads(1);
  cache.get({7}, make);
  cache.get({7}, make);
  EXPECT_EQ(made, 1);
  set_num_threads(2);
  cache.get({7}, make);
  EXPECT_EQ(made, 2);
  set_num_threads(1);
  cache.get({7}, make);
  EXPECT_EQ(made, 2);
  for (Precision p : {Precision::bf16, Precision::int8}) {
    if (!kernels::precision_supported(p)) continue;
    const std::vector<float> w = random(72 * 40, 31), b = random(72, 32);
    const kernels::PackedWeight packed(kernels::quantize_weight(w.data(), 72, 40, p), 0, 72);
    const int64_t M = 300;
    const std::vector<float> x = random(M * 40, 33);
    std::vector<float> y1(M * 72), y2(M * 72);
    set_num_threads(1);
    packed.run(x.data(), M, y1.data(), b.data(), kernels::GemmAct::gelu);
    set_num_threads(2);
    packed.run(x.data(), M, y2.data(), b.data(), kernels::GemmAct::gelu);
    EXPECT_EQ(y1, y2) << enum_name(p);
  }
  set_num_threads(saved);
}

TEST(Lowp, MixedPrecisionTrainingProductsRunTheBf16Kernels) {
  // The three products of a linear layer in training (forward, dX, dW with its transposed operand).
  if (!kernels::precision_supported(Precision::bf16)) GTEST_SKIP() << "no bf16 instructions";
  for (const auto& g : {kernels::GemmArgs::dense(4096, 1024, 256, false, true),
                        kernels::GemmArgs::dense(4096, 256, 1024),
                        kernels::GemmArgs::dense(1024, 256, 4096, true, false)}) {
    const std::string impl = kernels::gemm_implementation(g, /*bf16=*/true);
    EXPECT_TRUE(impl.find("bf16") != std::string::npos || impl.find("amx") != std::string::npos)
        << impl;
  }
}

TEST(Lowp, LinearSwitchesPrecisionAndKeepsAutogradInFloat) {
  for (Precision p : {Precision::bf16, Precision::int8}) {
    if (!kernels::precision_supported(p)) continue;
    nn::Linear lin(48, 20);
    const Tensor x = Tensor::from_vector(random(5 * 48, 2), Shape{5, 48});
    nn::set_precision(lin, p);
    EXPECT_EQ(nn::precision_of(lin), p);
    // The weights now hold the values the reduced-precision product multiplies by.
    const auto q = weight_lowp(lin.weight);
    ASSERT_TRUE(q);
    std::vector<float> wd(48 * 20);
    kernels::dequantize_weight(*q, wd.data());
    EXPECT_EQ(lin.weight.to_vector<float>(), wd);
    Tensor fast, slow;
    {
      NoGradGuard ng;
      fast = lin.forward(x);
    }
    slow = lin.forward(x);  // records autograd: float32 with the rounded weights
    EXPECT_TRUE(slow.requires_grad());
    const std::vector<float> a = fast.to_vector<float>(), b = slow.to_vector<float>();
    bool differ = false;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_NEAR(a[i], b[i], 0.05) << i;
      differ |= a[i] != b[i];
    }
    EXPECT_TRUE(differ) << "the reduced-precision path did not run";
    // A write to the weights (an optimizer step) ends the conversion: the next product is
    // float32 on the new values, and nothing stale is saved.
    {
      NoGradGuard ng;
      lin.weight.zero_();
      EXPECT_EQ(nn::precision_of(lin), Precision::fp32);
      const std::vector<float> y = lin.forward(x).to_vector<float>();
      const std::vector<float> bias = lin.bias.to_vector<float>();
      for (int64_t r = 0; r < 5; ++r)
        for (int64_t c = 0; c < 20; ++c) EXPECT_EQ(y[r * 20 + c], bias[c]);
      EXPECT_FALSE(weight_lowp(lin.weight));
    }
    nn::set_precision(lin, Precision::fp32);
    EXPECT_EQ(nn::precision_of(lin), Precision::fp32);
  }
}

TEST(Lowp, ViewsOfAStackedWeightUseTheirRows) {
  // MultiheadAttention multiplies by row blocks of in_proj_weight: each block's product must equal
  // the rows of the whole matrix's product.
  if (!kernels::precision_supported(Precision::int8)) GTEST_SKIP() << "no VNNI";
  nn::MultiheadAttention mha(32, 4);
  nn::set_precision(mha, Precision::int8);
  NoGradGuard ng;
  const Tensor x = Tensor::from_vector(random(6 * 32, 4), Shape{6, 32});
  const std::vector<float> whole = linear(x, mha.in_proj_weight).to_vector<float>();
  for (int64_t part = 0; part < 3; ++part) {
    const std::vector<float> y =
        linear(x, narrow(mha.in_proj_weight, 0, part * 32, 32)).to_vector<float>();
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t c = 0; c < 32; ++c)
        EXPECT_EQ(y[r * 32 + c], whole[r * 96 + part * 32 + c]) << part << " " << r << " " << c;
  }
}

TEST(Lowp, SelfAttentionProjectsQueryKeyAndValueInOneProduct) {
  // A converted self-attention takes q, k and v from one call (lowp_linear_parts): int8 as one
  // product over all of in_proj_weight, bf16 as one conversion of the input. Either must give what
  // the three projections give alone, bit for bit, at every thread count, and row tasks included.
  const int saved = num_threads();
  for (Precision p : {Precision::int8, Precision::bf16}) {
    if (!kernels::precision_supported(p)) continue;
    manual_seed(5);
    nn::MultiheadAttention mha(64, 4, 0.0, true, std::nullopt, std::nullopt, true);
    mha.eval();
    nn::set_precision(mha, p);
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (int64_t T : {1, 70}) {  // 2 x 70 rows: a row task per thread at 2 threads
        const Tensor x = Tensor::from_vector(random(2 * T * 64, 9, -2, 2), Shape{2, T, 64});
        NoGradGuard no_grad;
        const auto parts = lowp_linear_parts(x, mha.in_proj_weight, mha.in_proj_bias, 3);
        ASSERT_TRUE(parts.has_value()) << enum_name(p);
        ASSERT_EQ(parts->size(), 3u);
        for (int64_t i = 0; i < 3; ++i) {
          const Tensor want = linear(x, narrow(mha.in_proj_weight, 0, i * 64, 64),
                                     narrow(mha.in_proj_bias, 0, i * 64, 64));
          const Tensor& got = (*parts)[static_cast<size_t>(i)];
          ASSERT_EQ(got.shape(), (Shape{2, T, 64}));
          ASSERT_EQ(std::memcmp(got.data<float>(), want.data<float>(), want.nbytes()), 0)
              << enum_name(p) << " threads " << threads << " T " << T << " part " << i;
        }
        // The module: query, key and value the same tensor (one product) or equal copies (three).
        const Tensor fused = mha.forward(x, x, x, {.need_weights = false}).output;
        const Tensor apart =
            mha.forward(x, x.clone_data(), x.clone_data(), {.need_weights = false}).output;
        ASSERT_EQ(std::memcmp(fused.data<float>(), apart.data<float>(), fused.nbytes()), 0)
            << enum_name(p) << " threads " << threads << " T " << T;
      }
    }
    // Not for parts that do not divide the rows, nor where autograd records.
    const Tensor x = Tensor::from_vector(random(3 * 64, 2), Shape{3, 64});
    {
      NoGradGuard no_grad;
      EXPECT_FALSE(lowp_linear_parts(x, mha.in_proj_weight, mha.in_proj_bias, 5).has_value());
    }
    EXPECT_FALSE(lowp_linear_parts(x, mha.in_proj_weight, mha.in_proj_bias, 3).has_value());
  }
  set_num_threads(saved);
  // A float32 weight has no reduced-precision product.
  nn::MultiheadAttention plain(64, 4);
  NoGradGuard no_grad;
  EXPECT_FALSE(lowp_linear_parts(Tensor::from_vector(random(64, 3), Shape{1, 64}),
                                 plain.in_proj_weight, plain.in_proj_bias, 3)
                   .has_value());
  if (kernels::precision_supported(Precision::bf16)) {
    const std::vector<float> w = random(96 * 32, 3);
    const kernels::PackedWeight bf(kernels::quantize_weight(w.data(), 96, 32, Precision::bf16), 0,
                                   96);
    std::vector<float> a(32), b(32), c(32);
    float* const ys[3] = {a.data(), b.data(), c.data()};
    EXPECT_THROW(bf.run_parts(random(32, 4).data(), 1, ys, nullptr, kernels::GemmAct::none),
                 ValueError);
  }
}

}  // namespace

// --- bf16 attention ------------------------------------------------------------------------------

namespace {

struct AttnCase {
  int64_t B, H, Hkv, Tq, Tk, D, Dv;
  bool causal = false, bottom_right = false, lengths = false, padding = false;
};

// The bf16 kernel's result computed in double: q times scale, k and v rounded to bf16 (the
// products' operands), exact scores and softmax (the kernel's probabilities carry one more bf16
// rounding, hence the tolerance). Layout [B, T, H, D].
std::vector<double> bf16_attention_reference(const AttnCase& c, const std::vector<float>& q,
                                             const std::vector<float>& k,
                                             const std::vector<float>& v,
                                             const std::vector<int64_t>& lengths,
                                             const std::vector<uint8_t>& padding) {
  auto r = [](float x) { return static_cast<double>(bf16_value(bf16_reference(x))); };
  const double scale = 1.0 / std::sqrt(static_cast<double>(c.D)), log2e = 1.4426950408889634;
  std::vector<double> out(static_cast<size_t>(c.B * c.Tq * c.H * c.Dv), 0.0);
  const int64_t off = c.bottom_right ? c.Tk - c.Tq : 0;
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t h = 0; h < c.H; ++h) {
      const int64_t kh = h / (c.H / c.Hkv);
      for (int64_t i = 0; i < c.Tq; ++i) {
        std::vector<double> s(static_cast<size_t>(c.Tk), -INFINITY);
        double mx = -INFINITY;
        for (int64_t j = 0; j < c.Tk; ++j) {
          if (c.lengths && j >= lengths[size_t(b)]) continue;
          if (c.padding && padding[size_t(b * c.Tk + j)]) continue;
          if (c.causal && j > i + off) continue;
          double acc = 0;
          for (int64_t d = 0; d < c.D; ++d)
            acc += r(static_cast<float>(q[size_t(((b * c.Tq + i) * c.H + h) * c.D + d)] *
                                        static_cast<float>(scale * log2e))) *
                   r(k[size_t(((b * c.Tk + j) * c.Hkv + kh) * c.D + d)]);
          s[size_t(j)] = acc;
          mx = std::max(mx, acc);
        }
        if (mx == -INFINITY) continue;  // no visible key: 0
        double sum = 0;
        for (double& x : s) sum += (x = std::exp2(x - mx));
        for (int64_t j = 0; j < c.Tk; ++j)
          for (int64_t d = 0; d < c.Dv; ++d)
            out[size_t(((b * c.Tq + i) * c.H + h) * c.Dv + d)] +=
                s[size_t(j)] / sum * r(v[size_t(((b * c.Tk + j) * c.Hkv + kh) * c.Dv + d)]);
      }
    }
  return out;
}

const std::vector<AttnCase> kAttnCases = {
    {2, 4, 4, 128, 128, 64, 64},  // the benchmark classifier's shape, two query blocks
    {1, 2, 2, 1, 1, 64, 64},
    {2, 3, 3, 17, 5, 33, 20},                // odd head dims, a partial vector of values
    {1, 4, 2, 70, 131, 16, 16, true, true},  // grouped-query, causal bottom-right, 3 key blocks
    {2, 2, 2, 65, 65, 64, 64, true},         // causal top-left
    {3, 2, 2, 40, 100, 64, 48, false, false, true},         // key lengths (one is 0)
    {2, 1, 1, 9, 70, 256, 256, false, false, false, true},  // padding mask, the widest heads
    {1, 2, 2, 33, 200, 96, 40, true, true, true},  // lengths and causal; 96 features: 3 tile steps
    {4, 4, 2, 33, 67, 32, 32, true, true},  // sequences packed whole: grouped-query, odd last block
};

// Random inputs of case c ([B, T, H, D]): key lengths Tk - 7, 0, then Tk; a scattered padding mask.
struct AttnInputs {
  std::vector<float> q, k, v;
  std::vector<int64_t> lengths;
  std::vector<uint8_t> padding;
};

AttnInputs attn_inputs(const AttnCase& c) {
  AttnInputs in;
  in.q = random(c.B * c.Tq * c.H * c.D, 11);
  in.k = random(c.B * c.Tk * c.Hkv * c.D, 12);
  in.v = random(c.B * c.Tk * c.Hkv * c.Dv, 13, -2, 2);
  for (int64_t b = 0; b < c.B; ++b) in.lengths.push_back(b == 0 ? c.Tk - 7 : b == 1 ? 0 : c.Tk);
  in.padding.resize(static_cast<size_t>(c.B * c.Tk));
  for (size_t i = 0; i < in.padding.size(); ++i) in.padding[i] = (i * 7 + i / 5) % 3 == 0;
  return in;
}

// One bf16 kernel called directly on case c (layout [B, T, H, D]).
std::vector<float> run_bf16_kernel(const AttnCase& c, const std::vector<float>& q,
                                   const std::vector<float>& k, const std::vector<float>& v,
                                   const std::vector<int64_t>& lengths,
                                   const std::vector<uint8_t>& padding, kernels::Bf16Kernel which) {
  kernels::AttentionArgs<float> a;
  a.B = c.B, a.H = c.H, a.Hkv = c.Hkv, a.Tq = c.Tq, a.Tk = c.Tk, a.D = c.D, a.Dv = c.Dv;
  a.q = q.data(), a.k = k.data(), a.v = v.data();
  a.q_layout = {c.Tq * c.H * c.D, c.D, c.H * c.D};
  a.k_layout = {c.Tk * c.Hkv * c.D, c.D, c.Hkv * c.D};
  a.v_layout = {c.Tk * c.Hkv * c.Dv, c.Dv, c.Hkv * c.Dv};
  a.scale = 1.0 / std::sqrt(static_cast<double>(c.D));
  a.causal = c.causal;
  a.query_offset = c.bottom_right ? c.Tk - c.Tq : 0;
  if (c.lengths) a.key_lengths = lengths.data();
  const std::unique_ptr<bool[]> pad(new bool[padding.size()]);
  for (size_t i = 0; i < padding.size(); ++i) pad[i] = padding[i] != 0;
  if (c.padding) a.key_padding = pad.get();
  std::vector<float> out(static_cast<size_t>(c.B * c.Tq * c.H * c.Dv));
  kernels::attention_forward_bf16(a, out.data(), {c.Tq * c.H * c.Dv, c.Dv, c.H * c.Dv}, which);
  return out;
}

}  // namespace

TEST(Lowp, Bf16AttentionKernelsMatchTheirReference) {
  // Both bf16 kernels by name, whichever the CPU would choose: vdpbf16ps and the AMX tiles.
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 64;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  std::vector<kernels::Bf16Kernel> kinds = {kernels::Bf16Kernel::avx512};
  if (kernels::amx_attention_usable()) kinds.push_back(kernels::Bf16Kernel::amx);
  for (const AttnCase& c : kAttnCases) {
    const AttnInputs in = attn_inputs(c);
    const std::vector<double> want =
        bf16_attention_reference(c, in.q, in.k, in.v, in.lengths, in.padding);
    for (const kernels::Bf16Kernel which : kinds) {
      const std::vector<float> got =
          run_bf16_kernel(c, in.q, in.k, in.v, in.lengths, in.padding, which);
      double worst = 0, total = 0;
      for (size_t i = 0; i < want.size(); ++i) {
        worst = std::max(worst, std::abs(got[i] - want[i]));
        total += std::abs(got[i] - want[i]);
      }
      const std::string what =
          fmt::format("kernel {} B={} H={}/{} Tq={} Tk={} D={} Dv={}", static_cast<int>(which), c.B,
                      c.H, c.Hkv, c.Tq, c.Tk, c.D, c.Dv);
      EXPECT_LT(worst, 6e-3) << what;
      EXPECT_LT(total / static_cast<double>(want.size()), 1e-3) << what;
    }
  }
  if (!kernels::amx_attention_usable())
    EXPECT_THROW(run_bf16_kernel(kAttnCases[1], random(64, 1), random(64, 2), random(64, 3), {}, {},
                                 kernels::Bf16Kernel::amx),
                 ValueError);
}

// A NaN key reaches every query that sees it, as in the fp32 kernel (the exponential once mapped a
// NaN score to probability 0); the other batch entry stays finite.
TEST(Lowp, Bf16AttentionPassesNaNThrough) {
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 64;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  std::vector<kernels::Bf16Kernel> kinds = {kernels::Bf16Kernel::avx512};
  if (kernels::amx_attention_usable()) kinds.push_back(kernels::Bf16Kernel::amx);
  const AttnCase c{2, 2, 2, 70, 70, 64, 64};
  AttnInputs in = attn_inputs(c);
  in.k[static_cast<size_t>((5 * c.Hkv + 1) * c.D + 3)] = NAN;  // batch 0, key 5, head 1
  for (const kernels::Bf16Kernel which : kinds) {
    const std::vector<float> got =
        run_bf16_kernel(c, in.q, in.k, in.v, in.lengths, in.padding, which);
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < c.Tq; ++i)
        for (int64_t h = 0; h < c.H; ++h)
          for (int64_t d = 0; d < c.Dv; ++d) {
            const float x = got[static_cast<size_t>(((b * c.Tq + i) * c.H + h) * c.Dv + d)];
            ASSERT_EQ(b == 0 && h == 1 ? std::isnan(x) : std::isfinite(x), true)
                << "kernel " << static_cast<int>(which) << " b " << b << " i " << i << " h " << h;
          }
  }
}

// The AVX512-BF16 kernel runs a task per sequence when there are sequences enough to share out
// (each task packing its own sequence's heads, row by row), else a task per key/value head when
// the heads split evenly between the threads (each packing its own head), and otherwise packs every
// head first and splits the queries: the same numbers every way, at every thread count.
TEST(Lowp, Bf16AttentionIsTheSameAtEveryThreadCount) {
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 64;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  const int saved = num_threads();
  for (const AttnCase& c : kAttnCases) {
    const AttnInputs in = attn_inputs(c);
    set_num_threads(1);
    const std::vector<float> one =
        run_bf16_kernel(c, in.q, in.k, in.v, in.lengths, in.padding, kernels::Bf16Kernel::avx512);
    for (int threads : {2, 3, 5}) {
      set_num_threads(threads);
      EXPECT_EQ(
          run_bf16_kernel(c, in.q, in.k, in.v, in.lengths, in.padding, kernels::Bf16Kernel::avx512),
          one)
          << threads << " threads, B=" << c.B << " Hkv=" << c.Hkv;
    }
  }
  set_num_threads(saved);
}

TEST(Lowp, Bf16AttentionMatchesItsReference) {
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 64;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  for (const AttnCase& c : kAttnCases) {
    const AttnInputs in = attn_inputs(c);
    const std::vector<float>&q = in.q, &k = in.k, &v = in.v;
    const std::vector<int64_t>& lengths = in.lengths;
    const std::vector<uint8_t>& padding = in.padding;
    SdpaOptions o;
    o.layout = HeadsLayout::bthd;
    o.is_causal = c.causal;
    o.causal_alignment = c.bottom_right ? CausalAlignment::bottom_right : CausalAlignment::top_left;
    if (c.lengths) o.key_lengths = Tensor::from_vector(lengths, Shape{c.B});
    if (c.padding) {
      o.key_padding_mask = Tensor::empty(Shape{c.B, c.Tk}, DType::b8);
      for (size_t i = 0; i < padding.size(); ++i)
        o.key_padding_mask.data<bool>()[i] = padding[i] != 0;
    }
    const Tensor tq = Tensor::from_vector(q, Shape{c.B, c.Tq, c.H, c.D}),
                 tk = Tensor::from_vector(k, Shape{c.B, c.Tk, c.Hkv, c.D}),
                 tv = Tensor::from_vector(v, Shape{c.B, c.Tk, c.Hkv, c.Dv});
    NoGradGuard no_grad;
    const Tensor f32 = scaled_dot_product_attention(tq, tk, tv, o).output;
    o.bf16_products = true;
    const Tensor bf = scaled_dot_product_attention(tq, tk, tv, o).output;
    const std::vector<double> want = bf16_attention_reference(c, q, k, v, lengths, padding);
    double worst = 0, total = 0, worst_f32 = 0;
    bool differs = false;
    for (size_t i = 0; i < want.size(); ++i) {
      const double got = bf.data<float>()[i];
      worst = std::max(worst, std::abs(got - want[i]));
      total += std::abs(got - want[i]);
      worst_f32 = std::max(worst_f32, std::abs(got - static_cast<double>(f32.data<float>()[i])));
      differs |= got != static_cast<double>(f32.data<float>()[i]);
    }
    const std::string what =
        fmt::format("B={} H={}/{} Tq={} Tk={} D={} Dv={}", c.B, c.H, c.Hkv, c.Tq, c.Tk, c.D, c.Dv);
    // Only the probabilities' rounding (2^-9 relative each, averaging out) separates the two.
    EXPECT_LT(worst, 6e-3) << what;
    EXPECT_LT(total / static_cast<double>(want.size()), 1e-3) << what;
    EXPECT_LT(worst_f32, 5e-2) << what;  // and float32 attention is close
    EXPECT_TRUE(differs) << what << ": the bf16 kernel did not run";
  }
}

TEST(Lowp, Bf16AttentionOnlyWithoutGradients) {
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 64;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  const Tensor q = Tensor::from_vector(random(2 * 8 * 2 * 64, 1), Shape{2, 8, 2, 64}),
               k = Tensor::from_vector(random(2 * 8 * 2 * 64, 2), Shape{2, 8, 2, 64}),
               v = Tensor::from_vector(random(2 * 8 * 2 * 64, 3), Shape{2, 8, 2, 64});
  SdpaOptions o;
  o.layout = HeadsLayout::bthd;
  const Tensor f32 = scaled_dot_product_attention(q, k, v, o).output;
  o.bf16_products = true;
  // Recorded for autograd, or weights asked for: float32, bit for bit.
  const Tensor qg = q.detach().set_requires_grad();
  const Tensor rec = scaled_dot_product_attention(qg, k, v, o).output;
  EXPECT_EQ(std::memcmp(rec.raw_data(), f32.raw_data(), f32.numel() * 4), 0);
  NoGradGuard no_grad;
  o.need_weights = true;
  const Tensor weighed = scaled_dot_product_attention(q, k, v, o).output;
  EXPECT_EQ(std::memcmp(weighed.raw_data(), f32.raw_data(), f32.numel() * 4), 0);
  o.need_weights = false;
  const Tensor bf = scaled_dot_product_attention(q, k, v, o).output;
  EXPECT_NE(std::memcmp(bf.raw_data(), f32.raw_data(), f32.numel() * 4), 0);
}

TEST(Lowp, AConvertedMultiheadAttentionAttendsInBf16) {
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 16;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  manual_seed(3);
  nn::MultiheadAttention mha(64, 4, 0.0, true, std::nullopt, std::nullopt, true);
  mha.eval();
  const Tensor x = Tensor::from_vector(random(2 * 10 * 64, 4), Shape{2, 10, 64});
  NoGradGuard no_grad;
  nn::set_precision(mha, Precision::bf16);
  const Tensor with = mha.forward(x, x, x, {.need_weights = false}).output;
  // The same converted projections with float32 attention: q, k, v and out_proj by hand.
  const Tensor qkv = linear(x, mha.in_proj_weight, mha.in_proj_bias);
  SdpaOptions o;
  o.layout = HeadsLayout::bthd;
  auto heads = [&](int i) { return reshape(narrow(qkv, 2, i * 64, 64), Shape{2, 10, 4, 16}); };
  const Tensor att = scaled_dot_product_attention(heads(0), heads(1), heads(2), o).output;
  const Tensor without = mha.out_proj->forward(reshape(att, Shape{2, 10, 64}));
  double worst = 0;
  bool differs = false;
  for (int64_t i = 0; i < with.numel(); ++i) {
    worst = std::max(worst, std::abs(double(with.data<float>()[i]) - without.data<float>()[i]));
    differs |= with.data<float>()[i] != without.data<float>()[i];
  }
  // Where bf16 attention would be slower (AMX CPUs), the model attends in float32: the same
  // computation as by hand, bit for bit.
  EXPECT_EQ(differs, bf16_attention_pays());
  EXPECT_LT(worst, 2e-2);
}

TEST(Lowp, Bf16AttentionIgnoresValuesBeyondTheKeyLengths) {
  kernels::AttentionArgs<float> any;
  any.D = any.Dv = 16;
  if (!kernels::attention_bf16_handles(any)) GTEST_SKIP() << "no AVX512-BF16 here";
  // Five visible keys: the fifth pairs with the sixth in the kernel's layout, whose value is NaN.
  std::vector<float> v = random(9 * 16, 3);
  const Tensor q = Tensor::from_vector(random(3 * 16, 1), Shape{1, 1, 3, 16}),
               k = Tensor::from_vector(random(9 * 16, 2), Shape{1, 1, 9, 16});
  SdpaOptions o;
  o.key_lengths = Tensor::from_vector(std::vector<int64_t>{5}, Shape{1});
  o.bf16_products = true;
  NoGradGuard no_grad;
  const Tensor clean =
      scaled_dot_product_attention(q, k, Tensor::from_vector(v, Shape{1, 1, 9, 16}), o).output;
  for (size_t i = 5 * 16; i < v.size(); ++i) v[i] = std::nanf("");
  const Tensor dirty =
      scaled_dot_product_attention(q, k, Tensor::from_vector(v, Shape{1, 1, 9, 16}), o).output;
  EXPECT_EQ(std::memcmp(clean.raw_data(), dirty.raw_data(), clean.numel() * 4), 0);
}
