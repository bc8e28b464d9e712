// The machine's measured fp32 FMA peak: the yardstick every benchmark figure is a fraction of.
#pragma once

namespace gaze::bench {

// GFLOP/s of independent fused multiply-adds on the best SIMD target, summed over `threads` threads
// running at once.
double measure_fma_peak_gflops(int threads);

}  // namespace gaze::bench
