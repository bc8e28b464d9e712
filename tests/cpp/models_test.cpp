// Models: step-by-step RNN decoding equals teacher forcing, the Transformer decoder is causal,
// configurations round-trip, and a float64 gradient check through a whole classifier.
#include <gtest/gtest.h>

#include <cmath>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/core/rng.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/nn/init.h"
#include "gaze/nn/linear.h"
#include "gaze/nn/transformer.h"
#include "gaze/ops/ops.h"
#include "gradcheck.h"

namespace gaze {
namespace {

Tensor ids(std::vector<int64_t> v, int64_t rows) {
  const int64_t cols = static_cast<int64_t>(v.size()) / rows;
  return Tensor::from_vector(v, Shape{rows, cols});
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.shape(), b.shape());
  const auto x = a.to_vector<float>(), y = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::abs(double(x[i]) - double(y[i])));
  return m;
}

TEST(Init, SkipRandomInitGuardDrawsNothingAndNests) {
  // Loading builds the model under the guard: its random fills neither write nor draw, so the
  // generator continues as if they never ran.
  manual_seed(5);
  Tensor a = Tensor::zeros(Shape{4});
  {
    nn::init::SkipRandomInitGuard skip;
    {
      nn::init::SkipRandomInitGuard nested;
      nn::init::normal_(a, 0.0, 1.0);
    }
    nn::init::uniform_(a, -1.0, 1.0);
    nn::init::constant_(a, 2.0);  // not random: still applies
  }
  EXPECT_EQ(a.to_vector<float>(), std::vector<float>(4, 2.0f));
  nn::init::uniform_(a, -1.0, 1.0);
  manual_seed(5);
  Tensor b = Tensor::zeros(Shape{4});
  nn::init::uniform_(b, -1.0, 1.0);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

TEST(Module, LoadStateDictAssignTakesTheTensorsStorage) {
  // torch's assign=True: the parameter keeps its identity (layers hold it) and takes the given
  // tensor's storage, so loading a checkpoint writes no second copy of the weights. A tensor of
  // another dtype is converted and copied.
  manual_seed(2);
  nn::Linear lin(3, 2);
  const Tensor weight = lin.weight;  // the parameter as the layer holds it
  NamedTensors sd = lin.state_dict();
  sd[0].second = Tensor::full(Shape{2, 3}, 0.25);
  sd[1].second = Tensor::full(Shape{2}, 1.5, DType::f64);
  lin.load_state_dict(sd, /*strict=*/true, /*assign=*/true);
  EXPECT_EQ(weight.storage(), sd[0].second.storage());
  EXPECT_TRUE(weight.requires_grad());
  EXPECT_NE(lin.bias.storage(), sd[1].second.storage());
  EXPECT_EQ(lin.bias.to_vector<float>(), std::vector<float>(2, 1.5f));
  const Tensor y = lin.forward(Tensor::ones(Shape{1, 3}));
  for (float v : y.to_vector<float>()) EXPECT_FLOAT_EQ(v, 2.25f);
  // Without assign the values are copied.
  sd[0].second = Tensor::full(Shape{2, 3}, 0.5);
  lin.load_state_dict(sd);
  EXPECT_NE(weight.storage(), sd[0].second.storage());
  EXPECT_EQ(weight.to_vector<float>(), std::vector<float>(6, 0.5f));
  // A view of a larger tensor is copied: the parameter stays a whole storage of its own.
  const Tensor big = Tensor::full(Shape{4, 3}, 0.75);
  sd[0].second = narrow(big, 0, 2, 2);
  lin.load_state_dict(sd, true, true);
  EXPECT_NE(weight.storage(), big.storage());
  EXPECT_EQ(weight.to_vector<float>(), std::vector<float>(6, 0.75f));
  sd[0].second = Tensor::full(Shape{2, 3}, 0.5);
  lin.load_state_dict(sd);
  // The checks still come first: nothing is assigned when a shape does not fit.
  sd[0].second = Tensor::full(Shape{3, 2}, 9.0);
  EXPECT_THROW(lin.load_state_dict(sd, true, true), ValueError);
  EXPECT_EQ(weight.to_vector<float>(), std::vector<float>(6, 0.5f));
}

TEST(TransformerEncoder, LayersStartEqual) {
  // torch deep-copies the first layer. (A stack built under SkipRandomInitGuard, to receive a
  // checkpoint, skips the copy; random_init_skipped() tells it.)
  nn::TransformerLayerOptions o;
  o.d_model = 8, o.nhead = 2, o.dim_feedforward = 16;
  manual_seed(4);
  nn::TransformerEncoder enc(o, 2);
  EXPECT_EQ(enc.layers[1]->state_dict()[0].second.to_vector<float>(),
            enc.layers[0]->state_dict()[0].second.to_vector<float>());
  EXPECT_FALSE(nn::init::random_init_skipped());
  nn::init::SkipRandomInitGuard skip;
  EXPECT_TRUE(nn::init::random_init_skipped());
}

TEST(RnnSeq2Seq, StepByStepDecodingEqualsTeacherForcing) {
  for (const char* cell : {"lstm", "gru"}) {
    for (const char* att : {"additive", "dot", "general", "concat"}) {
      SCOPED_TRACE(std::string(cell) + " " + att);
      manual_seed(3);
      models::RnnSeq2SeqConfig c;
      c.src_vocab_size = 15, c.tgt_vocab_size = 11, c.embed_dim = 6, c.hidden_size = 5;
      c.decoder_hidden_size = 10, c.attention_dim = 7, c.readout_dim = 8;
      c.cell = *enum_from_name<nn::RnnBase::Mode>(cell);
      c.attention = *enum_from_name<models::RnnAttention>(att), c.num_encoder_layers = 2;
      models::RnnSeq2Seq m(c);
      m.eval();
      NoGradGuard no_grad;
      const Tensor src = ids({3, 4, 5, 6, 7, 2, 9, 0, 0, 0}, 2);
      const Tensor lengths = Tensor::from_vector(std::vector<int64_t>{5, 2}, Shape{2});
      const Tensor tgt = ids({1, 5, 4, 1, 8, 0}, 2);
      Tensor weights;
      const Tensor full = m.forward(src, lengths, tgt, &weights);  // [2, 3, 11]
      models::RnnDecoderState s = m.encode(src, lengths);
      for (int64_t t = 0; t < 3; ++t) {
        Tensor w;
        const Tensor logits = m.step(s, select(tgt, 1, t), &w);
        EXPECT_LT(max_abs_diff(logits, select(full, 1, t)), 1e-5) << "step " << t;
        EXPECT_LT(max_abs_diff(w, select(weights, 1, t)), 1e-6) << "step " << t;
        EXPECT_EQ(w.to_vector<float>()[5 + 2],
                  0.0f);  // second sequence: source position 2 is padding
      }
    }
  }
}

TEST(TransformerSeq2Seq, TheDecoderNeverLooksAhead) {
  manual_seed(4);
  models::Seq2SeqConfig c;
  c.src_vocab_size = c.tgt_vocab_size = 13, c.d_model = 16, c.nhead = 2, c.dim_feedforward = 32;
  c.num_encoder_layers = c.num_decoder_layers = 2, c.share_embeddings = true;
  models::TransformerSeq2Seq m(c);
  m.eval();
  NoGradGuard no_grad;
  const Tensor src = ids({4, 5, 6, 7}, 1), a = ids({1, 2, 3, 4, 5}, 1),
               b = ids({1, 2, 3, 9, 11}, 1);
  const Tensor la = m.forward(src, Tensor(), a, Tensor()),
               lb = m.forward(src, Tensor(), b, Tensor());
  // Positions 0..2 see the same prefix; position 3 onwards sees a different token.
  EXPECT_LT(max_abs_diff(slice(la, 1, 0, 3), slice(lb, 1, 0, 3)), 1e-6);
  EXPECT_GT(max_abs_diff(slice(la, 1, 3, 5), slice(lb, 1, 3, 5)), 1e-3);
  // Decoding a prefix alone gives the prefix's rows of the full decode.
  const Tensor memory = m.encode(src, Tensor());
  const Tensor prefix = m.decode(slice(a, 1, 0, 2), memory, Tensor(), Tensor());
  EXPECT_LT(max_abs_diff(prefix, slice(la, 1, 0, 2)), 1e-5);
}

TEST(Models, ConfigurationsRoundTripAndRejectUnknownKeys) {
  models::ClassifierConfig c;
  c.vocab_size = 50, c.d_model = 8, c.nhead = 2, c.num_layers = 1, c.dim_feedforward = 16;
  c.num_classes = 4, c.pooling = models::Pooling::cls, c.positions = models::Positions::learned;
  models::TransformerClassifier m(c);
  const std::string json = m.config_json();
  const auto back = models::build_model(json);
  EXPECT_EQ(back->config_json(), json);
  EXPECT_EQ(back->state_dict().size(), m.state_dict().size());
  try {
    models::build_model(R"({"model_type": "transformer_classifier", "vocab_size": 5, "heads": 2})");
    FAIL() << "an unknown key was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("heads"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("nhead"), std::string::npos) << e.what();
  }
  EXPECT_THROW(models::build_model(R"({"model_type": "gpt"})"), Error);
  EXPECT_THROW(models::build_model("{not json"), DataError);
}

TEST(Models, ClassifierGradientsInFloat64) {
  manual_seed(5);
  models::ClassifierConfig c;
  c.vocab_size = 9, c.d_model = 6, c.nhead = 2, c.num_layers = 2, c.dim_feedforward = 8;
  c.num_classes = 3, c.dropout = 0.0;
  models::TransformerClassifier m(c);
  m.to(DType::f64);
  const Tensor tokens = ids({1, 2, 3, 4, 5, 6, 0, 0}, 2);
  const Tensor lengths = Tensor::from_vector(std::vector<int64_t>{4, 2}, Shape{2});
  // The embedding table and the head's weight as inputs: gradients flow through every layer.
  auto& body = static_cast<models::TransformerBackbone&>(*m.backbone);  // the default backbone
  const Tensor emb = body.embedding->weight, head = m.head->weight;
  EXPECT_TRUE(testing::gradcheck(
      [&](const std::vector<Tensor>& x) {
        body.embedding->weight = x[0];
        m.head->weight = x[1];
        return m.forward(tokens, lengths);
      },
      {emb.detach().set_requires_grad(), head.detach().set_requires_grad()}));
  body.embedding->weight = emb, m.head->weight = head;
}

}  // namespace
}  // namespace gaze
