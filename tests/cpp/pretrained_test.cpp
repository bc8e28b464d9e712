// The pieces pretrained models need: the widening Transformer layer, tensor2tensor's timing signal
// and the sentence encoder (gradients in float64), the glove backbone (characters, shapes, BiLSTM
// or Transformer; gradients), word shapes, whole-chunk word lookup, and fine-tuning's parameter
// groups.
#include <gtest/gtest.h>

#include <cmath>

#include "gaze/core/rng.h"
#include "gaze/models/word_vector_backbone.h"
#include "gaze/ops/positional.h"
#include "gaze/ops/reduce.h"
#include "gaze/text/vocab_tokenizer.h"
#include "gaze/train/param_groups.h"
#include "gaze/train/trainer.h"
#include "gradcheck.h"

namespace gaze {
namespace {

Tensor ids(std::vector<int64_t> v, int64_t rows) {
  const int64_t cols = static_cast<int64_t>(v.size()) / rows;
  return Tensor::from_vector(v, Shape{rows, cols});
}

TEST(Pretrained, TimingSignalIsSinThenCosOverGeometricTimescales) {
  const Tensor t = timing_signal(5, 8, 2);
  ASSERT_EQ(t.shape(), (Shape{5, 8}));
  for (int64_t p = 0; p < 5; ++p)
    for (int64_t i = 0; i < 4; ++i) {
      const double w = std::pow(1e4, -static_cast<double>(i) / 3.0), th = (p + 2) * w;
      EXPECT_NEAR(t.data<float>()[p * 8 + i], std::sin(th), 2e-6);
      EXPECT_NEAR(t.data<float>()[p * 8 + 4 + i], std::cos(th), 2e-6);
    }
  EXPECT_THROW(timing_signal(2, 3), ValueError);
}

models::SentenceEncoderConfig use_like() {
  models::SentenceEncoderConfig c;
  c.vocab_size = 11, c.embedding_dim = 4, c.d_model = 6, c.nhead = 2, c.num_layers = 2;
  c.dim_feedforward = 8, c.dropout = 0.0, c.pad_id = 10, c.layer_norm_eps = 1e-6;
  c.activation = Activation::relu, c.positions = models::Positions::timing_signal;
  c.final_norm = false, c.embedding_scale = 2.0;
  return c;
}

TEST(Pretrained, SentenceEncoderWidensThenPoolsAndNormalises) {
  manual_seed(3);
  models::SentenceEncoder m(use_like());
  m.eval();
  const auto names = m.state_dict();
  auto has = [&](const std::string& n) { return find(names, n).defined(); };
  EXPECT_TRUE(has("encoder.layers.0.residual_proj.weight"));
  EXPECT_FALSE(has("encoder.layers.1.residual_proj.weight"));
  EXPECT_FALSE(has("encoder.norm.weight"));
  EXPECT_EQ(find(names, "encoder.layers.0.self_attn.out_proj.weight").shape(), (Shape{6, 4}));
  EXPECT_EQ(find(names, "encoder.layers.0.linear1.weight").shape(), (Shape{8, 6}));
  EXPECT_EQ(find(names, "embedding.weight").shape(), (Shape{11, 4}));
  const Tensor y = m.forward(ids({1, 2, 3, 4, 5, 10}, 2),
                             Tensor::from_vector(std::vector<int64_t>{3, 2}, Shape{2}));
  ASSERT_EQ(y.shape(), (Shape{2, 6}));
  for (int64_t b = 0; b < 2; ++b) {
    double n = 0;
    for (int64_t k = 0; k < 6; ++k) n += std::pow(y.data<float>()[b * 6 + k], 2);
    EXPECT_NEAR(n, 1.0, 1e-5);
  }
  // Padding changes nothing: the second row alone.
  const Tensor alone = m.forward(ids({4, 5}, 1), Tensor());
  for (int64_t k = 0; k < 6; ++k) EXPECT_NEAR(alone.data<float>()[k], y.data<float>()[6 + k], 1e-6);
  // The configuration round-trips.
  const auto again = models::SentenceEncoder::parse_config(m.config_json());
  EXPECT_EQ(again.embedding_dim, 4);
  EXPECT_EQ(again.positions, models::Positions::timing_signal);
  EXPECT_FALSE(again.final_norm);
  EXPECT_EQ(again.embedding_scale, 2.0);
}

TEST(Pretrained, SentenceEncoderGradientsInFloat64) {
  manual_seed(4);
  models::SentenceEncoder m(use_like());
  m.to(DType::f64);
  auto& body = static_cast<models::TransformerBackbone&>(*m.backbone);
  auto& layer0 = *body.encoder->layers[0];
  const Tensor tokens = ids({1, 2, 3, 4, 5, 10}, 2);
  const Tensor lengths = Tensor::from_vector(std::vector<int64_t>{3, 2}, Shape{2});
  const Tensor emb = body.embedding->weight, res = layer0.residual_proj->weight,
               out = layer0.self_attn->out_proj->weight, pool = m.pooler->weight;
  EXPECT_TRUE(testing::gradcheck(
      [&](const std::vector<Tensor>& x) {
        body.embedding->weight = x[0];
        layer0.residual_proj->weight = x[1];
        layer0.self_attn->out_proj->weight = x[2];
        m.pooler->weight = x[3];
        return m.forward(tokens, lengths);
      },
      {emb.detach().set_requires_grad(), res.detach().set_requires_grad(),
       out.detach().set_requires_grad(), pool.detach().set_requires_grad()}));
}

TEST(Pretrained, MaxPoolingSkipsPaddingAndPassesGradients) {
  // [2, 3, 2]: the second sequence has one real token, whose values must win over the padding's.
  const Tensor h = Tensor::from_vector(std::vector<double>{1, -5, 3, 2, -1, 0, -2, -3, 9, 9, 9, 9},
                                       Shape{2, 3, 2});
  const Tensor lengths = Tensor::from_vector(std::vector<int64_t>{3, 1}, Shape{2});
  const auto p = models::pool(h, lengths, models::Pooling::max).to_vector<double>();
  EXPECT_EQ(p, (std::vector<double>{3, 2, -2, -3}));
  EXPECT_TRUE(testing::gradcheck(
      [&](const std::vector<Tensor>& x) {
        return models::pool(x[0], lengths, models::Pooling::max);
      },
      {testing::rand_input(Shape{2, 4, 3}, 9)}));
}

TEST(Pretrained, WordShapes) {
  auto shape = [](const std::string& s) {
    std::vector<int64_t> c;
    for (const unsigned char ch : s) c.push_back(ch + 1);
    c.resize(12, 0);
    return models::word_shape(c.data(), 12);
  };
  EXPECT_EQ(shape(""), 0);
  EXPECT_EQ(shape("paris"), 1);
  EXPECT_EQ(shape("NASA"), 2);
  EXPECT_EQ(shape("Paris"), 3);
  EXPECT_EQ(shape("I"), 3);
  EXPECT_EQ(shape("iPhone"), 4);
  EXPECT_EQ(shape("2024"), 5);
  EXPECT_EQ(shape("B2B"), 6);
  EXPECT_EQ(shape("..."), 7);
  EXPECT_EQ(shape("@user"), 8);
  EXPECT_EQ(shape("#tbt"), 9);
  EXPECT_EQ(shape("http://x.y"), 10);
  EXPECT_EQ(shape("\xc3\xa9t\xc3\xa9"), 1);  // été: lower-case ASCII beside non-ASCII letters
  EXPECT_EQ(shape("\xe6\x97\xa5"), 11);      // 日
}

models::TaggerConfig glove_tagger(models::WordEncoder encoder) {
  models::TaggerConfig c;
  c.backbone = models::BackboneKind::glove;
  c.vocab_size = 12, c.word_dim = 5, c.d_model = 6, c.nhead = 2, c.num_layers = 1;
  c.dim_feedforward = 8, c.dropout = 0.0, c.encoder = encoder;
  c.char_dim = 3, c.char_channels = 4, c.shape_dim = 2, c.max_word_chars = 6, c.num_tags = 3;
  return c;
}

TEST(Pretrained, GloveBackboneReadsCharactersAndTrainsThem) {
  for (const auto encoder : {models::WordEncoder::lstm, models::WordEncoder::transformer}) {
    manual_seed(6);
    models::TransformerTagger m(glove_tagger(encoder));
    m.to(DType::f64);
    EXPECT_EQ(m.backbone->max_word_chars(), 6);
    EXPECT_EQ(m.backbone->num_heads(), encoder == models::WordEncoder::lstm ? 0 : 2);
    auto& body = static_cast<models::WordVectorBackbone&>(*m.backbone);
    EXPECT_FALSE(body.embedding->weight.requires_grad());  // freeze_embeddings by default
    const std::vector<std::vector<std::string>> words = {{"Paris", "is", "big"}, {"@bob", "2024"}};
    models::Inputs in{ids({4, 5, 6, 7, 8, 0}, 2),
                      Tensor::from_vector(std::vector<int64_t>{3, 2}, Shape{2}),
                      models::char_ids({&words[0], &words[1]}, 3, 6)};
    EXPECT_EQ(m.forward(in).shape(), (Shape{2, 3, 3}));
    EXPECT_THROW(m.forward(in.tokens, in.lengths), ValueError);  // chars are required
    // (The byte and shape tables have padding rows, which the finite differences would move.)
    const Tensor conv = body.char_conv->weight, bias = body.char_conv->bias;
    EXPECT_TRUE(testing::gradcheck(
        [&](const std::vector<Tensor>& x) {
          body.char_conv->weight = x[0];
          body.char_conv->bias = x[1];
          return m.forward(in);
        },
        {conv.detach().set_requires_grad(), bias.detach().set_requires_grad()}));
    body.char_conv->weight = conv, body.char_conv->bias = bias;
    // The byte embeddings of the letters used get gradients; the padding row none.
    sum(m.forward(in)).backward();
    const Tensor g = body.char_embedding->weight.grad();
    ASSERT_TRUE(g.defined());
    double used = 0, pad = 0;
    for (int64_t k = 0; k < 3; ++k) {
      used += std::abs(g.data<double>()[('P' + 1) * 3 + k]);
      pad += std::abs(g.data<double>()[k]);
    }
    EXPECT_GT(used, 0);
    EXPECT_EQ(pad, 0);
  }
}

TEST(Pretrained, CharIdsKeepPrefixAndSuffixOfLongWords) {
  const std::vector<std::string> w = {"ab", "unbelievably"};
  const Tensor c = models::char_ids({&w}, 3, 6);
  ASSERT_EQ(c.shape(), (Shape{1, 3, 6}));
  const auto v = c.to_vector<int64_t>();
  EXPECT_EQ(v[0], 'a' + 1);
  EXPECT_EQ(v[2], 0);
  std::string kept;
  for (int i = 6; i < 12; ++i) kept += static_cast<char>(v[i] - 1);
  EXPECT_EQ(kept, "unbbly");
  for (int i = 12; i < 18; ++i) EXPECT_EQ(v[i], 0);  // padding token
}

TEST(Pretrained, WordTokenizerLooksUpWholeChunksFirst) {
  text::VocabTokenizer t(text::VocabTokenizer::Unit::word,
                         {"<pad>", "<unk>", "<s>", "</s>", "u.s.", "n't", "the", "."}, true);
  EXPECT_EQ(t.encode("The U.S. n't"), (std::vector<int64_t>{6, 4, 5}));
  EXPECT_EQ(t.tokenize("The U.S."), (std::vector<std::string>{"the", "u.s."}));
  EXPECT_EQ(t.surfaces("The U.S."), (std::vector<std::string>{"The", "U.S."}));
  // A chunk outside the vocabulary splits as before.
  EXPECT_EQ(t.encode("the. x"), (std::vector<int64_t>{6, 7, 1}));
  EXPECT_EQ(t.surfaces("The. X"), (std::vector<std::string>{"The", ".", "X"}));
}

TEST(Pretrained, ParameterGroupsFreezeAndScaleByDepth) {
  auto p = [](bool grad = true) {
    Tensor t = Tensor::zeros(Shape{1});
    t.set_requires_grad(grad);
    return t;
  };
  const NamedTensors named = {{"embedding.weight", p()},   {"encoder.layers.0.w", p()},
                              {"encoder.layers.1.w", p()}, {"encoder.layers.2.w", p()},
                              {"pooler.weight", p()},      {"head.weight", p()},
                              {"crf.transitions", p()},    {"frozen.weight", p(false)}};
  train::TrainOptions o;
  o.lr = 1e-3, o.backbone_lr = 1e-4, o.layer_lr_decay = 0.5;
  auto plan = train::plan_parameters(named, o);
  EXPECT_EQ(plan.layers, 3);
  ASSERT_EQ(plan.params.size(), 7u);  // the already-frozen one is left out
  const std::vector<double> want = {0.1 * 0.125, 0.1 * 0.25, 0.1 * 0.5, 0.1, 0.1, 1.0, 1.0};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(plan.scales[i], want[i], 1e-12) << i;
  o = {};
  o.freeze_layers = 2;
  plan = train::plan_parameters(named, o);
  EXPECT_EQ(plan.frozen, 3);  // embeddings, layers 0 and 1
  EXPECT_FALSE(named[1].second.requires_grad());
  EXPECT_TRUE(named[3].second.requires_grad());
  o.freeze_layers = 4;
  EXPECT_THROW(train::plan_parameters(named, o), ValueError);
  o = {};
  o.freeze_backbone = true;
  plan = train::plan_parameters(named, o);
  EXPECT_EQ(plan.params.size(), 2u);  // head and crf
}

}  // namespace
}  // namespace gaze
