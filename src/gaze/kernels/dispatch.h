// Picks the float32 or float64 entry point of a kernel exported for both (HWY_EXPORT cannot export
// templates, so each SIMD kernel is exported as a ...F32 / ...F64 pair).
#pragma once

namespace gaze::kernels {

template <typename T, typename F32, typename F64>
auto pick(F32 f32, F64 f64) {
  if constexpr (sizeof(T) == 4) {
    return f32;
  } else {
    return f64;
  }
}

}  // namespace gaze::kernels
