// Autograd: the tape, backward from scalars and with explicit gradients, accumulation, NoGradGuard,
// freed graphs, in-place detection, detach and zero_grad.
#include <gtest/gtest.h>
#include <algorithm>

#include "gaze/autograd/node.h"
#include "gaze/core/allocator.h"
#include "gaze/ops/ops.h"

#include "gradcheck.h"

namespace gaze {
namespace {

using testing::leaf;

TEST(Autograd, BackwardFromScalar) {
  Tensor x = leaf({1, 2, 3}, Shape{3});
  Tensor y = sum(x * x);  // dy/dx = 2x
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(y.is_leaf());
  y.backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{2, 4, 6}));
}

TEST(Autograd, BackwardWithExplicitGradient) {
  Tensor x = leaf({1, 2, 3}, Shape{3});
  Tensor y = x * 3.0;
  y.backward(Tensor::from_vector<float>({1, 10, 100}, Shape{3}));
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{3, 30, 300}));
  // A non-scalar output without a gradient is an error that says what to do.
  Tensor z = x * 2.0;
  EXPECT_THROW(z.backward(), ValueError);
  EXPECT_THROW(z.backward(Tensor::ones(Shape{2})), ValueError);
}

TEST(Autograd, TensorUsedTwiceAccumulates) {
  Tensor x = leaf({2}, Shape{1});
  Tensor y = x * x + x * 3.0;  // 2x + 3 = 7
  y.backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 7.0f);
  // A diamond: both branches reach the same intermediate.
  Tensor a = leaf({1, -1}, Shape{2});
  Tensor h = tanh(a);
  Tensor out = sum(h * h + h);
  out.backward();
  const auto g = a.grad().to_vector<float>();
  for (int i = 0; i < 2; ++i) {
    const float t = std::tanh(i == 0 ? 1.0f : -1.0f);
    EXPECT_NEAR(g[i], (2 * t + 1) * (1 - t * t), 1e-6);
  }
}

TEST(Autograd, GradientsAccumulateAcrossBackwardCallsUntilZeroed) {
  Tensor x = leaf({1, 2}, Shape{2});
  sum(x * 2.0).backward();
  sum(x * 2.0).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{4, 4}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  sum(x).backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 1}));
}

TEST(Autograd, SharedGradientBuffersAreNotAliased) {
  // add passes the same gradient to both inputs; each leaf must own its .grad.
  Tensor a = leaf({1}, Shape{1}), b = leaf({1}, Shape{1});
  sum(a + b).backward();
  sum(a * 5.0).backward();
  EXPECT_FLOAT_EQ(a.grad().item<float>(), 6.0f);
  EXPECT_FLOAT_EQ(b.grad().item<float>(), 1.0f);
}

TEST(Autograd, SummingIntoAnIntermediateGradientLeavesSharedBuffersAlone) {
  // add hands one buffer to both a's and b's nodes; each of them gets a second gradient too (from
  // t and u). A sum must not be written into that shared buffer while the other node has yet to
  // read it. Every order of the three terms, as the engine's order follows the graph's.
  std::vector<int> order{0, 1, 2};
  do {
    Tensor x = leaf({1, 2}, Shape{2});
    Tensor a = x * 3.0, b = x * 5.0;
    const Tensor terms[3] = {a + b, a * 2.0, b * 7.0};
    sum(terms[order[0]] + terms[order[1]] + terms[order[2]]).backward();
    EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{49, 49}));  // 3*(1+2) + 5*(1+7)
  } while (std::next_permutation(order.begin(), order.end()));
  // A residual stream: h's first gradient is its own and takes the second in place.
  Tensor y = leaf({1, -1}, Shape{2});
  Tensor h = y * 2.0;
  sum(h + tanh(h)).backward();
  const auto g = y.grad().to_vector<float>();
  for (int i = 0; i < 2; ++i) {
    const float th = std::tanh(i == 0 ? 2.0f : -2.0f);
    EXPECT_NEAR(g[i], 2 * (1 + (1 - th * th)), 1e-6);
  }
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor x = leaf({1, 2, 3}, Shape{3});
  Tensor y;
  {
    NoGradGuard guard;
    EXPECT_FALSE(autograd::grad_mode_enabled());
    y = softmax(x * 2.0, 0);
  }
  EXPECT_TRUE(autograd::grad_mode_enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_THROW(y.backward(), StateError);
}

TEST(Autograd, NoGradInferenceKeepsNoBuffersAlive) {
  // Under NoGradGuard nothing is saved for backward: once the outputs are dropped, every
  // intermediate buffer is back in the allocator.
  Tensor w = leaf(std::vector<float>(64 * 64, 0.01f), Shape{64, 64});
  Tensor x = Tensor::ones(Shape{8, 64});
  const size_t before = allocator::stats().bytes_in_use;
  Tensor out;
  {
    NoGradGuard guard;
    out = sum(softmax(gelu(linear(x, w)), -1));
  }
  out = Tensor();
  EXPECT_EQ(allocator::stats().bytes_in_use, before);
}

TEST(Autograd, BackwardTwiceThroughFreedGraphRaises) {
  Tensor x = leaf({1, 2}, Shape{2});
  Tensor y = sum(exp(x));
  y.backward();
  try {
    y.backward();
    FAIL() << "second backward should raise";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("second time"), std::string::npos) << e.what();
  }
}

TEST(Autograd, RetainGraphAllowsASecondBackward) {
  Tensor x = leaf({1, 2}, Shape{2});
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().to_vector<float>()[1], 2 * std::exp(2.0f), 1e-4);
}

TEST(Autograd, InPlaceWriteToSavedTensorIsDetected) {
  Tensor x = leaf({1, 2}, Shape{2});
  Tensor h = x * 2.0;
  Tensor z = sum(h * h);  // mul saves h for its backward
  {
    NoGradGuard guard;
    h.fill_(0.0);  // ...which is then overwritten
  }
  try {
    z.backward();
    FAIL() << "backward through a modified saved tensor should raise";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("modified in place"), std::string::npos) << e.what();
  }
}

TEST(Autograd, InPlaceOnLeafRequiringGradIsRefused) {
  Tensor x = leaf({1, 2}, Shape{2});
  EXPECT_THROW(x.fill_(0.0), StateError);
  NoGradGuard guard;
  x.fill_(0.0);  // optimizer-style update under no_grad is fine
  EXPECT_EQ(x.to_vector<float>(), (std::vector<float>{0, 0}));
}

TEST(Autograd, DetachStopsGradients) {
  Tensor x = leaf({3}, Shape{1});
  Tensor d = (x * 2.0).detach();
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  Tensor y = sum(x * d);  // d acts as a constant 6
  y.backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 6.0f);
}

TEST(Autograd, RequiresGradRules) {
  Tensor x = leaf({1}, Shape{1});
  Tensor y = x * 2.0;
  EXPECT_THROW(y.set_requires_grad(false), StateError);
  EXPECT_THROW(Tensor::arange(3).set_requires_grad(), ValueError);
  Tensor c = Tensor::ones(Shape{1});
  EXPECT_FALSE((c * 2.0).requires_grad());
}

TEST(Autograd, MultiOutputNodeWithUnusedOutputs) {
  Tensor x = leaf({1, 2, 3, 4}, Shape{4});
  auto parts = split(x, 1, 0);
  Tensor y = parts[2] * 5.0;
  y.backward();
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{0, 0, 5, 0}));
}

TEST(Autograd, LongChainDoesNotOverflowTheStack) {
  Tensor x = leaf({1}, Shape{1});
  Tensor y = x;
  for (int i = 0; i < 200000; ++i) y = y * 1.0;
  sum(y).backward();
  EXPECT_FLOAT_EQ(x.grad().item<float>(), 1.0f);
  y = Tensor();  // releasing the graph must not recurse 200000 destructors deep
}

}  // namespace
}  // namespace gaze
