// nn attention modules: KV-cache decoding against full causal attention, MultiheadAttention's
// parameters and state dict, additive and Luong attention, positional encodings, module loading.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <span>
#include <tuple>

#include "gaze/nn/kv_cache.h"
#include "gaze/nn/multihead_attention.h"
#include "gaze/nn/positional.h"
#include "gaze/nn/rnn_attention.h"
#include "gaze/ops/ops.h"
#include "gradcheck.h"

namespace gaze {
namespace {

using testing::gradcheck;
using testing::rand_input;
using V = std::vector<Tensor>;

TEST(KVCache, StepByStepDecodingEqualsFullCausalAttention) {
  for (auto [H, Hkv, D] :
       {std::tuple<int64_t, int64_t, int64_t>{4, 4, 64}, {6, 2, 40}, {2, 1, 17}}) {
    SCOPED_TRACE(fmt::format("H{} Hkv{} D{}", H, Hkv, D));
    const int64_t B = 2, T = 300;  // crosses several key blocks and the cache's doubling
    Generator g(7);
    const Tensor q = randn(Shape{B, H, T, D}, DType::f32, &g),
                 k = randn(Shape{B, Hkv, T, D}, DType::f32, &g),
                 v = randn(Shape{B, Hkv, T, D}, DType::f32, &g);
    const Tensor full = scaled_dot_product_attention(q, k, v, {}, 0, true);
    nn::KVCache cache(B, Hkv, D, -1, /*capacity=*/8);
    int64_t t = 0;
    for (int64_t step : {1, 1, 5, 1, 64, 1, 100, 1, 126}) {  // single tokens and prefills of chunks
      cache.append(narrow(k, 2, t, step), narrow(v, 2, t, step));
      const Tensor out = cache.attend(narrow(q, 2, t, step));
      const Tensor want = narrow(full, 2, t, step);
      ASSERT_EQ(out.shape(), want.shape());
      if (step > 4) {  // prefills run the tiled kernel, row for row the same sums as the full call
        ASSERT_EQ(out.to_vector<float>(), want.to_vector<float>())
            << "positions " << t << ".." << t + step - 1;
      } else {  // a single token is attended on its own (ForwardQuery): other order, same value
        const auto a = out.to_vector<float>(), b = want.to_vector<float>();
        for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << "position " << t;
      }
      t += step;
    }
    EXPECT_EQ(t, T);
    EXPECT_EQ(cache.length(), T);
    EXPECT_GE(cache.capacity(), T);
  }
}

TEST(Attention, FewQueriesOnTheirOwnMatchTheTiledPath) {
  // Up to 4 queries (decoding's one per step) are attended one at a time with the keys' visible
  // range (lengths, causal limit, window) as loop bounds; an all-true boolean mask sends the same
  // call down the tiled path, the reference here. The sums run in another order: equal to 1e-5.
  for (auto [H, Hkv, D] :
       {std::tuple<int64_t, int64_t, int64_t>{4, 4, 64}, {6, 2, 32}, {2, 1, 16}}) {
    for (int64_t Tq : {1, 2, 4, 5}) {
      for (int64_t Tk : {1, 3, 17, 130, 300}) {
        for (int variant = 0; variant < 3; ++variant) {  // lengths; causal bottom-right; window
          SCOPED_TRACE(
              fmt::format("H{} Hkv{} D{} Tq{} Tk{} variant{}", H, Hkv, D, Tq, Tk, variant));
          const int64_t B = 3;
          Generator g(11);
          // bthd, as the decoder holds projections.
          const Tensor q = randn(Shape{B, Tq, H, D}, DType::f32, &g),
                       k = randn(Shape{B, Tk, Hkv, D}, DType::f32, &g),
                       v = randn(Shape{B, Tk, Hkv, D}, DType::f32, &g);
          SdpaOptions o;
          o.layout = HeadsLayout::bthd;
          o.need_weights = true;
          if (variant == 0)
            o.key_lengths =
                Tensor::from_vector<int64_t>({Tk, std::max<int64_t>(1, Tk / 2), 0}, Shape{B});
          o.is_causal = variant >= 1;
          o.causal_alignment = CausalAlignment::bottom_right;
          if (variant == 2) o.window = 7;
          const SdpaResult got = scaled_dot_product_attention(q, k, v, o);
          o.attn_mask = Tensor::ones(Shape{Tq, Tk}, DType::b8);
          const SdpaResult want = scaled_dot_product_attention(q, k, v, o);
          const auto a = got.output.to_vector<float>(), b = want.output.to_vector<float>();
          for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
          // The weights come from the log-sum-exp each path saves.
          const auto wa = got.weights.to_vector<float>(), wb = want.weights.to_vector<float>();
          for (size_t i = 0; i < wa.size(); ++i) ASSERT_NEAR(wa[i], wb[i], 1e-6) << i;
          if (variant == 0)  // no visible key: zeros, not NaN
            for (int64_t i = 2 * Tq * H * D; i < 3 * Tq * H * D; ++i)
              ASSERT_EQ(a[static_cast<size_t>(i)], 0.0f);
        }
      }
    }
  }
}

TEST(Attention, OneQueryCarriesNaNAndInfinityLikeTheTiledPath) {
  // A NaN among the visible keys' values reaches the output; one beyond the lengths does not.
  const int64_t D = 16, Tk = 9;
  Generator g(3);
  const Tensor q = randn(Shape{1, 1, 1, D}, DType::f32, &g),
               k = randn(Shape{1, 1, Tk, D}, DType::f32, &g);
  Tensor v = randn(Shape{1, 1, Tk, D}, DType::f32, &g);
  v.data<float>()[8 * D] = std::nanf("");
  SdpaOptions o;
  o.key_lengths = Tensor::from_vector<int64_t>({8}, Shape{1});
  for (float x : scaled_dot_product_attention(q, k, v, o).output.to_vector<float>())
    ASSERT_TRUE(std::isfinite(x));
  o.key_lengths = Tensor::from_vector<int64_t>({9}, Shape{1});
  EXPECT_TRUE(std::isnan(scaled_dot_product_attention(q, k, v, o).output.to_vector<float>()[0]));
}

// The band mask a window stands for: query i (at i + offset) sees key j iff |i + offset - j| <= w,
// and with causal also j <= i + offset.
Tensor band_mask(int64_t Tq, int64_t Tk, int64_t w, bool causal, int64_t offset) {
  Tensor m = Tensor::empty(Shape{Tq, Tk}, DType::b8);
  for (int64_t i = 0; i < Tq; ++i)
    for (int64_t j = 0; j < Tk; ++j)
      m.data<bool>()[i * Tk + j] = std::abs(i + offset - j) <= w && (!causal || j <= i + offset);
  return m;
}

TEST(Attention, SlidingWindowEqualsTheBandMaskForwardAndBackward) {
  // Skipped blocks are exact no-ops of the online softmax and of the gradient sums: the window
  // gives the masked computation's numbers, bit for bit (to 1e-5 for up to 4 queries, which the
  // window sends down the per-query path and the mask does not).
  for (auto [Tq, Tk] : {std::pair<int64_t, int64_t>{1, 1},
                        {100, 100},
                        {300, 300},
                        {70, 300},
                        {1, 300},
                        {700, 700}}) {
    for (int64_t w : {0, 1, 5, 64, 200, 5000}) {
      for (bool causal : {false, true}) {
        SCOPED_TRACE(fmt::format("Tq{} Tk{} w{} causal{}", Tq, Tk, w, causal));
        const int64_t B = 2, H = 4, Hkv = 2, D = 24;
        Generator g(5);
        const Tensor q = randn(Shape{B, H, Tq, D}, DType::f32, &g).set_requires_grad(),
                     k = randn(Shape{B, Hkv, Tk, D}, DType::f32, &g).set_requires_grad(),
                     v = randn(Shape{B, Hkv, Tk, D}, DType::f32, &g).set_requires_grad();
        const Tensor go = randn(Shape{B, H, Tq, D}, DType::f32, &g);
        // Bottom-right alignment (the last query sits at the last key) also places the window.
        const int64_t offset = Tk - Tq;
        SdpaOptions masked;
        masked.attn_mask = band_mask(Tq, Tk, w, causal, offset);
        SdpaOptions windowed;
        windowed.window = w;
        windowed.is_causal = causal;
        windowed.causal_alignment = CausalAlignment::bottom_right;
        auto run = [&](const SdpaOptions& o) {
          for (const Tensor* t : {&q, &k, &v}) t->zero_grad();
          const Tensor out = scaled_dot_product_attention(q, k, v, o).output;
          out.backward(go);
          return std::vector<std::vector<float>>{
              out.to_vector<float>(), q.grad().to_vector<float>(), k.grad().to_vector<float>(),
              v.grad().to_vector<float>()};
        };
        const auto want = run(masked), got = run(windowed);
        const char* names[] = {"output", "dq", "dk", "dv"};
        for (size_t i = 0; i < 4; ++i) {
          if (Tq > 4) {
            ASSERT_EQ(got[i], want[i]) << names[i];
          } else {  // one query at a time (ForwardQuery) sums in its own order
            for (size_t e = 0; e < got[i].size(); ++e)
              ASSERT_NEAR(got[i][e], want[i][e], 1e-5) << names[i] << " " << e;
          }
        }
      }
    }
  }
  SdpaOptions bad;
  bad.window = -1;
  const Tensor x = Tensor::zeros(Shape{1, 1, 2, 4});
  EXPECT_THROW(scaled_dot_product_attention(x, x, x, bad), ValueError);
}

TEST(KVCache, ReorderFollowsBeamIndices) {
  Generator g(8);
  const Tensor k = randn(Shape{3, 2, 5, 4}, DType::f32, &g),
               v = randn(Shape{3, 2, 5, 4}, DType::f32, &g);
  nn::KVCache cache(3, 2, 4);
  cache.append(k, v);
  cache.reorder({2, 2, 0});
  const Tensor kk = cache.keys();  // [T, B, H, D]
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t h = 0; h < 2; ++h)
      for (int64_t d = 0; d < 4; ++d) {
        EXPECT_EQ(kk.data<float>()[((t * 3 + 1) * 2 + h) * 4 + d],
                  k.data<float>()[((2 * 2 + h) * 5 + t) * 4 + d]);
        EXPECT_EQ(kk.data<float>()[((t * 3 + 2) * 2 + h) * 4 + d],
                  k.data<float>()[((0 * 2 + h) * 5 + t) * 4 + d]);
      }
  EXPECT_THROW(cache.reorder({0, 1, 2, 0}), ValueError);  // more rows than the batch
  EXPECT_THROW(cache.reorder({}), ValueError);
  EXPECT_THROW(cache.reorder({0, 3, 1}), IndexError);
  EXPECT_THROW(cache.append(Tensor::ones(Shape{3, 2, 1, 5}), Tensor::ones(Shape{3, 2, 1, 4})),
               ValueError);
  // Fewer indices shrink the batch (beam search drops the rows of finished sources).
  const Tensor before = cache.keys().clone_data();
  cache.reorder({2});
  const Tensor one = cache.keys();  // [T, 1, H, D]
  ASSERT_EQ(one.shape(), (Shape{5, 1, 2, 4}));
  for (int64_t t = 0; t < 5; ++t)
    for (int64_t i = 0; i < 8; ++i)
      EXPECT_EQ(one.data<float>()[t * 8 + i], before.data<float>()[(t * 3 + 2) * 8 + i]);
  cache.append(Tensor::ones(Shape{1, 2, 1, 4}), Tensor::ones(Shape{1, 2, 1, 4}));
  EXPECT_EQ(cache.length(), 6);
  nn::KVCache empty(1, 1, 4);
  EXPECT_THROW(empty.attend(Tensor::ones(Shape{1, 1, 1, 4})), StateError);
}

TEST(KVCache, ReorderInPlaceMatchesAGatherForAnyIndices) {
  // Reorders move only a table of stored rows; keys() and values() against a plain gather of a
  // copy, through identities, swaps, repeats, shrinking in any order and growth past the capacity
  // afterwards.
  Generator g(9);
  int64_t B = 5;
  nn::KVCache cache(B, 2, 3, 4, /*capacity=*/4);
  std::vector<std::vector<int64_t>> steps = {
      {0, 1, 2, 3, 4}, {1, 0, 2, 3, 4}, {4, 4, 4, 0, 1}, {3, 1, 0}, {2, 2, 1}, {0, 1, 2}, {1}};
  for (const auto& idx : steps) {
    cache.append(randn(Shape{B, 2, 2, 3}, DType::f32, &g),
                 randn(Shape{B, 2, 2, 4}, DType::f32, &g));
    const Tensor k = cache.keys().clone_data(), v = cache.values().clone_data();
    const int64_t T = cache.length(), nb = static_cast<int64_t>(idx.size());
    cache.reorder(idx);
    const Tensor k2 = cache.keys(), v2 = cache.values();
    ASSERT_EQ(k2.shape(), (Shape{T, nb, 2, 3}));
    for (int64_t t = 0; t < T; ++t)
      for (int64_t b = 0; b < nb; ++b) {
        const int64_t src = idx[static_cast<size_t>(b)];
        for (int64_t i = 0; i < 6; ++i)
          ASSERT_EQ(k2.data<float>()[(t * nb + b) * 6 + i], k.data<float>()[(t * B + src) * 6 + i]);
        for (int64_t i = 0; i < 8; ++i)
          ASSERT_EQ(v2.data<float>()[(t * nb + b) * 8 + i], v.data<float>()[(t * B + src) * 8 + i]);
      }
    B = nb;
  }
  EXPECT_GT(cache.capacity(), 4);
}

TEST(KVCache, AttendReadsReorderedRowsWhereTheyLie) {
  // After reorders, a decoding step (up to 4 queries) reads the stored rows through
  // SdpaOptions::kv_rows; it must give what attention over the gathered keys and values gives.
  // Wider queries (a prefill) and options the kernel cannot follow take the gathered path.
  NoGradGuard no_grad;
  Generator g(4);
  int64_t B = 4;
  const int64_t H = 4, Hkv = 2, D = 20;
  nn::KVCache cache(B, Hkv, D, -1, /*capacity=*/2);
  const std::vector<std::vector<int64_t>> steps = {{1, 0, 3, 3}, {2, 2, 0, 1}, {3, 0}, {1, 1}};
  for (const auto& idx : steps) {
    cache.append(randn(Shape{B, Hkv, 3, D}, DType::f32, &g),
                 randn(Shape{B, Hkv, 3, D}, DType::f32, &g));
    cache.reorder(idx);
    B = std::ssize(idx);
    for (int64_t Tq : {1, 4, 5}) {
      for (int64_t window : {-1, 2}) {
        SCOPED_TRACE(fmt::format("length {} B {} Tq {} window {}", cache.length(), B, Tq, window));
        const Tensor q = randn(Shape{B, H, Tq, D}, DType::f32, &g);
        SdpaOptions o;
        if (window >= 0) o.window = window;
        const auto got = cache.attend(q, HeadsLayout::bhtd, o).to_vector<float>();
        o.kv_layout = HeadsLayout::tbhd;
        o.is_causal = true;
        o.causal_alignment = CausalAlignment::bottom_right;
        const auto want = scaled_dot_product_attention(q, cache.keys(), cache.values(), o)
                              .output.to_vector<float>();
        ASSERT_EQ(got.size(), want.size());
        for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6) << i;
      }
    }
  }
}

TEST(KVCache, Bf16CacheEqualsAFloatCacheOfTheRoundedValues) {
  // A bf16 cache rounds what it is given to bf16 and otherwise attends as a float cache: fed the
  // rounded values, a float cache gives the same outputs, through reorders, shrinking batches and
  // the gathered path (5 queries), and keys()/values() return the rounded values.
  NoGradGuard no_grad;
  Generator g(6);
  int64_t B = 4;
  const int64_t H = 4, Hkv = 2, D = 20;
  nn::KVCache half(B, Hkv, D, -1, /*capacity=*/2, DType::f32, /*bf16=*/true),
      full(B, Hkv, D, -1, 2);
  EXPECT_TRUE(half.bf16());
  EXPECT_FALSE(full.bf16());
  auto round = [](const Tensor& x) {  // to bf16 (nearest even) and back
    Tensor r = x.clone_data();
    for (float& v : std::span(r.data<float>(), static_cast<size_t>(r.numel()))) {
      uint32_t b;
      std::memcpy(&b, &v, 4);
      b = ((b + 0x7fff + ((b >> 16) & 1)) >> 16) << 16;
      std::memcpy(&v, &b, 4);
    }
    return r;
  };
  const std::vector<std::vector<int64_t>> steps = {{0, 1, 2, 3}, {1, 0, 3, 3}, {2, 2, 0}, {1, 0}};
  for (const auto& idx : steps) {
    const Tensor k = randn(Shape{B, Hkv, 3, D}, DType::f32, &g),
                 v = randn(Shape{B, Hkv, 3, D}, DType::f32, &g);
    half.append(k, v);
    full.append(round(k), round(v));
    half.reorder(idx);
    full.reorder(idx);
    B = std::ssize(idx);
    EXPECT_EQ(half.keys().to_vector<float>(), full.keys().to_vector<float>());
    EXPECT_EQ(half.values().to_vector<float>(), full.values().to_vector<float>());
    for (int64_t Tq : {1, 5}) {
      SCOPED_TRACE(fmt::format("length {} B {} Tq {}", half.length(), B, Tq));
      const Tensor q = randn(Shape{B, H, Tq, D}, DType::f32, &g);
      EXPECT_EQ(half.attend(q).to_vector<float>(), full.attend(q).to_vector<float>());
    }
  }
  EXPECT_THROW(nn::KVCache(2, 2, 7, -1, 4, DType::f32, true), ValueError);  // odd head dim
  EXPECT_THROW(nn::KVCache(2, 2, 8, -1, 4, DType::f64, true), ValueError);  // not float32
}

TEST(Attention, KvRowsAreCheckedAndInferenceOnly) {
  // kv_rows [Tk, B]: query batch b reads key j from batch entry kv_rows[j, b] of a larger batch.
  Generator g(2);
  const Tensor q = randn(Shape{2, 1, 1, 16}, DType::f32, &g),
               k = randn(Shape{3, 1, 5, 16}, DType::f32, &g),
               v = randn(Shape{3, 1, 5, 16}, DType::f32, &g);
  SdpaOptions o;
  o.kv_rows = Tensor::from_vector<int64_t>({2, 0, 2, 1, 0, 0, 1, 1, 2, 2}, Shape{5, 2});
  const auto got = scaled_dot_product_attention(q, k, v, o).output.to_vector<float>();
  // The same keys laid out per query batch entry.
  Tensor kg = Tensor::empty(Shape{2, 1, 5, 16}), vg = Tensor::empty(Shape{2, 1, 5, 16});
  for (int64_t j = 0; j < 5; ++j)
    for (int64_t b = 0; b < 2; ++b) {
      const int64_t e = o.kv_rows.data<int64_t>()[j * 2 + b];
      std::copy_n(k.data<float>() + (e * 5 + j) * 16, 16, kg.data<float>() + (b * 5 + j) * 16);
      std::copy_n(v.data<float>() + (e * 5 + j) * 16, 16, vg.data<float>() + (b * 5 + j) * 16);
    }
  const auto want =
      scaled_dot_product_attention(q, kg, vg, SdpaOptions{}).output.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-6);
  for (double scale : {-1.0, 0.0, 0.3}) {  // a scale that is not positive multiplies before the max
    SCOPED_TRACE(fmt::format("scale {}", scale));
    SdpaOptions so = o, ref;
    so.scale = ref.scale = scale;
    const auto a = scaled_dot_product_attention(q, k, v, so).output.to_vector<float>(),
               b = scaled_dot_product_attention(q, kg, vg, ref).output.to_vector<float>();
    for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-6);
  }

  SdpaOptions bad = o;
  bad.kv_rows = Tensor::zeros(Shape{4, 2}, DType::i64);  // not [Tk, B]
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, bad), ValueError);
  bad.kv_rows = Tensor::full(Shape{5, 2}, 3.0, DType::i64);  // past the key's batch
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, bad), IndexError);
  bad = o;
  bad.need_weights = true;
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, bad), ValueError);
  bad = o;
  bad.attn_mask = Tensor::ones(Shape{1, 5}, DType::b8);
  EXPECT_THROW(scaled_dot_product_attention(q, k, v, bad), ValueError);
  const Tensor q5 = randn(Shape{2, 1, 5, 16}, DType::f32, &g);  // more than 4 queries
  EXPECT_THROW(scaled_dot_product_attention(q5, k, v, o), ValueError);
  const Tensor qg = q.clone_data().set_requires_grad();  // recorded for autograd
  EXPECT_THROW(scaled_dot_product_attention(qg, k, v, o), ValueError);
}

TEST(MultiheadAttention, ParametersStateDictAndStrictLoading) {
  nn::MultiheadAttention mha(8, 2);
  std::vector<std::string> names;
  for (const auto& [k, v] : mha.state_dict()) names.push_back(k + v.shape_str());
  EXPECT_EQ(names, (std::vector<std::string>{"in_proj_weight[24, 8]", "in_proj_bias[24]",
                                             "out_proj.weight[8, 8]", "out_proj.bias[8]"}));
  nn::MultiheadAttention cross(8, 2, 0.0, true, 5, 3);
  names.clear();
  for (const auto& [k, v] : cross.state_dict()) names.push_back(k + v.shape_str());
  EXPECT_EQ(names, (std::vector<std::string>{"q_proj_weight[8, 8]", "k_proj_weight[8, 5]",
                                             "v_proj_weight[8, 3]", "in_proj_bias[24]",
                                             "out_proj.weight[8, 8]", "out_proj.bias[8]"}));
  nn::MultiheadAttention nobias(8, 2, 0.0, false);
  EXPECT_EQ(nobias.state_dict().size(), 2u);
  // Loading: values copied in; every problem reported at once.
  NamedTensors sd = mha.state_dict();
  for (auto& [k, v] : sd) v = Tensor::full(v.shape(), 0.5);
  mha.load_state_dict(sd);
  EXPECT_EQ(mha.in_proj_weight.to_vector<float>()[0], 0.5f);
  sd.erase(sd.begin());
  sd.emplace_back("extra", Tensor::ones(Shape{1}));
  sd[0].second = Tensor::ones(Shape{3});
  try {
    mha.load_state_dict(sd);
    FAIL();
  } catch (const ValueError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("missing keys: in_proj_weight"), std::string::npos) << m;
    EXPECT_NE(m.find("unexpected keys: extra"), std::string::npos) << m;
    EXPECT_NE(m.find("size mismatch for in_proj_bias (expected [24], got [3])"), std::string::npos)
        << m;
  }
  EXPECT_THROW(nn::MultiheadAttention(10, 3), ValueError);
}

TEST(MultiheadAttention, LayoutsAgreeAndGradientsFlowToEveryParameter) {
  manual_seed(1);
  nn::MultiheadAttention seq(16, 4), batch(16, 4, 0.0, true, std::nullopt, std::nullopt, true);
  batch.load_state_dict(seq.state_dict());
  Generator g(2);
  Tensor x = randn(Shape{5, 3, 16}, DType::f32, &g);  // [T, B, E]
  const auto a = seq.forward(x, x, x);
  const auto b = batch.forward(transpose(x, 0, 1), transpose(x, 0, 1), transpose(x, 0, 1));
  const auto av = a.output.to_vector<float>(), bv = transpose(b.output, 0, 1).to_vector<float>();
  for (size_t i = 0; i < av.size(); ++i) EXPECT_NEAR(av[i], bv[i], 1e-5);
  EXPECT_EQ(a.weights.shape(), (Shape{3, 5, 5}));
  sum(a.output).backward();
  for (const auto& [k, p] : seq.named_parameters()) EXPECT_TRUE(p.grad().defined()) << k;
}

TEST(AdditiveAndLuongAttention, GradientsAndMasking) {
  manual_seed(3);
  auto to64 = [](nn::Module& m) { m.to(DType::f64); };  // float64 modules for finite differences
  nn::AdditiveAttention add_attn(3, 4, 5);
  to64(add_attn);
  nn::SourceMask mask;
  mask.lengths = Tensor::from_vector<int64_t>({6, 2}, Shape{2});
  const Tensor s = rand_input({2, 3}, 4), h = rand_input({2, 6, 4}, 5),
               vals = rand_input({2, 6, 2}, 6);
  EXPECT_TRUE(gradcheck(
      [&](const V& x) { return add_attn.forward(x[0], x[1], x[2], mask).context; }, {s, h, vals}));
  const auto out = add_attn.forward(s, h, vals, mask);
  const auto w = out.weights.to_vector<double>();
  for (int64_t j = 2; j < 6; ++j) EXPECT_EQ(w[6 + j], 0.0);  // padding gets no weight
  double total = 0;
  for (int64_t j = 0; j < 6; ++j) total += w[j];
  EXPECT_NEAR(total, 1.0, 1e-12);
  for (auto sc : {nn::LuongScore::dot, nn::LuongScore::general, nn::LuongScore::concat}) {
    nn::LuongAttention lu(sc, 4, 4, 3);
    to64(lu);
    const Tensor q = rand_input({2, 3, 4}, 7);
    EXPECT_TRUE(gradcheck([&](const V& x) { return lu.forward(x[0], x[1], x[2], mask).context; },
                          {q, h, vals}))
        << static_cast<int>(sc);
  }
  // A source with no position at all: zero weights and context, no NaN.
  nn::SourceMask none;
  none.lengths = Tensor::from_vector<int64_t>({0, 6}, Shape{2});
  const auto z = add_attn.forward(s, h, vals, none);
  for (double x : z.context.to_vector<double>()) EXPECT_FALSE(std::isnan(x));
  EXPECT_EQ(z.context.to_vector<double>()[0], 0.0);
  EXPECT_THROW(nn::LuongAttention(nn::LuongScore::dot, 3, 4), ValueError);
}

TEST(Positional, SinusoidalLearnedAndRotary) {
  const Tensor pe = sinusoidal_positions(4, 6, 1, DType::f64);
  EXPECT_NEAR(pe.data<double>()[0], std::sin(1.0), 1e-15);  // p=1, i=0
  EXPECT_NEAR(pe.data<double>()[1 * 6 + 3], std::cos(2.0 * std::pow(10000, -2.0 / 6)),
              1e-15);  // p=2, i=1
  // Every entry is the sine or cosine of the same double product as the textbook loop, rounded
  // once: odd widths, offsets, both float types, and a table long enough to be split by threads.
  for (auto [n, dim, offset] : {std::tuple<int64_t, int64_t, int64_t>{37, 7, 5}, {512, 64, 0}})
    for (DType dt : {DType::f32, DType::f64}) {
      const auto got =
          sinusoidal_positions(n, dim, offset, dt).to_dtype(DType::f64).to_vector<double>();
      for (int64_t p = 0; p < n; ++p)
        for (int64_t i = 0; i < dim; ++i) {
          const double w = std::exp(-std::log(10000.0) * static_cast<double>(i / 2 * 2) /
                                    static_cast<double>(dim));
          const double th = static_cast<double>(p + offset) * w;
          const double want = i % 2 == 0 ? std::sin(th) : std::cos(th);
          ASSERT_EQ(got[static_cast<size_t>(p * dim + i)],
                    dt == DType::f32 ? static_cast<double>(static_cast<float>(want)) : want)
              << n << " " << dim << " " << p << " " << i;
        }
    }
  // RoPE gradients, both conventions, partial rotary dims and explicit positions.
  const Tensor x = rand_input({2, 3, 5, 8}, 9);
  for (bool inter : {false, true}) {
    RotaryOptions o;
    o.interleaved = inter;
    o.offset = 7;
    EXPECT_TRUE(gradcheck([&](const V& v) { return rotary_embedding(v[0], o); }, {x}));
    o.rotary_dim = 4;
    EXPECT_TRUE(gradcheck([&](const V& v) { return rotary_embedding(v[0], o); }, {x}));
  }
  // Rotation preserves norms; relative positions: <R(p)q, R(p+k)k> depends only on k.
  RotaryOptions o;
  const Tensor y = rotary_embedding(x, o);
  EXPECT_NEAR(sum(mul(x, x)).item<double>(), sum(mul(y, y)).item<double>(), 1e-9);
  o.layout = HeadsLayout::bthd;
  o.positions = Tensor::from_vector<int64_t>({3, 1, 4, 1, 5}, Shape{5});
  EXPECT_TRUE(gradcheck([&](const V& v) { return rotary_embedding(v[0], o); },
                        {rand_input({2, 5, 3, 8}, 10)}));
  // The encoding module's cached rows and the rows past its cache equal the function's.
  nn::SinusoidalPositionalEncoding enc(6, true, 4);
  const Tensor zeros = Tensor::zeros(Shape{1, 5, 6});
  for (int64_t offset : {0, 2, 9}) {
    const auto got = enc.forward(zeros, offset).to_vector<float>();
    const auto want = sinusoidal_positions(5, 6, offset).to_vector<float>();
    EXPECT_EQ(got, want) << offset;
  }
  EXPECT_EQ(enc.state_dict().size(), 0u);
  nn::LearnedPositionalEmbedding lpe(10, 4);
  EXPECT_THROW(lpe.forward(Tensor::ones(Shape{1, 8, 4}), 5), IndexError);
  EXPECT_EQ(lpe.forward(Tensor::ones(Shape{1, 8, 4}), 2).shape(), (Shape{1, 8, 4}));
}

TEST(MaskedSoftmax, ZeroForMaskedAndEmptySlices) {
  const Tensor x = rand_input({2, 4}, 11);
  const Tensor m = Tensor::from_vector(
      std::vector<bool>{true, false, true, false, false, false, false, false}, Shape{2, 4});
  EXPECT_TRUE(gradcheck([&](const V& v) { return masked_softmax(v[0], m, 1); }, {x}));
  const auto y = masked_softmax(x, m, 1).to_vector<double>();
  EXPECT_EQ(y[1], 0.0);
  EXPECT_NEAR(y[0] + y[2], 1.0, 1e-12);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(y[i], 0.0);
  EXPECT_EQ(
      masked_softmax(Tensor::zeros(Shape{3, 0}), Tensor::ones(Shape{3, 0}, DType::b8), 1).shape(),
      (Shape{3, 0}));
}

}  // namespace
}  // namespace gaze
