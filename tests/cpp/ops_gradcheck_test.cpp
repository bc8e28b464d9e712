// Gradient checks (finite differences in float64, see gradcheck.h) for every differentiable op.
#include <gtest/gtest.h>

#include "gaze/ops/crf.h"
#include "gaze/ops/ops.h"
#include "gradcheck.h"

namespace gaze {
namespace {

using testing::gradcheck;
using testing::rand_input;
using V = std::vector<Tensor>;

Tensor idx(const std::vector<int64_t>& v, const Shape& s) {
  return Tensor::from_vector(v, s);
}

TEST(Gradcheck, BroadcastArithmetic) {
  const std::vector<std::pair<Shape, Shape>> shapes = {
      {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{2, 1, 4}, {3, 1}}, {{1}, {2, 3}}, {{}, {2, 2}}, {{5}, {}}};
  for (const auto& [sa, sb] : shapes) {
    const Tensor a = rand_input(sa, 1), b = rand_input(sb, 2, 0.5, 2.0);  // b away from 0 for div
    EXPECT_TRUE(gradcheck([](const V& x) { return add(x[0], x[1]); }, {a, b}))
        << sa.str() << sb.str();
    EXPECT_TRUE(gradcheck([](const V& x) { return sub(x[0], x[1]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& x) { return mul(x[0], x[1]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& x) { return div(x[0], x[1]); }, {a, b}));
    EXPECT_TRUE(gradcheck([](const V& x) { return add(x[0], x[1], -2.5); }, {a, b}));
  }
}

TEST(Gradcheck, OnlyOneSideRequiresGrad) {
  const Tensor a = rand_input({3, 4}, 1), b = rand_input({4}, 2, 0.5, 2.0, false);
  EXPECT_TRUE(gradcheck([](const V& x) { return div(x[0], x[1]); }, {a, b}));
  EXPECT_FALSE(b.grad().defined());
  const Tensor c = rand_input({3, 4}, 3, -1, 1, false), d = rand_input({4}, 4, 0.5, 2.0);
  EXPECT_TRUE(gradcheck([](const V& x) { return mul(x[0], x[1]); }, {c, d}));
}

TEST(Gradcheck, ScalarOps) {
  const Tensor a = rand_input({2, 3}, 5, 0.5, 2.0);
  EXPECT_TRUE(gradcheck([](const V& x) { return add(x[0], 3.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return sub(x[0], 3.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return rsub(x[0], 3.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return mul(x[0], -1.5); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return div(x[0], 4.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return rdiv(x[0], 2.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return 2.0 - x[0] * 3.0 + 1.0 / x[0]; }, {a}));
}

TEST(Gradcheck, UnaryMath) {
  const Tensor a = rand_input({17}, 6, -3.0, 3.0), pos = rand_input({17}, 7, 0.2, 3.0);
  EXPECT_TRUE(gradcheck([](const V& x) { return neg(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return tanh(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return sigmoid(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return exp(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return gelu(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return gelu(x[0], "tanh"); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return log(x[0]); }, {pos}));
  EXPECT_TRUE(gradcheck([](const V& x) { return sqrt(x[0]); }, {pos}));
  EXPECT_TRUE(gradcheck([](const V& x) { return reciprocal(x[0]); }, {pos}));
  EXPECT_TRUE(gradcheck([](const V& x) { return pow(x[0], 3.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return pow(x[0], 2.0); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return pow(x[0], -0.5); }, {pos}));
  // relu and abs are not differentiable at 0: keep inputs away from it.
  const Tensor away = rand_input({17}, 8, 0.1, 2.0);
  EXPECT_TRUE(gradcheck([](const V& x) { return relu(x[0]) + relu(neg(x[0])) * 3.0; }, {away}));
  EXPECT_TRUE(gradcheck([](const V& x) { return abs(x[0]) + abs(neg(x[0]) * 2.0); }, {away}));
}

TEST(Gradcheck, Reductions) {
  const Tensor a = rand_input({3, 4, 5}, 9);
  EXPECT_TRUE(gradcheck([](const V& x) { return sum(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return mean(x[0]); }, {a}));
  for (bool keep : {false, true}) {
    EXPECT_TRUE(gradcheck([keep](const V& x) { return sum(x[0], {1}, keep); }, {a}));
    EXPECT_TRUE(gradcheck([keep](const V& x) { return sum(x[0], {0, 2}, keep); }, {a}));
    EXPECT_TRUE(gradcheck([keep](const V& x) { return sum(x[0], {-1, -2}, keep); }, {a}));
    EXPECT_TRUE(gradcheck([keep](const V& x) { return mean(x[0], {2}, keep); }, {a}));
    EXPECT_TRUE(gradcheck([keep](const V& x) { return mean(x[0], {0, 1}, keep); }, {a}));
    for (int d = -3; d < 3; ++d)
      EXPECT_TRUE(gradcheck([keep, d](const V& x) { return max(x[0], d, keep).values; }, {a}));
  }
  EXPECT_TRUE(gradcheck([](const V& x) { return max(x[0]); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return sum_to(x[0], Shape{4, 1}); }, {a}));
}

TEST(Gradcheck, ShapeOps) {
  const Tensor a = rand_input({2, 3, 4}, 10), b = rand_input({2, 5, 4}, 11);
  EXPECT_TRUE(gradcheck(
      [](const V& x) {
        return reshape(x[0], std::vector<int64_t>{4, -1});
      },
      {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return flatten(x[0], 1); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return unsqueeze(x[0], 1); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return squeeze(unsqueeze(x[0], -1), -1); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return permute(x[0], {2, 0, 1}); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return transpose(x[0], 0, 2); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return transpose(x[0], -1, -2); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return cat({x[0], x[1], x[0]}, 1); }, {a, b}));
  EXPECT_TRUE(gradcheck(
      [](const V& x) {
        return expand(x[0], Shape{3, 2, 5, 4});
      },
      {rand_input({2, 1, 4}, 12)}));
  // split and chunk: use every piece with a different weight, and also leave a piece unused.
  EXPECT_TRUE(gradcheck(
      [](const V& x) {
        auto p = split(x[0], std::vector<int64_t>{1, 4}, 1);
        return cat({p[1] * 2.0, p[0]}, 1);
      },
      {b}));
  EXPECT_TRUE(gradcheck([](const V& x) { return split(x[0], 2, 1)[1]; }, {b}));
  EXPECT_TRUE(gradcheck([](const V& x) { return chunk(x[0], 3, 1)[2] * 3.0; }, {b}));
  EXPECT_TRUE(gradcheck([](const V& x) { return slice(x[0], 1, 1, 3); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return slice(x[0], 2, 0, 4, 2); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return slice(x[0], 0, 1); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return narrow(x[0], -1, 1, 2); }, {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return select(x[0], 1, -1); }, {a}));
}

TEST(Gradcheck, Matmul) {
  struct Case {
    Shape a, b;
    bool ta, tb;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {4, 5}, false, false},      {{4, 3}, {4, 5}, true, false},
      {{3, 4}, {5, 4}, false, true},       {{4, 3}, {5, 4}, true, true},
      {{2, 3, 4}, {4, 5}, false, false},   {{2, 3, 4}, {5, 4}, false, true},
      {{2, 4, 3}, {4, 5}, true, false},    {{2, 3, 4}, {2, 4, 5}, false, false},
      {{3, 4}, {2, 4, 5}, false, false},   {{2, 1, 3, 4}, {3, 4, 5}, false, false},
      {{2, 3, 4}, {2, 5, 4}, false, true}, {{4}, {4, 5}, false, false},
      {{3, 4}, {4}, false, false},         {{4}, {4}, false, false},
      {{2, 3, 4}, {4}, false, false},      {{4}, {2, 4, 5}, false, false},
  };
  for (const auto& c : cases) {
    const Tensor a = rand_input(c.a, 13), b = rand_input(c.b, 14);
    EXPECT_TRUE(gradcheck([&](const V& x) { return matmul(x[0], x[1], c.ta, c.tb); }, {a, b}))
        << c.a.str() << (c.ta ? "^T" : "") << " @ " << c.b.str() << (c.tb ? "^T" : "");
  }
  EXPECT_TRUE(gradcheck([](const V& x) { return bmm(x[0], x[1]); },
                        {rand_input({2, 3, 4}, 15), rand_input({2, 4, 2}, 16)}));
}

TEST(Gradcheck, Linear) {
  const Tensor x = rand_input({2, 3, 4}, 17), w = rand_input({5, 4}, 18), b = rand_input({5}, 19);
  EXPECT_TRUE(gradcheck([](const V& v) { return linear(v[0], v[1], v[2]); }, {x, w, b}));
  EXPECT_TRUE(gradcheck([](const V& v) { return linear(v[0], v[1]); }, {x, w}));
  EXPECT_TRUE(
      gradcheck([](const V& v) { return linear(v[0], v[1], v[2]); }, {rand_input({4}, 20), w, b}));
}

TEST(Gradcheck, Softmax) {
  const Tensor a = rand_input({3, 4, 5}, 21, -3, 3);
  for (int d = -3; d < 3; ++d) {
    EXPECT_TRUE(gradcheck([d](const V& x) { return softmax(x[0], d); }, {a})) << d;
    EXPECT_TRUE(gradcheck([d](const V& x) { return log_softmax(x[0], d); }, {a})) << d;
  }
  const Tensor wide = rand_input({2, 37}, 22, -5, 5);  // several SIMD vectors plus a tail
  EXPECT_TRUE(gradcheck([](const V& x) { return softmax(x[0], 1); }, {wide}));
  EXPECT_TRUE(gradcheck([](const V& x) { return log_softmax(x[0], 1); }, {wide}));
}

TEST(Gradcheck, LayerNorm) {
  const Tensor x = rand_input({3, 2, 19}, 23, -2, 2), w = rand_input({19}, 24),
               b = rand_input({19}, 25);
  EXPECT_TRUE(
      gradcheck([](const V& v) { return layer_norm(v[0], {19}, v[1], v[2], 1e-5); }, {x, w, b}));
  EXPECT_TRUE(gradcheck([](const V& v) { return layer_norm(v[0], {19}); }, {x}));
  EXPECT_TRUE(gradcheck([](const V& v) { return layer_norm(v[0], {19}, v[1]); }, {x, w}));
  EXPECT_TRUE(gradcheck([](const V& v) { return layer_norm(v[0], {19}, Tensor(), v[1]); }, {x, b}));
  const Tensor w2 = rand_input({2, 19}, 26), b2 = rand_input({2, 19}, 27);
  EXPECT_TRUE(gradcheck(
      [](const V& v) {
        return layer_norm(v[0], {2, 19}, v[1], v[2], 1e-3);
      },
      {x, w2, b2}));
}

TEST(Gradcheck, Embedding) {
  const Tensor w = rand_input({6, 5}, 28);
  const Tensor ids = idx({0, 2, 5, 2, 1, 0}, {2, 3});
  EXPECT_TRUE(gradcheck([ids](const V& v) { return embedding(ids, v[0]); }, {w}));
  // A padding_idx that does not occur changes nothing.
  EXPECT_TRUE(gradcheck([ids](const V& v) { return embedding(ids, v[0], 3); }, {w}));
  // Where it occurs, torch's semantics: its row is looked up but receives no gradient (so finite
  // differences would disagree there by design); every other row gets the scatter-added gradient.
  for (int64_t pad : {2, -1}) {
    w.zero_grad();
    Tensor out = embedding(ids, w, pad);
    const Tensor g = Tensor::ones(out.shape(), DType::f64);
    out.backward(g);
    const auto gw = w.grad().to_vector<double>();
    const int64_t prow = pad < 0 ? pad + 6 : pad;
    const std::vector<int64_t> counts{2, 1, 2, 0, 0, 1};  // occurrences of each row in ids
    for (int64_t r = 0; r < 6; ++r)
      for (int64_t c = 0; c < 5; ++c)
        EXPECT_EQ(gw[r * 5 + c], r == prow ? 0.0 : static_cast<double>(counts[r]));
  }
}

TEST(Gradcheck, Dropout) {
  const Tensor a = rand_input({4, 33}, 29);
  // A fresh generator per call makes the function deterministic, as finite differences need.
  EXPECT_TRUE(gradcheck(
      [](const V& x) {
        Generator g(5);
        return dropout(x[0], 0.3, true, &g);
      },
      {a}));
  EXPECT_TRUE(gradcheck(
      [](const V& x) {
        Generator g(5);
        return dropout(x[0], 1.0, true, &g);
      },
      {a}));
  EXPECT_TRUE(gradcheck([](const V& x) { return dropout(x[0], 0.3, false) * 2.0; }, {a}));
}

TEST(Gradcheck, CrossEntropy) {
  const Tensor z = rand_input({5, 4}, 30, -3, 3);
  const Tensor y = idx({0, 3, 1, -100, 2}, {5});
  const Tensor w = rand_input({4}, 31, 0.5, 2.0, false);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none})
    for (double eps : {0.0, 0.1})
      for (bool weighted : {false, true}) {
        CrossEntropyOptions o;
        o.reduction = r;
        o.label_smoothing = eps;
        if (weighted) o.weight = w;
        EXPECT_TRUE(gradcheck([&](const V& v) { return cross_entropy(v[0], y, o); }, {z}))
            << static_cast<int>(r) << " eps " << eps << " weighted " << weighted;
      }
  // K-dimensional input [N, C, d] and a 1-D input [C].
  const Tensor z3 = rand_input({2, 4, 3}, 32, -3, 3);
  const Tensor y3 = idx({0, 1, 3, 2, -100, 1}, {2, 3});
  EXPECT_TRUE(gradcheck([&](const V& v) { return cross_entropy(v[0], y3); }, {z3}));
  EXPECT_TRUE(gradcheck(
      [&](const V& v) {
        CrossEntropyOptions o;
        o.reduction = Reduction::none;
        o.label_smoothing = 0.2;
        return cross_entropy(v[0], y3, o);
      },
      {z3}));
  EXPECT_TRUE(gradcheck([&](const V& v) { return cross_entropy(v[0], idx({2}, {})); },
                        {rand_input({4}, 33)}));
}

TEST(Gradcheck, CrfNll) {
  // Three sequences (lengths 4, 1, 3) of 3 tags: emissions, start, end and transitions.
  manual_seed(11);
  const Tensor e = randn(Shape{3, 4, 3}, DType::f64).set_requires_grad();
  const Tensor start = randn(Shape{3}, DType::f64).set_requires_grad();
  const Tensor end = randn(Shape{3}, DType::f64).set_requires_grad();
  const Tensor trans = randn(Shape{3, 3}, DType::f64).set_requires_grad();
  const Tensor tags = Tensor::from_vector(std::vector<int64_t>{0, 2, 1, 1, 2, 9, 9, 9, 1, 0, 2, 5},
                                          Shape{3, 4});  // entries past a length are ignored
  const Tensor lengths = Tensor::from_vector(std::vector<int64_t>{4, 1, 3}, Shape{3});
  EXPECT_TRUE(gradcheck(
      [&](const V& x) {
        return crf_nll(x[0], tags, lengths, {x[1], x[2], x[3]});
      },
      {e, start, end, trans}));
  // The NLL of every path sums to one: sum over all 3^3 tag sequences of exp(-nll) = 1.
  const Tensor e3 = narrow(e.detach(), 1, 0, 3), one = Tensor::full(Shape{1}, 3.0, DType::i64);
  double total = 0;
  for (int64_t p = 0; p < 27; ++p) {
    const Tensor y =
        Tensor::from_vector(std::vector<int64_t>{p / 9, (p / 3) % 3, p % 3}, Shape{1, 3});
    total += std::exp(
        -crf_nll(narrow(e3, 0, 0, 1), y, one, {start.detach(), end.detach(), trans.detach()})
             .item<double>());
  }
  EXPECT_NEAR(total, 1.0, 1e-12);
  // Viterbi finds the path of least NLL.
  const auto best =
      crf_decode(narrow(e3, 0, 0, 1), one, {start.detach(), end.detach(), trans.detach()});
  double least = 1e300;
  std::vector<int64_t> arg;
  for (int64_t p = 0; p < 27; ++p) {
    const std::vector<int64_t> path{p / 9, (p / 3) % 3, p % 3};
    const double nll = crf_nll(narrow(e3, 0, 0, 1), Tensor::from_vector(path, Shape{1, 3}), one,
                               {start.detach(), end.detach(), trans.detach()})
                           .item<double>();
    if (nll < least) least = nll, arg = path;
  }
  EXPECT_EQ(best[0], arg);
  EXPECT_THROW(
      crf_nll(e.detach(), tags, Tensor::from_vector(std::vector<int64_t>{4, 0, 3}, Shape{3}),
              {start, end, trans}),
      ValueError);
}

TEST(Gradcheck, MseLoss) {
  const Tensor a = rand_input({3, 4}, 34), b = rand_input({3, 4}, 35), c = rand_input({4}, 36);
  for (Reduction r : {Reduction::mean, Reduction::sum, Reduction::none}) {
    EXPECT_TRUE(gradcheck([r](const V& v) { return mse_loss(v[0], v[1], r); }, {a, b}));
    EXPECT_TRUE(gradcheck([r](const V& v) { return mse_loss(v[0], v[1], r); }, {a, c}));
  }
}

TEST(Gradcheck, Composite) {
  // A small attention-shaped expression: softmax(q k^T / sqrt d) v, through several ops at once.
  const Tensor q = rand_input({2, 3, 4}, 37), k = rand_input({2, 5, 4}, 38),
               v = rand_input({2, 5, 4}, 39);
  EXPECT_TRUE(gradcheck(
      [](const V& x) { return matmul(softmax(matmul(x[0], x[1], false, true) * 0.5, -1), x[2]); },
      {q, k, v}));
}

}  // namespace
}  // namespace gaze
