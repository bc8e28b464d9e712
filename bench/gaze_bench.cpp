// gaze's side of `make bench`: matmul GFLOP/s and softmax / layer_norm GB/s at the thread count
// given by GAZE_NUM_THREADS, plus the measured FMA peak. compare_torch.py runs this beside torch
// and prints the ratios; the figures are printed, never asserted.
#include <benchmark/benchmark.h>

#include "gaze/core/simd.h"
#include "gaze/core/threads.h"
#include "gaze/ops/ops.h"
#include "peak.h"

namespace {

using gaze::Shape;
using gaze::Tensor;

void BM_Matmul(benchmark::State& state) {
  const int64_t n = state.range(0);
  gaze::Generator g(1);
  const Tensor a = gaze::randn(Shape{n, n}, gaze::DType::f32, &g),
               b = gaze::randn(Shape{n, n}, gaze::DType::f32, &g);
  gaze::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(gaze::matmul(a, b).raw_data());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * n * n * n, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
}

// rows x cols float32, read once and written once: 8 bytes per element of traffic.
void BM_Softmax(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  gaze::Generator g(2);
  const Tensor x = gaze::randn(Shape{rows, cols}, gaze::DType::f32, &g);
  gaze::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(gaze::softmax(x, -1).raw_data());
  state.counters["GB/s"] =
      benchmark::Counter(8.0 * rows * cols, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
}

void BM_LayerNorm(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  gaze::Generator g(3);
  const Tensor x = gaze::randn(Shape{rows, cols}, gaze::DType::f32, &g);
  const Tensor w = gaze::randn(Shape{cols}, gaze::DType::f32, &g),
               b = gaze::randn(Shape{cols}, gaze::DType::f32, &g);
  gaze::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(gaze::layer_norm(x, {cols}, w, b).raw_data());
  state.counters["GB/s"] =
      benchmark::Counter(8.0 * rows * cols, benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::OneK::kIs1000);
}

void BM_FmaPeak(benchmark::State& state) {
  double gflops = 0;
  for (auto _ : state) gflops = gaze::bench::measure_fma_peak_gflops(gaze::num_threads());
  state.counters["GFLOP/s"] = gflops;
}

BENCHMARK(BM_FmaPeak)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Matmul)->Arg(1024)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Softmax)->Args({4096, 1024})->Unit(benchmark::kMillisecond)->MinTime(0.5);
BENCHMARK(BM_LayerNorm)->Args({4096, 1024})->Unit(benchmark::kMillisecond)->MinTime(0.5);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("gaze_threads", std::to_string(gaze::num_threads()));
  benchmark::AddCustomContext("gaze_simd", gaze::simd_target());
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
