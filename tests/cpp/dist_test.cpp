// Data-parallel pieces that run in one process: the post-accumulate hook, the gradient reducer's
// buckets (order, overlap with backward, parameters without gradients) against a stand-in for the
// other ranks, the batch shares, and the divisor the ranks weigh their losses by.
#include <gtest/gtest.h>

#include "gaze/dist/gradient_reducer.h"
#include "gaze/ops/loss.h"
#include "gaze/ops/ops.h"
#include "gaze/train/tensorboard.h"
#include "gaze/train/trainer.h"
#include "gradcheck.h"

namespace gaze {
namespace {

using testing::leaf;

TEST(PostAccumulateHook, RunsOnceAfterEveryUseHasContributed) {
  Tensor x = leaf({1, 2}, Shape{2});
  std::vector<std::vector<float>> seen;
  x.set_post_accumulate_grad_hook(
      [&](const Tensor& t) { seen.push_back(t.grad().to_vector<float>()); });
  sum(x * x + x * 3.0).backward();  // x used three times
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0], (std::vector<float>{5, 7}));
  x.set_post_accumulate_grad_hook({});
  sum(x).backward();
  EXPECT_EQ(seen.size(), 1u);
  Tensor y = Tensor::from_vector<float>({1}, Shape{1});
  EXPECT_THROW(y.set_post_accumulate_grad_hook([](const Tensor&) {}), ValueError);
}

// The other ranks, as one more rank that adds `other` to every element of every sum; records when
// the sums start.
class OneMoreRank final : public dist::Communicator {
 public:
  explicit OneMoreRank(float other) : other_(other) {}
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_size() const override { return 2; }
  std::string name() const override { return "test"; }
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  std::vector<std::string> allgather(const std::string& s) override { return {s, s}; }
  void start_allreduce_sum(float* data, int64_t n) override {
    started.push_back(n);
    pending_.push_back({data, n});
  }
  void progress() override {}
  void wait_all() override {
    for (auto [p, n] : pending_)
      for (int64_t i = 0; i < n; ++i) p[i] += other_;
    pending_.clear();
  }
  [[noreturn]] void abort(int) override { std::abort(); }
  std::vector<int64_t> started;

 private:
  float other_;
  std::vector<std::pair<float*, int64_t>> pending_;
};

TEST(GradientReducer, StartsBucketsInReverseOrderWhileBackwardRuns) {
  // Three parameters used in a chain: backward finishes c, then b, then a.
  Tensor a = leaf({1, 2, 3, 4}, Shape{4}), b = leaf({1, 1, 1, 1}, Shape{4}),
         c = leaf({2}, Shape{1});
  OneMoreRank comm(0.0f);
  // 5 floats (20 bytes) per bucket: {c, b} then {a}.
  dist::GradientReducer reducer(comm, {a, b, c}, 20);
  ASSERT_EQ(reducer.buckets(), 2);
  size_t started_in_backward = 0;
  // A hook of the last parameter backward reaches sees the first bucket already started.
  Tensor loss = sum((a * b) * c);
  reducer.prepare();
  loss.backward();
  started_in_backward = comm.started.size();
  EXPECT_EQ(started_in_backward, 2u);
  EXPECT_EQ(comm.started, (std::vector<int64_t>{5 + 2, 4 + 1}));  // gradients + one flag each
  reducer.finish();
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  EXPECT_EQ(c.grad().to_vector<float>(), (std::vector<float>{10}));
}

TEST(GradientReducer, SumsOverRanksAndKeepsNoGradientWhereNoRankHadOne) {
  Tensor used = leaf({1, 2}, Shape{2}), unused = leaf({5}, Shape{1});
  {
    OneMoreRank alone(0.0f);  // the other rank contributes zeros and no gradients
    dist::GradientReducer reducer(alone, {used, unused});
    reducer.prepare();
    sum(used * 3.0).backward();
    reducer.finish();
    EXPECT_EQ(used.grad().to_vector<float>(), (std::vector<float>{3, 3}));
    EXPECT_FALSE(unused.grad().defined());  // as in one process: the optimizer skips it
  }
  used.zero_grad();
  {
    OneMoreRank other(1.0f);  // the other rank has gradient 1 everywhere
    dist::GradientReducer reducer(other, {used, unused});
    reducer.prepare();
    sum(used * 3.0).backward();
    reducer.finish();
    EXPECT_EQ(used.grad().to_vector<float>(), (std::vector<float>{4, 4}));
    ASSERT_TRUE(unused.grad().defined());
    EXPECT_EQ(unused.grad().to_vector<float>(), (std::vector<float>{1}));
    // A rank with no examples in a batch runs no backward at all and still takes part.
    used.zero_grad(), unused.zero_grad();
    reducer.prepare();
    reducer.finish();
    EXPECT_EQ(used.grad().to_vector<float>(), (std::vector<float>{1, 1}));
  }
}

TEST(BatchShare, RanksTakeDisjointInterleavedSharesOfEveryBatch) {
  const std::vector<int64_t> batch = {7, 3, 9, 1, 4};
  EXPECT_EQ(train::batch_share(batch, 0, 2), (std::vector<int64_t>{7, 9, 4}));
  EXPECT_EQ(train::batch_share(batch, 1, 2), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(train::batch_share(batch, 0, 1), batch);
  EXPECT_TRUE(train::batch_share({5}, 1, 2).empty());
}

TEST(CrossEntropyDivisor, IsWhatTheMeanDividesBy) {
  const Tensor target = Tensor::from_vector<int64_t>({0, 2, -100, 1, 2}, Shape{5});
  EXPECT_EQ(cross_entropy_divisor(target), 4.0);
  CrossEntropyOptions o;
  o.weight = Tensor::from_vector<float>({0.5f, 1.0f, 2.0f}, Shape{3});
  EXPECT_DOUBLE_EQ(cross_entropy_divisor(target, o), 0.5 + 2 + 1 + 2);
  // sum / divisor is the mean cross_entropy computes.
  const Tensor logits =
      Tensor::from_vector<float>({1, 2, 3, 0, 1, 0, 2, 2, 2, -1, 0, 1, 3, 1, 0}, Shape{5, 3});
  CrossEntropyOptions sum_o = o;
  sum_o.reduction = Reduction::sum;
  EXPECT_NEAR(cross_entropy(logits, target, o).item<float>(),
              cross_entropy(logits, target, sum_o).item<float>() / cross_entropy_divisor(target, o),
              1e-6);
}

}  // namespace
}  // namespace gaze

namespace gaze {
namespace {

// RFC 3720's CRC-32C check values (TensorBoard's TFRecord framing uses this CRC).
TEST(TensorBoard, Crc32cMatchesTheStandardCheckValues) {
  EXPECT_EQ(train::crc32c("123456789", 9), 0xE3069283u);
  const std::vector<unsigned char> zeros(32, 0), ones(32, 0xFF);
  EXPECT_EQ(train::crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(train::crc32c(ones.data(), ones.size()), 0x62A8AB43u);
}

}  // namespace
}  // namespace gaze
