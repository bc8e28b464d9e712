// Recurrent cells and layers: finite-difference gradients (float64), including carried rows.
#include <gtest/gtest.h>

#include "gaze/nn/rnn.h"
#include "gaze/ops/ops.h"
#include "gradcheck.h"

namespace gaze {
namespace {

using testing::gradcheck;
using testing::rand_input;
using V = std::vector<Tensor>;

TEST(RnnCells, GradientsWithAndWithoutCarriedRows) {
  const int64_t B = 3, H = 5;
  const Tensor valid = Tensor::from_vector(std::vector<bool>{true, false, true}, Shape{B});
  for (const Tensor& v : {Tensor(), valid}) {
    const Tensor xg = rand_input({B, 4 * H}, 1, -2, 2), hg = rand_input({B, 4 * H}, 2, -2, 2),
                 h = rand_input({B, H}, 3), c = rand_input({B, H}, 4);
    // Weight both outputs so the gradients of h and c both matter.
    EXPECT_TRUE(gradcheck(
        [&](const V& x) {
          LstmState s = lstm_cell(x[0], x[1], x[2], x[3], v);
          return add(s.h, mul(s.c, 0.7));
        },
        {xg, hg, h, c}));
    const Tensor xg3 = rand_input({B, 3 * H}, 5, -2, 2), hg3 = rand_input({B, 3 * H}, 6, -2, 2);
    EXPECT_TRUE(
        gradcheck([&](const V& x) { return gru_cell(x[0], x[1], x[2], v); }, {xg3, hg3, h}));
  }
}

TEST(RnnLayers, BidirectionalTwoLayersWithLengths) {
  manual_seed(7);
  for (bool gru : {false, true}) {
    nn::RnnOptions o;
    o.input_size = 3, o.hidden_size = 4, o.num_layers = 2, o.bidirectional = true,
    o.batch_first = true;
    nn::LSTM lstm(o);
    nn::GRU g(o);
    lstm.to(DType::f64);
    g.to(DType::f64);
    const Tensor lengths = Tensor::from_vector<int64_t>({5, 2, 0}, Shape{3});
    const Tensor x = rand_input({3, 5, 3}, 8);
    EXPECT_TRUE(gradcheck(
        [&](const V& in) {
          nn::RnnOutput r = gru ? g.forward(in[0], lengths) : lstm.forward(in[0], lengths);
          return add(sum(r.output), sum(mul(r.h_n, 1.3)));
        },
        {x}))
        << (gru ? "gru" : "lstm");
    // A sequence of length 0 outputs zeros and keeps its (zero) initial state.
    nn::RnnOutput r = lstm.forward(x, lengths);
    for (int64_t t = 0; t < 5; ++t)
      for (int64_t k = 0; k < 8; ++k)
        EXPECT_EQ(r.output.to_vector<double>()[(2 * 5 + t) * 8 + k], 0.0);
  }
}

}  // namespace
}  // namespace gaze
