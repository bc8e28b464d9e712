// Bad input: every op refuses wrong shapes, dtypes, out-of-range indices and empty reductions with
// a gaze error naming the op, the shapes and what was expected; NaN propagates without crashing.
#include <gtest/gtest.h>

#include <cmath>

#include "gaze/ops/ops.h"

namespace gaze {
namespace {

// Expects `stmt` to throw E whose message contains every fragment.
template <typename E, typename F>
void expect_error_impl(F&& stmt, std::initializer_list<std::string_view> fragments) {
  try {
    stmt();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (auto f : fragments)
      EXPECT_NE(msg.find(f), std::string::npos) << "message: " << msg << "\nmissing: " << f;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

#define expect_error      \
  SCOPED_TRACE(__LINE__); \
  expect_error_impl

const Tensor a23 = Tensor::ones(Shape{2, 3});
const Tensor a43 = Tensor::ones(Shape{4, 3});

TEST(Errors, ShapeMismatches) {
  expect_error<ValueError>([] { add(a23, a43); }, {"add", "[2, 3]", "[4, 3]", "broadcast"});
  expect_error<ValueError>([] { matmul(a23, a43); }, {"matmul", "[2, 3]", "[4, 3]", "inner sizes"});
  expect_error<ValueError>(
      [] {
        matmul(Tensor::ones(Shape{2, 2, 3}), Tensor::ones(Shape{3, 3, 4}));
      },
      {"matmul", "broadcast"});
  expect_error<ValueError>(
      [] {
        linear(a23, Tensor::ones(Shape{3, 4}));
      },
      {"linear", "[2, 3]", "[3, 4]", "in_features"});
  expect_error<ValueError>([] { linear(a23, a43, Tensor::ones(Shape{3})); },
                           {"linear", "bias", "[4]"});
  expect_error<ValueError>(
      [] {
        reshape(a23, std::vector<int64_t>{4, 2});
      },
      {"reshape", "[4, 2]", "[2, 3]"});
  expect_error<ValueError>([] { reshape(a23, std::vector<int64_t>{-1, -1}); }, {"reshape", "-1"});
  expect_error<ValueError>(
      [] {
        cat({a23, Tensor::ones(Shape{2, 3, 1})}, 0);
      },
      {"cat", "same number of dims"});
  expect_error<ValueError>([] { cat({a23, a43}, 1); }, {"cat", "dimension 1", "tensors[1]"});
  expect_error<ValueError>(
      [] {
        split(a23, std::vector<int64_t>{1, 1}, 1);
      },
      {"split", "sum to 2", "size 3"});
  expect_error<ValueError>([] { permute(a23, {0}); }, {"permute", "2 dims"});
  expect_error<ValueError>([] { permute(a23, {0, 0}); }, {"permute", "repeated"});
  expect_error<ValueError>([] { layer_norm(a23, {2}); }, {"layer_norm", "[2]", "[2, 3]"});
  expect_error<ValueError>([] { layer_norm(a23, {3}, Tensor::ones(Shape{4})); },
                           {"layer_norm", "weight", "[4]"});
  expect_error<ValueError>([] { expand(a23, Shape{4, 3}); }, {"expand", "[2, 3]", "[4, 3]"});
  expect_error<ValueError>(
      [] {
        Tensor::from_vector<float>({1, 2, 3}, Shape{2, 2});
      },
      {"3 values", "[2, 2]"});
}

TEST(Errors, DimsOutOfRange) {
  expect_error<IndexError>([] { softmax(a23, 2); }, {"softmax", "range", "got 2"});
  expect_error<IndexError>([] { sum(a23, {-3}); }, {"sum", "got -3"});
  expect_error<IndexError>([] { transpose(a23, 0, 5); }, {"transpose"});
  expect_error<IndexError>([] { select(a23, 0, 2); }, {"select", "index 2", "size 2"});
  expect_error<IndexError>([] { narrow(a23, 1, 2, 5); }, {"narrow", "size 3"});
  expect_error<ValueError>([] { sum(a23, {1, -1}); }, {"sum", "more than once"});
}

TEST(Errors, ZeroSizeDims) {
  const Tensor empty = Tensor::empty(Shape{0, 3});
  EXPECT_EQ(sum(empty, {0}).to_vector<float>(), (std::vector<float>{0, 0, 0}));
  EXPECT_TRUE(std::isnan(mean(empty).item<float>()));  // 0/0, as torch
  EXPECT_EQ(softmax(empty, 1).numel(), 0);
  EXPECT_EQ(matmul(empty, Tensor::ones(Shape{3, 4})).shape(), (Shape{0, 4}));
  EXPECT_EQ(matmul(Tensor::ones(Shape{2, 0}), Tensor::ones(Shape{0, 4})).to_vector<float>(),
            std::vector<float>(8, 0.0f));
  EXPECT_EQ(layer_norm(empty, {3}).numel(), 0);
  expect_error<ValueError>([&] { max(empty, 0); }, {"max", "size 0"});
  expect_error<ValueError>([&] { max(empty); }, {"max", "no elements"});
  expect_error<ValueError>(
      [] {
        layer_norm(Tensor::ones(Shape{2, 0}), {0});
      },
      {"layer_norm", "no elements"});
  // A backward through zero-size tensors works and gives empty gradients.
  Tensor e = Tensor::empty(Shape{0, 3});
  e.set_requires_grad();
  sum(e * 2.0).backward();
  EXPECT_EQ(e.grad().shape(), (Shape{0, 3}));
}

TEST(Errors, IndicesOutOfRange) {
  const Tensor w = Tensor::ones(Shape{5, 2});
  expect_error<IndexError>(
      [&] {
        embedding(Tensor::from_vector<int64_t>({0, 5}, Shape{2}), w);
      },
      {"embedding", "index 5", "position 1", "5 rows"});
  expect_error<IndexError>([&] { embedding(Tensor::from_vector<int64_t>({-1}, Shape{1}), w); },
                           {"embedding", "index -1"});
  expect_error<IndexError>([&] { embedding(Tensor::from_vector<int64_t>({0}, Shape{1}), w, 7); },
                           {"padding_idx 7"});
  expect_error<ValueError>([&] { embedding(Tensor::ones(Shape{2}), w); },
                           {"embedding", "int64", "float32"});
  const Tensor z = Tensor::ones(Shape{3, 4});
  expect_error<IndexError>(
      [&] {
        cross_entropy(z, Tensor::from_vector<int64_t>({0, 4, 1}, Shape{3}));
      },
      {"cross_entropy", "target 4", "position 1", "4 classes"});
  expect_error<IndexError>(
      [&] {
        cross_entropy(z, Tensor::from_vector<int64_t>({0, -5, 1}, Shape{3}));
      },
      {"target -5"});
  expect_error<ValueError>(
      [&] {
        cross_entropy(z, Tensor::from_vector<int64_t>({0, 1}, Shape{2}));
      },
      {"cross_entropy", "[2]", "[3]"});
  CrossEntropyOptions bad;
  bad.label_smoothing = 1.5;
  expect_error<ValueError>(
      [&] {
        cross_entropy(z, Tensor::from_vector<int64_t>({0, 1, 2}, Shape{3}), bad);
      },
      {"label_smoothing", "1.5"});
}

TEST(Errors, DtypesAndArguments) {
  expect_error<ValueError>(
      [] {
        add(a23, Tensor::ones(Shape{2, 3}, DType::f64));
      },
      {"add", "float32", "float64"});
  expect_error<ValueError>([] { relu(Tensor::arange(3)); }, {"relu", "floating-point", "int64"});
  expect_error<ValueError>([] { gelu(a23, "fast"); }, {"gelu", "'fast'"});
  expect_error<ValueError>([] { dropout(a23, 1.5); }, {"dropout", "1.5"});
  expect_error<ValueError>([] { parse_reduction("avg"); }, {"'avg'"});
  expect_error<ValueError>([] { add(Tensor(), a23); }, {"add", "'input'", "undefined"});
}

TEST(Errors, NanPropagatesWithoutCrashing) {
  const float nan = std::nanf("");
  Tensor x = Tensor::from_vector<float>({1, nan, 3}, Shape{1, 3});
  x.set_requires_grad();
  for (float v : softmax(x, 1).to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  for (float v : log_softmax(x, 1).to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  EXPECT_TRUE(std::isnan(relu(x).to_vector<float>()[1]));
  EXPECT_TRUE(std::isnan(gelu(x).to_vector<float>()[1]));
  EXPECT_TRUE(std::isnan(exp(x).to_vector<float>()[1]));
  EXPECT_TRUE(std::isnan(log(x).to_vector<float>()[1]));
  EXPECT_TRUE(std::isnan(tanh(x).to_vector<float>()[1]));
  EXPECT_TRUE(std::isnan(sigmoid(x).to_vector<float>()[1]));
  EXPECT_TRUE(std::isnan(max(x).item<float>()));
  EXPECT_EQ(max(x, 1).indices.item<int64_t>(), 1);
  EXPECT_TRUE(std::isnan(sum(x).item<float>()));
  for (float v : layer_norm(x, {3}).to_vector<float>()) EXPECT_TRUE(std::isnan(v));
  EXPECT_TRUE(
      std::isnan(cross_entropy(x, Tensor::from_vector<int64_t>({0}, Shape{1})).item<float>()));
  EXPECT_TRUE(std::isnan(matmul(x, Tensor::ones(Shape{3, 2})).to_vector<float>()[0]));
  Tensor loss = sum(softmax(x, 1) * 2.0);
  loss.backward();
  EXPECT_EQ(x.grad().numel(), 3);
}

}  // namespace
}  // namespace gaze
