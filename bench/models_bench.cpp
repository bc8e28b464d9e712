// The models part of `make bench`: a TransformerClassifier (vocab 8000, d_model 256, 4 heads, ffn
// 1024, 4 layers, GELU, pre-norm, mean pooling) trained with AdamW on batches of 32 x 128 tokens,
// and run for inference at 32 x 128 and 1 x 128. compare_torch.py runs the same model in torch.
#include <benchmark/benchmark.h>

#include "gaze/core/autocast.h"
#include "gaze/core/grad_mode.h"
#include "gaze/core/rng.h"
#include "gaze/models/transformer_models.h"
#include "gaze/nn/precision.h"
#include "gaze/ops/ops.h"
#include "gaze/optim/optimizer.h"
#include "timing.h"

namespace {

using gaze::Shape;
using gaze::Tensor;
using gaze::bench::time_windows;

gaze::models::TransformerClassifier make_classifier() {
  gaze::manual_seed(0);
  gaze::models::ClassifierConfig c;
  c.vocab_size = 8000, c.d_model = 256, c.nhead = 4, c.dim_feedforward = 1024, c.num_layers = 4;
  c.num_classes = 2, c.dropout = 0.1;
  return gaze::models::TransformerClassifier(c);
}

Tensor random_tokens(int64_t batch, int64_t len) {
  gaze::Generator g(7);
  Tensor u = gaze::rand(Shape{batch, len}, gaze::DType::f32, &g);
  Tensor t = Tensor::empty(Shape{batch, len}, gaze::DType::i64);
  for (int64_t i = 0; i < batch * len; ++i)
    t.data<int64_t>()[i] = 1 + static_cast<int64_t>(u.data<float>()[i] * 7998);
  return t;
}

void count_tokens(benchmark::State& state, int64_t tokens) {
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(tokens),
                                                  benchmark::Counter::kIsIterationInvariantRate);
}

// One training step: forward (dropout 0.1), cross-entropy, backward, AdamW update; range 2: 1 =
// mixed precision (train.precision bf16: the linear layers' products in bf16, core/autocast.h).
void BM_ClassifierTrain(benchmark::State& state) {
  const int64_t batch = state.range(0), len = state.range(1);
  const gaze::Precision precision = state.range(2) ? gaze::Precision::bf16 : gaze::Precision::fp32;
  if (gaze::nn::usable_precision(precision) != precision) {
    state.SkipWithError("this CPU lacks the instructions");
    return;
  }
  auto model = make_classifier();
  model.train();
  gaze::optim::AdamW opt(model.parameters(),
                         gaze::optim::AdamOptions{1e-4, 0.9, 0.999, 1e-8, 0.01});
  const Tensor tokens = random_tokens(batch, len);
  Tensor labels = Tensor::empty(Shape{batch}, gaze::DType::i64);
  for (int64_t b = 0; b < batch; ++b) labels.data<int64_t>()[b] = b % 2;
  auto step = [&] {
    opt.zero_grad();
    Tensor loss;
    {
      gaze::AutocastGuard autocast(precision);
      loss = gaze::cross_entropy(model.forward(tokens, Tensor()), labels);
    }
    loss.backward();
    opt.step();
  };
  step();  // warm-up, as the torch side: the first step faults in every activation buffer
  // torch: best_time(train_step, 3.0, repeats=3). A mean over the whole run, against torch's best
  // window, counted every slow spell of a shared machine against gaze alone.
  time_windows(state, 1.0, step);
  count_tokens(state, batch * len);
}

void BM_ClassifierInfer(benchmark::State& state) {
  const int64_t batch = state.range(0), len = state.range(1);
  auto model = make_classifier();
  model.eval();
  const Tensor tokens = random_tokens(batch, len);
  gaze::NoGradGuard no_grad;
  benchmark::DoNotOptimize(model.forward(tokens, Tensor()).raw_data());  // warm-up, as torch's
  time_windows(state, 1.0 / 3, [&] {  // torch: best_time(..., 1.0, repeats=3)
    benchmark::DoNotOptimize(model.forward(tokens, Tensor()).raw_data());
  });
  count_tokens(state, batch * len);
}

// The same at a reduced precision (range 2: 1 = bf16, 2 = int8; nn/precision.h), skipped on a CPU
// without the instructions.
void BM_ClassifierInferLowp(benchmark::State& state) {
  const int64_t batch = state.range(0), len = state.range(1);
  const auto precision = static_cast<gaze::Precision>(state.range(2));
  if (gaze::nn::usable_precision(precision) != precision) {
    state.SkipWithError("this CPU lacks the instructions");
    return;
  }
  auto model = make_classifier();
  model.eval();
  gaze::nn::set_precision(model, precision);
  const Tensor tokens = random_tokens(batch, len);
  gaze::NoGradGuard no_grad;
  benchmark::DoNotOptimize(model.forward(tokens, Tensor()).raw_data());  // warm-up, as torch's
  time_windows(state, 1.0 / 3, [&] {  // torch: best_time(..., 1.0, repeats=3)
    benchmark::DoNotOptimize(model.forward(tokens, Tensor()).raw_data());
  });
  count_tokens(state, batch * len);
}

}  // namespace

BENCHMARK(BM_ClassifierTrain)
    ->ArgsProduct({{32}, {128}, {0, 1}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(3.0);
BENCHMARK(BM_ClassifierInfer)->Args({32, 128})->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_ClassifierInfer)->Args({1, 128})->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_ClassifierInferLowp)
    ->ArgsProduct({{32}, {128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);
BENCHMARK(BM_ClassifierInferLowp)
    ->ArgsProduct({{1}, {128}, {1, 2}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);
