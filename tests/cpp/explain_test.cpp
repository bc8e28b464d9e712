// gaze/explain: capture filters (only the chosen layers and heads, same outputs), rollout, argmax
// alignments, token importance, and PNG heatmaps (decoded back with stb_image: documented size,
// colours and orange marks).
#include <gtest/gtest.h>
#include <stb_image.h>

#include <memory>

#include "gaze/core/grad_mode.h"
#include "gaze/explain/aggregate.h"
#include "gaze/explain/head_stats.h"
#include "gaze/explain/png.h"
#include "gaze/explain/words.h"
#include "gaze/nn/transformer.h"
#include "gaze/ops/ops.h"
#include "gaze/text/tokenizer.h"

namespace gaze {
namespace {

nn::TransformerLayerOptions layer_options() {
  nn::TransformerLayerOptions o;
  o.d_model = 32, o.nhead = 4, o.dim_feedforward = 48, o.dropout = 0.0, o.batch_first = true;
  o.norm_first = true;
  return o;
}

// Head h of a [B, H, Tq, Tk] capture.
std::vector<float> head(const Tensor& w, int64_t h) {
  return select(w, 1, h).to_vector<float>();
}

TEST(ExplainCapture, ChosenLayersAndHeadsAreSlicesOfTheFullCaptureAndOutputsDoNotChange) {
  manual_seed(3);
  nn::TransformerEncoder enc(layer_options(), 3);
  enc.eval();
  NoGradGuard no_grad;
  Generator g(5);
  const Tensor x = randn(Shape{2, 9, 32}, DType::f32, &g);
  Tensor padding = Tensor::zeros(Shape{2, 9}, DType::b8);
  for (int64_t j = 6; j < 9; ++j) padding.data<bool>()[9 + j] = true;
  nn::AttentionCapture all, some;
  some.layers = {-1, 0};
  some.heads = {3, 1};
  const Tensor plain = enc.forward(x, {.src_key_padding_mask = padding});
  const Tensor with_all = enc.forward(x, {.src_key_padding_mask = padding, .capture = &all});
  const Tensor with_some = enc.forward(x, {.src_key_padding_mask = padding, .capture = &some});
  EXPECT_EQ(plain.to_vector<float>(), with_all.to_vector<float>());
  EXPECT_EQ(plain.to_vector<float>(), with_some.to_vector<float>());
  ASSERT_EQ(some.self_attention.size(), 3u);
  EXPECT_FALSE(some.self_attention[1].defined());  // not chosen: never built
  for (int layer : {0, 2}) {
    const Tensor& w = some.self_attention[size_t(layer)];
    ASSERT_EQ(w.shape(), (Shape{2, 2, 9, 9}));
    EXPECT_EQ(head(w, 0), head(all.self_attention[size_t(layer)], 3)) << "layer " << layer;
    EXPECT_EQ(head(w, 1), head(all.self_attention[size_t(layer)], 1)) << "layer " << layer;
  }
}

TEST(ExplainCapture, DecoderCrossAttentionFiltersAndBadChoicesFail) {
  manual_seed(4);
  nn::TransformerDecoder dec(layer_options(), 2);
  dec.eval();
  NoGradGuard no_grad;
  Generator g(6);
  const Tensor tgt = randn(Shape{1, 5, 32}, DType::f32, &g),
               mem = randn(Shape{1, 7, 32}, DType::f32, &g);
  nn::AttentionCapture all, some;
  some.layers = {1};
  some.heads = {2};
  dec.forward(tgt, mem, {.tgt_is_causal = true, .capture = &all});
  dec.forward(tgt, mem, {.tgt_is_causal = true, .capture = &some});
  EXPECT_FALSE(some.cross_attention[0].defined());
  ASSERT_EQ(some.cross_attention[1].shape(), (Shape{1, 1, 5, 7}));
  EXPECT_EQ(head(some.cross_attention[1], 0), head(all.cross_attention[1], 2));
  EXPECT_EQ(head(some.self_attention[1], 0), head(all.self_attention[1], 2));

  nn::AttentionCapture bad_layer, bad_head;
  bad_layer.layers = {2};
  EXPECT_THROW(dec.forward(tgt, mem, {.tgt_is_causal = true, .capture = &bad_layer}), IndexError);
  bad_head.heads = {4};
  EXPECT_THROW(dec.forward(tgt, mem, {.tgt_is_causal = true, .capture = &bad_head}), IndexError);
}

Tensor matrix(std::vector<float> v, int64_t rows, int64_t cols) {
  return Tensor::from_vector(v, Shape{rows, cols});
}

TEST(ExplainAggregate, RolloutOfTwoLayersWorkedByHand) {
  // A1 = [[1, 0], [0.5, 0.5]] -> (A1 + I) / 2 = [[1, 0], [0.25, 0.75]] (rows already sum to 1).
  // A2 = [[0, 1], [0, 1]]     -> [[0.5, 0.5], [0, 1]].
  // R = A2' A1' = [[0.5 + 0.125, 0.375], [0.25, 0.75]].
  const Tensor r = explain::rollout({matrix({1, 0, 0.5, 0.5}, 2, 2), matrix({0, 1, 0, 1}, 2, 2)});
  const std::vector<float> want = {0.625f, 0.375f, 0.25f, 0.75f};
  const auto got = r.to_vector<float>();
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
  // One layer: just the residual-adjusted, row-normalised weights.
  const auto one = explain::rollout({matrix({0.2f, 0.8f, 0.6f, 0.4f}, 2, 2)}).to_vector<float>();
  EXPECT_NEAR(one[0], 0.6, 1e-6);
  EXPECT_NEAR(one[1], 0.4, 1e-6);
  EXPECT_THROW(explain::rollout({matrix({1, 0, 0, 1}, 2, 2), matrix({1, 0, 0, 1, 0, 0}, 2, 3)}),
               ValueError);
}

TEST(ExplainAggregate, MeanHeadsArgmaxAndImportance) {
  const Tensor w = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 0, 1, 1, 0}, Shape{2, 2, 2});
  EXPECT_EQ(explain::mean_heads(w).to_vector<float>(), (std::vector<float>{0.5, 0.5, 0.5, 0.5}));
  EXPECT_EQ(explain::argmax_rows(matrix({0.1f, 0.7f, 0.2f, 0.5f, 0.5f, 0.0f}, 2, 3)),
            (std::vector<int64_t>{1, 0}));  // ties: the first
  const Tensor r = matrix({0.5f, 0.5f, 0.1f, 0.9f}, 2, 2);
  const auto cls = explain::token_importance(r, models::Pooling::cls),
             mean = explain::token_importance(r, models::Pooling::mean);
  EXPECT_NEAR(cls[0], 0.5, 1e-6);
  EXPECT_NEAR(mean[0], 0.3, 1e-6);
  EXPECT_NEAR(mean[1], 0.7, 1e-6);
}

struct Decoded {
  int width = 0, height = 0;
  std::unique_ptr<unsigned char, void (*)(void*)> pixels{nullptr, stbi_image_free};
  std::array<int, 3> at(int x, int y) const {
    const unsigned char* p = pixels.get() + 3 * (static_cast<size_t>(y) * width + x);
    return {p[0], p[1], p[2]};
  }
};

Decoded decode(const std::string& png) {
  Decoded d;
  int channels = 0;
  d.pixels.reset(stbi_load_from_memory(reinterpret_cast<const unsigned char*>(png.data()),
                                       static_cast<int>(png.size()), &d.width, &d.height, &channels,
                                       3));
  EXPECT_NE(d.pixels, nullptr) << stbi_failure_reason();
  return d;
}

TEST(ExplainPng, HasTheDocumentedSizeColoursAndMarks) {
  const Tensor m = matrix({0.0f, 1.0f, 0.5f, 0.25f, 0.0f, 0.0f}, 2, 3);
  const std::vector<std::string> rows = {"ax", "t"}, cols = {"a", "▁día", "</s>"};
  const Decoded d =
      decode(explain::heatmap_png(m, rows, cols, {.title = "A title", .marks = {1, -1}}));
  const int cell = explain::heatmap_cell_size(2, 3);
  EXPECT_EQ(cell, 24);  // 800 / 3 capped at 24
  const int x0 = explain::kLabelStrip, y0 = explain::kTitleStrip + explain::kLabelStrip;
  EXPECT_EQ(d.width, x0 + 3 * cell + explain::kBarStrip + explain::kMargin);
  EXPECT_EQ(d.height, y0 + 2 * cell + explain::kMargin);
  auto centre = [&](int i, int j) {
    return d.at(x0 + j * cell + cell / 2, y0 + i * cell + cell / 2);
  };
  EXPECT_EQ(centre(0, 1), (std::array<int, 3>{8, 48, 107}));     // the maximum: dark blue
  EXPECT_EQ(centre(0, 0), (std::array<int, 3>{247, 251, 255}));  // zero: white
  const auto quarter = centre(1, 0);  // 0.25 of the way from white to dark blue
  EXPECT_NEAR(quarter[0], 247 + (8 - 247) * 0.25, 0.5);
  EXPECT_NEAR(quarter[2], 255 + (107 - 255) * 0.25, 0.5);
  // The mark on row 0, column 1: an orange outline at the cell's edge.
  EXPECT_EQ(d.at(x0 + cell + cell / 2, y0), (std::array<int, 3>{240, 120, 0}));
  // Labels put dark pixels into the left strip, the title into the top one.
  auto dark_in = [&](int xa, int ya, int xb, int yb) {
    int dark = 0;
    for (int y = ya; y < yb; ++y)
      for (int x = xa; x < xb; ++x) dark += d.at(x, y)[0] < 100;
    return dark;
  };
  EXPECT_GT(dark_in(0, y0, x0, y0 + 2 * cell), 10);
  EXPECT_GT(dark_in(0, 0, 80, explain::kTitleStrip), 10);
  // The colour bar: dark blue at its top, white at its bottom, its maximum written beside it.
  const int bar = x0 + 3 * cell + 8 + 5;
  EXPECT_EQ(d.at(bar, y0), (std::array<int, 3>{8, 48, 107}));
  EXPECT_EQ(d.at(bar, y0 + 2 * cell - 1), (std::array<int, 3>{247, 251, 255}));
  EXPECT_GT(dark_in(bar + 8, y0, d.width, y0 + 10), 5);
  // A chosen cell size.
  const Decoded big_cells = decode(explain::heatmap_png(m, rows, cols, {.cell = 40}));
  EXPECT_EQ(big_cells.width, x0 + 3 * 40 + explain::kBarStrip + explain::kMargin);

  // 512 tokens: 2-pixel cells, and the image stays bounded.
  EXPECT_EQ(explain::heatmap_cell_size(512, 512), 2);
  const Tensor big = Tensor::full(Shape{512, 512}, 0.5);
  const Decoded b = decode(explain::heatmap_png(big, std::vector<std::string>(512, "tok"),
                                                std::vector<std::string>(512, "tok")));
  EXPECT_EQ(b.width, explain::kLabelStrip + 1024 + explain::kBarStrip + explain::kMargin);
  EXPECT_THROW(explain::heatmap_png(big, std::vector<std::string>(512, "tok"),
                                    std::vector<std::string>(512, "tok"), {.cell = 64}),
               ValueError);  // 32768 pixels a side: refused before allocating
  EXPECT_THROW(explain::heatmap_png(m, rows, {"a"}), ValueError);
}

TEST(ExplainHeadStatistics, OneHeadWorkedByHand) {
  // Tokens: [CLS] hi , there [SEP]; one layer, two heads. Head 0 attends to the previous token
  // (the first query to itself); head 1 splits each row between [CLS] and ",".
  explain::Explanation e;
  e.tokens = {"[CLS]", "hi", "\xe2\x80\x94", "there", "[SEP]"};  // the third is an em dash
  e.framing = {true, false, false, false, true};
  explain::AttentionBlock b;
  b.layers = {0};
  b.heads = {0, 1};
  Tensor w = Tensor::zeros(Shape{2, 5, 5});
  float* p = w.data<float>();
  for (int q = 0; q < 5; ++q) {
    p[q * 5 + std::max(q - 1, 0)] = 1.0f;
    p[25 + q * 5 + 0] = 0.5f, p[25 + q * 5 + 2] = 0.5f;
  }
  b.weights = {w};
  e.blocks = {b};
  explain::HeadStatisticsAccumulator acc;
  acc.add(e);
  acc.add(e);  // the same input twice: means unchanged
  const explain::HeadStatistics s = acc.result();
  ASSERT_EQ(s.inputs, 2);
  ASSERT_EQ(s.num_heads, 2);
  auto v = [&](const std::string& name, int head) {
    const auto& names = explain::head_statistic_names();
    const size_t i = std::find(names.begin(), names.end(), name) - names.begin();
    return s.values.at(i).at(size_t(head));
  };
  EXPECT_NEAR(v("entropy", 0), 0.0, 1e-12);
  EXPECT_NEAR(v("entropy", 1), std::log(2.0), 1e-6);
  EXPECT_NEAR(v("framing", 0), 2.0 / 5, 1e-6);  // queries 0 and 1 look at [CLS]
  EXPECT_NEAR(v("framing", 1), 0.5, 1e-6);
  EXPECT_NEAR(v("punctuation", 0), 1.0 / 5, 1e-6);  // query 3 looks at the dash
  EXPECT_NEAR(v("punctuation", 1), 0.5, 1e-6);
  EXPECT_NEAR(v("previous", 0), 1.0, 1e-6);  // over the 4 queries that have a previous token
  EXPECT_NEAR(v("next", 0), 0.0, 1e-6);
  EXPECT_NEAR(v("self", 0), 1.0 / 5, 1e-6);
  EXPECT_NEAR(v("next", 1), 0.5 / 4, 1e-6);  // query 1 gives its next token (the dash) 0.5
  EXPECT_NEAR(v("rollout", 0), 1.0, 1e-6);   // no rollout: every token counts 1
  EXPECT_TRUE(explain::is_punctuation_piece("##,"));
  EXPECT_TRUE(explain::is_punctuation_piece("\xe2\x96\x81..."));
  EXPECT_FALSE(explain::is_punctuation_piece("##"));
  EXPECT_FALSE(explain::is_punctuation_piece("a."));
  const std::string svg = explain::head_statistics_svg(s, "<b>&</b>");
  EXPECT_NE(svg.find("&lt;b&gt;&amp;&lt;/b&gt;"), std::string::npos);
  EXPECT_EQ(svg.find("<b>"), std::string::npos);
}

TEST(ExplainWords, GroupsFollowEachTokenizersRule) {
  using text::word_groups;
  const auto wp = word_groups("wordpiece", {"[CLS]", "un", "##believ", "##able", "!", "[SEP]"},
                              {true, false, false, false, false, true});
  EXPECT_EQ(wp.group, (std::vector<int64_t>{0, 1, 1, 1, 2, 3}));
  EXPECT_EQ(wp.words, (std::vector<std::string>{"[CLS]", "unbelievable", "!", "[SEP]"}));
  // A "##" piece right after a framing token starts a word (the framing token closes its own).
  EXPECT_EQ(word_groups("wordpiece", {"[CLS]", "##x"}, {true, false}).group,
            (std::vector<int64_t>{0, 1}));
  const std::string spm = "\xe2\x96\x81";
  const auto sp = word_groups("sentencepiece", {spm + "New", spm + "Yor", "k", "</s>"},
                              {false, false, false, true});
  EXPECT_EQ(sp.group, (std::vector<int64_t>{0, 1, 1, 2}));
  EXPECT_EQ(sp.words, (std::vector<std::string>{"New", "York", "</s>"}));
  const auto ch = word_groups("char", {"h", "i", " ", "y", "o", "u", "</s>"},
                              {false, false, false, false, false, false, true});
  EXPECT_EQ(ch.group, (std::vector<int64_t>{0, 0, 1, 2, 2, 2, 3}));
  EXPECT_EQ(ch.words, (std::vector<std::string>{"hi", " ", "you", "</s>"}));
  EXPECT_EQ(word_groups("word", {"a", "b"}, {}).group, (std::vector<int64_t>{0, 1}));
}

TEST(ExplainWords, AttentionReceivedIsSummedAndPaidIsAveraged) {
  // Pieces [a, ##b, c] -> words [ab, c]; one head.
  explain::Explanation e;
  e.tokens = {"a", "##b", "c"};
  e.framing = {false, false, false};
  e.token_ids = {5, 6, 7};
  explain::AttentionBlock b;
  b.layers = {0}, b.heads = {0};
  b.weights = {Tensor::from_vector(std::vector<float>{0.2f, 0.3f, 0.5f,  //
                                                      0.6f, 0.4f, 0.0f,  //
                                                      0.1f, 0.1f, 0.8f},
                                   Shape{1, 3, 3})};
  e.blocks = {b};
  e.importance = {0.1f, 0.2f, 0.7f};
  e.attributions = {{"gradient_x_input", {1.0f, -2.0f, 4.0f}}};
  explain::aggregate_to_words(e, {{0, 0, 1}, {"ab", "c"}});
  const std::vector<float> w = e.blocks[0].weights[0].to_vector<float>();
  // Row ab: the mean of rows a and ##b, columns a + ##b summed: ((0.5 + 1.0) / 2, (0.5 + 0) / 2).
  EXPECT_NEAR(w[0], 0.75, 1e-6);
  EXPECT_NEAR(w[1], 0.25, 1e-6);
  EXPECT_NEAR(w[2], 0.2, 1e-6);  // row c: 0.1 + 0.1 to ab
  EXPECT_NEAR(w[3], 0.8, 1e-6);
  EXPECT_EQ(e.tokens, (std::vector<std::string>{"ab", "c"}));
  EXPECT_TRUE(e.token_ids.empty());
  EXPECT_NEAR(e.importance[0], 0.3, 1e-6);
  EXPECT_EQ(e.attributions[0].scores, (std::vector<float>{-1.0f, 4.0f}));
  EXPECT_FALSE(e.word_rule.empty());
  EXPECT_THROW(explain::aggregate_to_words(e, {{0, 0, 1}, {"ab", "c"}}), ValueError);  // 2 now
}

}  // namespace
}  // namespace gaze
