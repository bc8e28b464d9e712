// Timing rules the benchmarks share with their torch counterparts: the fastest window of calls,
// kept in counter "best_s", which compare_torch.py compares instead of Google Benchmark's mean.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>

namespace gaze::bench {

// Calls f once per iteration and sets counter "best_s" to the best mean time per call over
// consecutive windows of at least `window` seconds of calls (torch_ops.best_time's rule); window 0
// makes each call its own window, the fastest call. A last window shorter than `window` counts
// only when no window completed. Google Benchmark's own Time column stays the mean.
template <class F>
void time_windows(benchmark::State& state, double window, F&& f) {
  using Clock = std::chrono::steady_clock;
  double best = std::numeric_limits<double>::infinity(), elapsed = 0;
  int64_t calls = 0;
  for (auto _ : state) {
    const auto t0 = Clock::now();
    f();
    elapsed += std::chrono::duration<double>(Clock::now() - t0).count();
    ++calls;
    if (elapsed >= window) {
      best = std::min(best, elapsed / static_cast<double>(calls));
      elapsed = 0, calls = 0;
    }
  }
  if (calls > 0 && best == std::numeric_limits<double>::infinity())
    best = elapsed / static_cast<double>(calls);
  state.counters["best_s"] = best;
}

}  // namespace gaze::bench
