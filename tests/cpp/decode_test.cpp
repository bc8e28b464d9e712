// Decoding: the incremental (KV-cached) Transformer decoder equals the full causal decoder, beam
// search of size 1 equals greedy search, beam search with the cache equals beam search recomputing
// every prefix, and every hypothesis' log-probability equals teacher forcing of its tokens.
#include <gtest/gtest.h>

#include <cmath>

#include "gaze/core/grad_mode.h"
#include "gaze/core/rng.h"
#include "gaze/decode/search.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/nn/incremental_decoder.h"
#include "gaze/nn/precision.h"
#include "gaze/ops/ops.h"

namespace gaze {
namespace {

constexpr int64_t kBos = 2, kEos = 3, kVocab = 13;

Tensor ids(std::vector<int64_t> v, int64_t rows) {
  const int64_t cols = static_cast<int64_t>(v.size()) / rows;
  return Tensor::from_vector(v, Shape{rows, cols});
}

std::shared_ptr<models::TransformerSeq2Seq> transformer(bool norm_first, uint64_t seed = 7,
                                                        int64_t attention_window = -1) {
  manual_seed(seed);
  models::Seq2SeqConfig c;
  c.src_vocab_size = c.tgt_vocab_size = kVocab;
  c.d_model = 16, c.nhead = 4, c.num_encoder_layers = 2, c.num_decoder_layers = 2;
  c.dim_feedforward = 24, c.dropout = 0.0, c.norm_first = norm_first;
  c.attention_window = attention_window;
  auto m = std::make_shared<models::TransformerSeq2Seq>(c);
  m->eval();
  return m;
}

std::shared_ptr<models::RnnSeq2Seq> rnn(models::RnnAttention attention) {
  manual_seed(11);
  models::RnnSeq2SeqConfig c;
  c.src_vocab_size = c.tgt_vocab_size = kVocab;
  c.embed_dim = 8, c.hidden_size = 6, c.decoder_hidden_size = 10, c.attention_dim = 7;
  c.readout_dim = 9, c.dropout = 0.0, c.attention = attention;
  auto m = std::make_shared<models::RnnSeq2Seq>(c);
  m->eval();
  return m;
}

// Three sources of different lengths (padding 0).
struct Batch {
  Tensor src = ids({5, 6, 7, 8, 9, 3, 4, 5, 3, 0, 0, 0, 10, 11, 12, 4, 3, 0}, 3);
  Tensor lengths = Tensor::from_vector(std::vector<int64_t>{6, 3, 5}, Shape{3});
  std::vector<int64_t> lens{6, 3, 5};
};

// Sum of log p(token) of `h` (and EOS when it finished) under teacher forcing of source `row`.
double teacher_forced_log_prob(const models::Seq2SeqModel& model, const Batch& b, int64_t row,
                               const decode::Hypothesis& h) {
  NoGradGuard no_grad;
  std::vector<int64_t> in{kBos};
  in.insert(in.end(), h.tokens.begin(), h.tokens.end());
  std::vector<int64_t> out = h.tokens;
  if (h.finished)
    out.push_back(kEos);
  else
    in.pop_back();
  const Tensor src = narrow(b.src, 0, row, 1);
  const Tensor len = narrow(b.lengths, 0, row, 1);
  const Tensor tgt = ids(in, 1);
  const Tensor logits =
      model.logits(src, len, tgt, Tensor::from_vector(std::vector<int64_t>{tgt.size(1)}, Shape{1}));
  const Tensor lp = log_softmax(logits, -1);
  double sum = 0;
  for (size_t t = 0; t < out.size(); ++t)
    sum += lp.data<float>()[static_cast<int64_t>(t) * kVocab + out[t]];
  return sum;
}

TEST(IncrementalDecoder, EqualsTheFullCausalDecoder) {
  // Also with sliding-window self-attention (window 1: each target token sees itself and the one
  // before), which the step-by-step decoder must apply to its cache as the full decoder does.
  for (const auto [pre, window] : {std::pair{true, -1}, std::pair{false, -1}, std::pair{true, 1}}) {
    SCOPED_TRACE(fmt::format("{} window {}", pre ? "pre-norm" : "post-norm", window));
    auto m = transformer(pre, 7, window);
    NoGradGuard no_grad;
    const Batch b;
    const Tensor memory = m->encode(b.src, b.lengths);
    const Tensor tgt = ids({2, 5, 6, 7, 2, 8, 9, 10, 2, 4, 4, 4}, 3);
    nn::AttentionCapture cap;
    const Tensor full = m->decoder->forward(
        m->embed_target(tgt), memory,
        {.memory_key_padding_mask = models::padding_mask(b.lengths, memory.size(1)),
         .tgt_is_causal = true,
         .capture = &cap});
    nn::IncrementalDecoder inc(*m->decoder, memory, b.lengths);
    for (int64_t t = 0; t < 4; ++t) {
      nn::AttentionCapture cross;  // the same capture mechanism as the full decoder's
      const Tensor step = inc.step(m->embed_target(narrow(tgt, 1, t, 1), t), &cross);
      const auto a = step.to_vector<float>(), f = narrow(full, 1, t, 1).to_vector<float>();
      for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], f[i], 2e-5) << "step " << t;
      // The last layer's cross-attention of this step, per head.
      ASSERT_EQ(cross.cross_attention.size(), 2u);
      const auto w = cross.cross_attention[1].to_vector<float>();
      const auto wf = narrow(cap.cross_attention[1], 2, t, 1).to_vector<float>();
      for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(w[i], wf[i], 1e-5);
    }
  }
}

TEST(IncrementalDecoder, Bf16AndInt8DecodersKeepBf16Caches) {
  // A decoder whose products run in bf16 or int8 keeps its KV caches in bf16; a float32 one does
  // not. Its steps stay close to the float32 decoder's.
  auto m = transformer(true);
  NoGradGuard no_grad;
  const Batch b;
  const Tensor memory = m->encode(b.src, b.lengths);
  const Tensor x = m->embed_target(ids({2, 2, 2}, 3), 0);
  nn::IncrementalDecoder f32(*m->decoder, memory, b.lengths);
  EXPECT_FALSE(f32.bf16_caches());
  const auto want = f32.step(x).to_vector<float>();
  for (Precision p : {Precision::bf16, Precision::int8}) {
    if (nn::usable_precision(p) != p) continue;  // a CPU without the instructions
    SCOPED_TRACE(enum_name(p));
    nn::set_precision(*m->decoder, p);
    nn::IncrementalDecoder low(*m->decoder, memory, b.lengths);
    EXPECT_TRUE(low.bf16_caches());
    const auto got = low.step(x).to_vector<float>();
    for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 0.1) << i;
    nn::set_precision(*m->decoder, Precision::fp32);
  }
}

TEST(IncrementalDecoder, RowsSharingAMemoryEqualRowsWithCopiesOfIt) {
  // k rows per source read one memory (as beams do) and give what k copies would; the groups
  // survive reordering and shrinking, and a row torn from its group is refused. After a source
  // leaves, the memories stay where they are: 3 rows per memory read them through kv_rows, 5 (more
  // than kv_rows serves) and steps that capture the attention through gathered copies. The
  // reference always captures, so it always reads copies. (Both keep the same table of which
  // memory is where; test_cli_translate.py's batch-against-alone test checks that table against
  // sources decoded alone.)
  auto m = transformer(true);
  NoGradGuard no_grad;
  const Batch b;
  const Tensor memory = m->encode(b.src, b.lengths);
  for (const int64_t k : {3, 5})
    for (const bool capture : {true, false}) {
      SCOPED_TRACE(fmt::format("{} rows per memory, capture {}", k, capture));
      const auto rows = models::expand_rows(3, k);
      nn::IncrementalDecoder shared(*m->decoder, memory, b.lengths, k),
          copied(*m->decoder, nn::gather_rows(memory, rows), nn::gather_rows(b.lengths, rows));
      std::vector<std::vector<int64_t>> orders(4);
      for (int64_t g = 0; g < 3; ++g)  // beams reordered within each source
        for (int64_t i = 0; i < k; ++i) orders[0].push_back(g * k + (k - 1 - i));
      for (int64_t r = k; r < 3 * k; ++r) orders[1].push_back(r);  // the first source finished
      for (int64_t r = 0; r < 2 * k; ++r) orders[2].push_back((r + k) % (2 * k));  // swapped
      for (int64_t i = 0; i < k; ++i) orders[3].push_back(i < 2 ? 1 : 0);  // one source left
      for (int64_t t = 0; t < 5; ++t) {
        SCOPED_TRACE(fmt::format("step {}", t));
        const int64_t R = t == 0 ? 3 * k : std::ssize(orders[static_cast<size_t>(t - 1)]);
        std::vector<int64_t> tokens;
        for (int64_t r = 0; r < R; ++r) tokens.push_back(4 + (r + t) % 7);
        const Tensor x = m->embed_target(ids(tokens, R), t);
        nn::AttentionCapture ca, cb;
        const auto a = shared.step(x, capture ? &ca : nullptr).to_vector<float>(),
                   c = copied.step(x, &cb).to_vector<float>();  // always the copies
        ASSERT_EQ(a.size(), c.size());
        for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], c[i], 1e-6);
        if (capture) {
          ASSERT_EQ(ca.cross_attention[1].shape(), cb.cross_attention[1].shape());
          const auto wa = ca.cross_attention[1].to_vector<float>(),
                     wc = cb.cross_attention[1].to_vector<float>();
          for (size_t i = 0; i < wa.size(); ++i) ASSERT_NEAR(wa[i], wc[i], 1e-6);
        }
        if (t < 4) {
          const auto& o = orders[static_cast<size_t>(t)];
          shared.reorder(o, t == 0), copied.reorder(o, t == 0);
        }
      }
    }
  nn::IncrementalDecoder shared(*m->decoder, memory, b.lengths, 3);
  EXPECT_THROW(shared.reorder({0, 1}), ValueError);     // not a whole group
  EXPECT_THROW(shared.reorder({0, 1, 3}), ValueError);  // row 3 reads another memory
  EXPECT_THROW(shared.reorder({9, 9, 9}), ValueError);  // out of range
}

TEST(Search, MaxLengthCapsTheRatio) {
  decode::SearchOptions o;
  o.max_length_ratio = 2.0, o.max_length_offset = 10;
  EXPECT_EQ(decode::max_target_length(5, o), 20);
  o.max_length = 7;
  EXPECT_EQ(decode::max_target_length(5, o), 7);
  EXPECT_EQ(decode::max_target_length(0, o), 7);
  o.max_length = 50;  // the ratio is the tighter bound
  EXPECT_EQ(decode::max_target_length(5, o), 20);
  // Greedy and beam search stop there: at most 2 tokens, EOS included, from any source.
  const Batch b;
  for (auto m : std::vector<std::shared_ptr<models::Seq2SeqModel>>{
           transformer(true), rnn(models::RnnAttention::additive)}) {
    decode::SearchOptions capped;
    capped.max_length = 2, capped.beam_size = 3, capped.nbest = 3;
    auto g = m->start_decoding(b.src, b.lengths, {});
    for (const auto& h : decode::greedy_search(*g, b.lens, kBos, kEos, capped))
      EXPECT_LE(h.tokens.size() + (h.finished ? 1 : 0), 2u);
    models::StepOptions so;
    so.rows_per_source = 3;
    auto d = m->start_decoding(b.src, b.lengths, so);
    for (const auto& hyps : decode::beam_search(*d, b.lens, kBos, kEos, capped))
      for (const auto& h : hyps) EXPECT_LE(h.tokens.size() + (h.finished ? 1 : 0), 2u);
  }
}

TEST(Search, BeamOfOneEqualsGreedy) {
  const Batch b;
  std::vector<std::shared_ptr<models::Seq2SeqModel>> ms = {transformer(true), transformer(false),
                                                           rnn(models::RnnAttention::additive),
                                                           rnn(models::RnnAttention::general)};
  for (const auto& m : ms) {
    decode::SearchOptions o;
    o.beam_size = 1, o.max_length_ratio = 1.5, o.max_length_offset = 3;
    auto g = m->start_decoding(b.src, b.lengths, {});
    const auto greedy = decode::greedy_search(*g, b.lens, kBos, kEos, o);
    auto d = m->start_decoding(b.src, b.lengths, {});
    const auto beam = decode::beam_search(*d, b.lens, kBos, kEos, o);
    for (size_t i = 0; i < greedy.size(); ++i) {
      ASSERT_EQ(beam[i].size(), 1u);
      EXPECT_EQ(beam[i][0].tokens, greedy[i].tokens);
      EXPECT_EQ(beam[i][0].finished, greedy[i].finished);
      EXPECT_NEAR(beam[i][0].log_prob, greedy[i].log_prob, 1e-9);
    }
  }
}

TEST(Search, BeamWithTheCacheEqualsRecomputingEveryPrefix) {
  const Batch b;
  for (const bool pre : {true, false}) {
    auto m = transformer(pre, 21);
    decode::SearchOptions o;
    o.beam_size = 4, o.nbest = 4, o.max_length_ratio = 1.0, o.max_length_offset = 4;
    models::StepOptions cached, fresh;
    cached.rows_per_source = fresh.rows_per_source = 4;
    cached.alignment = fresh.alignment = true;
    fresh.use_cache = false;
    auto d1 = m->start_decoding(b.src, b.lengths, cached);
    auto d2 = m->start_decoding(b.src, b.lengths, fresh);
    const auto a = decode::beam_search(*d1, b.lens, kBos, kEos, o, true);
    const auto c = decode::beam_search(*d2, b.lens, kBos, kEos, o, true);
    for (size_t i = 0; i < a.size(); ++i) {
      ASSERT_EQ(a[i].size(), c[i].size());
      for (size_t k = 0; k < a[i].size(); ++k) {
        EXPECT_EQ(a[i][k].tokens, c[i][k].tokens);
        EXPECT_NEAR(a[i][k].score, c[i][k].score, 1e-4);
        ASSERT_EQ(a[i][k].alignment.size(), c[i][k].alignment.size());
        for (size_t t = 0; t < a[i][k].alignment.size(); ++t)
          for (size_t s = 0; s < a[i][k].alignment[t].size(); ++s)
            EXPECT_NEAR(a[i][k].alignment[t][s], c[i][k].alignment[t][s], 1e-5);
      }
    }
  }
}

TEST(Search, HypothesesAreRankedAndScoredAsTeacherForcingScoresThem) {
  const Batch b;
  // Untrained models end with EOS always or never: scale the EOS logit so that both endings (EOS,
  // the length limit) occur.
  auto t = transformer(true, 5);
  auto r_eos = rnn(models::RnnAttention::additive), r_cut = rnn(models::RnnAttention::additive);
  {
    NoGradGuard no_grad;
    float* e = t->tgt_embedding->weight.data<float>() + kEos * t->config.d_model;
    for (int64_t i = 0; i < t->config.d_model; ++i) e[i] *= 3.0f;
    r_cut->generator->bias.data<float>()[kEos] -= 3.0f;
  }
  int finished = 0, cut = 0;
  std::vector<std::shared_ptr<models::Seq2SeqModel>> ms = {t, r_eos, r_cut};
  for (const auto& m : ms) {
    decode::SearchOptions o;
    o.beam_size = 5, o.nbest = 3, o.length_penalty = 0.6, o.max_length_offset = 5;
    models::StepOptions so;
    so.rows_per_source = 5;
    so.alignment = true;
    auto d = m->start_decoding(b.src, b.lengths, so);
    const auto hyps = decode::beam_search(*d, b.lens, kBos, kEos, o, true);
    ASSERT_EQ(hyps.size(), 3u);
    for (const auto& list : hyps)
      for (const auto& h : list) (h.finished ? finished : cut) += 1;
    for (size_t i = 0; i < hyps.size(); ++i) {
      ASSERT_EQ(hyps[i].size(), 3u);
      for (size_t k = 0; k < hyps[i].size(); ++k) {
        const auto& h = hyps[i][k];
        if (k > 0) EXPECT_GE(hyps[i][k - 1].score, h.score);
        const auto length = static_cast<double>(h.tokens.size() + (h.finished ? 1 : 0));
        EXPECT_NEAR(h.score, h.log_prob / std::pow(length, 0.6), 1e-9);
        EXPECT_NEAR(h.log_prob, teacher_forced_log_prob(*m, b, static_cast<int64_t>(i), h), 1e-4);
        EXPECT_LE(static_cast<int64_t>(length), decode::max_target_length(b.lens[i], o));
        ASSERT_EQ(h.alignment.size(), static_cast<size_t>(length));
        for (const auto& row : h.alignment) {  // a distribution over the real source positions
          double sum = 0;
          for (size_t s = 0; s < row.size(); ++s) {
            sum += row[s];
            if (static_cast<int64_t>(s) >= b.lens[i]) EXPECT_EQ(row[s], 0.0f);
          }
          EXPECT_NEAR(sum, 1.0, 1e-5);
        }
      }
    }
  }
  EXPECT_GT(finished, 0);
  EXPECT_GT(cut, 0);
}

}  // namespace
}  // namespace gaze
