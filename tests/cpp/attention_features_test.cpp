// Fused attention beyond the naive comparison: finite-difference gradients (dropout included),
// fully masked rows, explicit weights, dropout statistics, grouped-query heads, determinism and bad
// input.
#include <gtest/gtest.h>

#include <cmath>

#include "gaze/core/threads.h"
#include "gaze/ops/ops.h"
#include "gradcheck.h"

namespace gaze {
namespace {

using testing::gradcheck;
using testing::rand_input;
using V = std::vector<Tensor>;

TEST(AttentionGrad, FiniteDifferences) {
  const Tensor q = rand_input({1, 2, 5, 3}, 1), k = rand_input({1, 2, 7, 3}, 2),
               v = rand_input({1, 2, 7, 4}, 3);
  EXPECT_TRUE(gradcheck([](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
                        {q, k, v}));
  EXPECT_TRUE(gradcheck(
      [](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2], {}, 0, true); },
      {q, k, v}));
  SdpaOptions o;
  o.alibi_slopes = alibi_slopes(2, DType::f64);
  o.key_lengths = Tensor::from_vector<int64_t>({5}, Shape{1});
  o.scale = 0.7;
  EXPECT_TRUE(gradcheck(
      [&](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2], o).output; },
      {q, k, v}));
  // Grouped-query: two query heads share one kv head.
  const Tensor k1 = rand_input({1, 1, 7, 3}, 4), v1 = rand_input({1, 1, 7, 4}, 5);
  EXPECT_TRUE(gradcheck([](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
                        {q, k1, v1}));
  // Dropout: the same counters in the forward and the backward, so the function is deterministic.
  SdpaOptions d;
  d.dropout_p = 0.4;
  EXPECT_TRUE(gradcheck(
      [&](const V& x) {
        Generator g(9);
        d.generator = &g;
        return scaled_dot_product_attention(x[0], x[1], x[2], d).output;
      },
      {q, k, v}));
}

TEST(AttentionMasking, FullyMaskedRowsGiveZeroOutputAndGradient) {
  Tensor q = rand_input({2, 1, 3, 4}, 6), k = rand_input({2, 1, 5, 4}, 7),
         v = rand_input({2, 1, 5, 4}, 8);
  SdpaOptions o;
  Tensor m = Tensor::ones(Shape{3, 5}, DType::b8);
  for (int64_t j = 0; j < 5; ++j) m.data<bool>()[1 * 5 + j] = false;  // query 1 sees nothing
  o.attn_mask = m;
  o.key_lengths = Tensor::from_vector<int64_t>({5, 0}, Shape{2});  // batch 1 has no keys at all
  Tensor out = scaled_dot_product_attention(q, k, v, o).output;
  out.backward(Tensor::ones(out.shape(), DType::f64));
  const auto y = out.to_vector<double>();
  for (double x : y) ASSERT_FALSE(std::isnan(x));
  for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(y[1 * 4 + c], 0.0);  // batch 0, query 1
  for (int64_t i = 12; i < 24; ++i) EXPECT_EQ(y[i], 0.0);        // batch 1
  for (const Tensor& g : {q.grad(), k.grad(), v.grad()})
    for (double x : g.to_vector<double>()) ASSERT_FALSE(std::isnan(x));
  for (int64_t c = 0; c < 4; ++c) EXPECT_EQ(q.grad().to_vector<double>()[1 * 4 + c], 0.0);
  for (int64_t i = 12; i < 24; ++i) EXPECT_EQ(q.grad().to_vector<double>()[i], 0.0);
  for (int64_t i = 20; i < 40; ++i) EXPECT_EQ(k.grad().to_vector<double>()[i], 0.0);
  // Also with causal attention whose first queries see nothing (bottom-right, Tq > Tk).
  SdpaOptions c;
  c.is_causal = true;
  c.causal_alignment = CausalAlignment::bottom_right;
  Tensor q2 = rand_input({1, 1, 6, 4}, 9), k2 = rand_input({1, 1, 3, 4}, 10);
  Tensor o2 = scaled_dot_product_attention(q2, k2, k2, c).output;
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(o2.to_vector<double>()[i], 0.0);  // queries 0..2 see no key
}

TEST(AttentionWeights, OnlyOnRequestAndEqualToSoftmax) {
  Tensor q = rand_input({2, 3, 4, 5}, 11, -1, 1, false),
         k = rand_input({2, 3, 6, 5}, 12, -1, 1, false),
         v = rand_input({2, 3, 6, 5}, 13, -1, 1, false);
  SdpaOptions o;
  o.is_causal = true;
  EXPECT_FALSE(scaled_dot_product_attention(q, k, v, o).weights.defined());
  o.need_weights = true;
  SdpaResult r = scaled_dot_product_attention(q, k, v, o);
  ASSERT_EQ(r.weights.shape(), (Shape{2, 3, 4, 6}));
  Tensor s = matmul(q, k, false, true) * (1 / std::sqrt(5.0));
  Tensor mask = Tensor::zeros(Shape{4, 6}, DType::f64);
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = i + 1; j < 6; ++j) mask.data<double>()[i * 6 + j] = -INFINITY;
  const Tensor ref = softmax(s + mask, -1);
  for (int64_t i = 0; i < ref.numel(); ++i)
    EXPECT_NEAR(r.weights.data<double>()[i], ref.data<double>()[i], 1e-12);
  // weights @ v is the output.
  const Tensor wv = matmul(r.weights, v);
  for (int64_t i = 0; i < wv.numel(); ++i)
    EXPECT_NEAR(wv.data<double>()[i], r.output.data<double>()[i], 1e-12);
  // A subset of heads, in the requested order.
  o.weight_heads = {2, 0};
  Tensor sub = scaled_dot_product_attention(q, k, v, o).weights;
  ASSERT_EQ(sub.shape(), (Shape{2, 2, 4, 6}));
  EXPECT_EQ(select(select(sub, 1, 0), 0, 1).to_vector<double>(),
            select(select(r.weights, 1, 2), 0, 1).to_vector<double>());
}

TEST(AttentionDropout, StatisticsReproducibilityAndConsistency) {
  Tensor q = Tensor::zeros(Shape{1, 4, 64, 8}), k = Tensor::zeros(Shape{1, 4, 256, 8}),
         v = rand(Shape{1, 4, 256, 8});
  SdpaOptions o;
  o.dropout_p = 0.3;
  o.need_weights = true;
  Generator g1(21), g2(21), g3(22);
  o.generator = &g1;
  SdpaResult a = scaled_dot_product_attention(q, k, v, o);
  o.generator = &g2;
  SdpaResult b = scaled_dot_product_attention(q, k, v, o);
  o.generator = &g3;
  SdpaResult c = scaled_dot_product_attention(q, k, v, o);
  EXPECT_EQ(a.output.to_vector<float>(), b.output.to_vector<float>());  // same seed, same mask
  EXPECT_NE(a.output.to_vector<float>(), c.output.to_vector<float>());
  // Uniform scores: every probability is 1/256; survivors are scaled by 1/(1-p).
  int64_t kept = 0;
  for (float w : a.weights.to_vector<float>()) {
    if (w != 0) {
      ++kept;
      ASSERT_NEAR(w, 1.0 / 256 / 0.7, 1e-7);
    }
  }
  EXPECT_NEAR(static_cast<double>(kept) / a.weights.numel(), 0.7, 0.01);
  // The documented counters: element (b, h, i, j) uses counter ((b*H + h)*Tk + j)*Tq + i of the
  // generator's stream (a fresh generator starts at block 0).
  const auto wa = a.weights.to_vector<float>();
  for (int64_t h = 0; h < 4; ++h)
    for (int64_t i = 0; i < 64; ++i)
      for (int64_t j = 0; j < 256; ++j) {
        const uint64_t ctr = static_cast<uint64_t>((h * 256 + j) * 64 + i);
        const bool drop =
            static_cast<double>(uniform_float(philox4x32(21, 0, ctr / 4)[ctr % 4])) < 0.3;
        ASSERT_EQ(wa[(h * 64 + i) * 256 + j] == 0, drop) << h << " " << i << " " << j;
      }
  // The returned (dropped-out) weights are exactly what multiplied v.
  const Tensor wv = matmul(a.weights, v);
  for (int64_t i = 0; i < wv.numel(); ++i)
    EXPECT_NEAR(wv.data<float>()[i], a.output.data<float>()[i], 1e-5);
}

TEST(AttentionHeads, GroupedQueryEqualsRepeatedKvHeadsBitwise) {
  Generator g(31);
  const Tensor q = randn(Shape{2, 6, 37, 16}, DType::f32, &g),
               k = randn(Shape{2, 2, 45, 16}, DType::f32, &g),
               v = randn(Shape{2, 2, 45, 16}, DType::f32, &g);
  auto repeat = [](const Tensor& t) {
    return reshape(expand(reshape(t, Shape{2, 2, 1, 45, 16}), Shape{2, 2, 3, 45, 16}),
                   Shape{2, 6, 45, 16});
  };
  for (bool causal : {false, true}) {
    const Tensor gqa = scaled_dot_product_attention(q, k, v, {}, 0, causal);
    const Tensor mha = scaled_dot_product_attention(q, repeat(k), repeat(v), {}, 0, causal);
    EXPECT_EQ(gqa.to_vector<float>(), mha.to_vector<float>());
  }
}

TEST(AttentionDeterminism, SameInputsSameBitsAndThreadCountInvariantForward) {
  Generator g(41);
  Tensor q = randn(Shape{2, 4, 200, 32}, DType::f32, &g),
         k = randn(Shape{2, 4, 300, 32}, DType::f32, &g),
         v = randn(Shape{2, 4, 300, 32}, DType::f32, &g);
  q.set_requires_grad(), k.set_requires_grad(), v.set_requires_grad();
  auto run = [&] {
    q.zero_grad(), k.zero_grad(), v.zero_grad();
    Tensor out = scaled_dot_product_attention(q, k, v, {}, 0, true);
    sum(out * out).backward();
    return std::vector<std::vector<float>>{out.to_vector<float>(), q.grad().to_vector<float>(),
                                           k.grad().to_vector<float>(),
                                           v.grad().to_vector<float>()};
  };
  const int saved = num_threads();
  set_num_threads(2);
  const auto a = run(), b = run();
  EXPECT_EQ(a, b);
  set_num_threads(1);
  const auto c = run();
  set_num_threads(saved);
  EXPECT_EQ(a[0], c[0]);  // forward rows are independent of the split
  EXPECT_EQ(a, c);        // 8 kv heads >= threads: dQ needs no split, so the backward matches too
}

TEST(AttentionErrors, BadInputs) {
  const Tensor q = Tensor::ones(Shape{2, 4, 5, 8}), k = Tensor::ones(Shape{2, 4, 7, 8});
  EXPECT_THROW(scaled_dot_product_attention(q, Tensor::ones(Shape{2, 4, 7, 6}), k),
               ValueError);  // head dims
  EXPECT_THROW(scaled_dot_product_attention(q, k, Tensor::ones(Shape{2, 4, 6, 8})),
               ValueError);  // Tk differs
  EXPECT_THROW(scaled_dot_product_attention(q, Tensor::ones(Shape{2, 3, 7, 8}),
                                            Tensor::ones(Shape{2, 3, 7, 8})),
               ValueError);  // 4 heads not a multiple of 3
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, Tensor::ones(Shape{3, 7})),
               ValueError);  // mask shape
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, Tensor::ones(Shape{5, 7}, DType::f64)),
               ValueError);
  EXPECT_THROW(scaled_dot_product_attention(Tensor::ones(Shape{2, 5}), k, k), ValueError);
  SdpaOptions o;
  o.key_lengths = Tensor::from_vector<int64_t>({3, 9}, Shape{2});
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, o), IndexError);
  o.key_lengths = Tensor();
  o.key_padding_mask = Tensor::zeros(Shape{2, 6}, DType::b8);
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, o), ValueError);
  o.key_padding_mask = Tensor();
  o.dropout_p = 1.5;
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, o), ValueError);
  o.dropout_p = 0;
  o.need_weights = true;
  o.weight_heads = {4};
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, o), IndexError);
  Tensor fm = Tensor::zeros(Shape{5, 7});
  fm.set_requires_grad();
  EXPECT_THROW(scaled_dot_product_attention(q, k, k, fm),
               ValueError);  // mask gradients unsupported
}

TEST(AttentionEdges, EmptyDimensionsAndLargeHeads) {
  // Empty queries, empty keys (every query sees nothing: output 0), an empty batch, and D > 256.
  for (auto [B, Tq, Tk, D] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{2, 0, 5, 8},
                              {2, 5, 0, 8},
                              {0, 5, 5, 8},
                              {1, 3, 4, 512}}) {
    SCOPED_TRACE(fmt::format("B{} Tq{} Tk{} D{}", B, Tq, Tk, D));
    Tensor q = rand_input({B, 2, Tq, D}, 1), k = rand_input({B, 2, Tk, D}, 2),
           v = rand_input({B, 2, Tk, D}, 3);
    Tensor out = scaled_dot_product_attention(q, k, v);
    out.backward(Tensor::ones(out.shape(), DType::f64));
    EXPECT_EQ(out.shape(), (Shape{B, 2, Tq, D}));
    for (double x : out.to_vector<double>()) ASSERT_TRUE(Tk > 0 || x == 0.0);
    EXPECT_EQ(k.grad().shape(), k.shape());
    for (double x : k.grad().to_vector<double>()) ASSERT_FALSE(std::isnan(x));
  }
  EXPECT_TRUE(gradcheck(
      [](const V& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
      {rand_input({1, 1, 2, 300}, 4), rand_input({1, 1, 3, 300}, 5), rand_input({1, 1, 3, 2}, 6)}));
  // No queries on the tiled path (ALiBi, a mask and dropout keep a call off the one-query path),
  // at one and two threads: an empty result, not a division by zero in the work split.
  const int saved = num_threads();
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    const Tensor q = Tensor::zeros({1, 2, 0, 16}), k = Tensor::ones({1, 2, 8, 16}),
                 v = Tensor::ones({1, 2, 8, 16});
    SdpaOptions alibi, dropout, mask;
    alibi.alibi_slopes = alibi_slopes(2);
    dropout.dropout_p = 0.3;
    mask.attn_mask = Tensor::zeros({0, 8});
    for (const SdpaOptions* o : {&alibi, &dropout, &mask})
      EXPECT_EQ(scaled_dot_product_attention(q, k, v, *o).output.shape(), (Shape{1, 2, 0, 16}));
  }
  set_num_threads(saved);
}

TEST(AttentionNan, NanInputsPropagate) {
  Tensor q = Tensor::ones(Shape{1, 1, 2, 4}), k = Tensor::ones(Shape{1, 1, 3, 4}),
         v = Tensor::ones(Shape{1, 1, 3, 4});
  k.data<float>()[5] = NAN;  // key 1
  const auto y = scaled_dot_product_attention(q, k, v).to_vector<float>();
  for (float x : y) EXPECT_TRUE(std::isnan(x));
  // And into the gradient, through the saved log-sum-exp, whether the queries are taken one by one
  // (2) or as a tile (8).
  for (int64_t tq : {2, 8}) {
    Tensor qg = Tensor::ones(Shape{1, 1, tq, 4});
    qg.set_requires_grad();
    Tensor out = scaled_dot_product_attention(qg, k, v);
    out.backward(Tensor::ones(out.shape()));
    for (float x : qg.grad().to_vector<float>()) EXPECT_TRUE(std::isnan(x)) << "Tq " << tq;
  }
}

}  // namespace
}  // namespace gaze
