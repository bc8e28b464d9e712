// Fused optimizer updates over raw buffers: one pass per parameter reads the gradient and the state
// and writes the parameter and the new state (PyTorch's update equations and order of operations).
#pragma once

#include <cstdint>

namespace gaze::kernels {

// Coefficients arrive pre-computed in double and rounded once (as torch's Python-float arithmetic):
// 1 - 0.999f in float would be off by 1e-5 relative.
struct AdamStep {
  float lr, beta1, beta2, one_minus_beta1, one_minus_beta2, eps, weight_decay;
  float bias_correction1, bias_correction2;  // 1 - beta^step
  float decay;                               // AdamW: 1 - lr * weight_decay
  bool decoupled;                            // AdamW: p *= 1 - lr * wd; Adam: g += wd * p
};
void adam_update(float* p, const float* g, float* exp_avg, float* exp_avg_sq, int64_t n,
                 const AdamStep& s);

struct SgdStep {
  float lr, momentum, one_minus_dampening, weight_decay;
  bool nesterov, first;  // first: the momentum buffer starts as the gradient
};
void sgd_update(float* p, const float* g, float* buf, int64_t n, const SgdStep& s);

// avg += w * (p - avg): torch's lerp_, the update of an exponential moving average of the weights
// (w = 1 - decay).
void lerp_update(float* avg, const float* p, int64_t n, float w);

// sum of squares, accumulated in double (the global norm of many tensors must not lose the small
// ones).
double sum_squares(const float* x, int64_t n);

}  // namespace gaze::kernels
