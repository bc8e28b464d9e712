// Autocast: the precision matrix products of float32 linear layers run in, per thread
// (torch.autocast on the CPU with bfloat16). AutocastGuard sets it for a scope: mixed-precision
// training.
#pragma once

#include "gaze/core/precision.h"

namespace gaze {

// fp32 (the default) or bf16: under bf16, linear() rounds its input and weight to bfloat16 and
// multiplies them with float32 accumulation and a float32 result, forward and backward (its
// gradients are float32; the weights stay float32 masters). int8 is not a training precision.
Precision autocast_precision();
void set_autocast_precision(Precision p);

class AutocastGuard {
 public:
  explicit AutocastGuard(Precision p) : prev_(autocast_precision()) { set_autocast_precision(p); }
  ~AutocastGuard() { set_autocast_precision(prev_); }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  Precision prev_;
};

}  // namespace gaze
