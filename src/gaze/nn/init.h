// Parameter initialisation with PyTorch's formulas (torch.nn.init), drawing from gaze's init
// generator (see manual_seed). Each fills the tensor in place and returns it.
#pragma once

#include "gaze/core/rng.h"
#include "gaze/core/tensor.h"

namespace gaze::nn::init {

// fan_in / fan_out of a weight as torch computes them (dims 0 and 1, times the receptive field).
std::pair<int64_t, int64_t> fans(const Tensor& t);

// While one is alive on this thread, the random fills below (uniform_, normal_ and those built on
// them) leave tensors as they are and draw nothing: a model built only to receive a checkpoint's
// weights (models::load_model, whose loading is strict) skips numbers the load overwrites.
class SkipRandomInitGuard {
 public:
  SkipRandomInitGuard();
  ~SkipRandomInitGuard();
  SkipRandomInitGuard(const SkipRandomInitGuard&) = delete;
  SkipRandomInitGuard& operator=(const SkipRandomInitGuard&) = delete;

 private:
  bool previous_;
};
// Whether a SkipRandomInitGuard is alive on this thread.
bool random_init_skipped();

Tensor uniform_(Tensor t, double a, double b, Generator* gen = nullptr);
Tensor normal_(Tensor t, double mean, double std, Generator* gen = nullptr);
Tensor constant_(Tensor t, double value);
Tensor zeros_(Tensor t);
Tensor ones_(Tensor t);
// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
Tensor xavier_uniform_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
Tensor xavier_normal_(Tensor t, double gain = 1.0, Generator* gen = nullptr);
// U(-bound, bound), bound = sqrt(3) * gain / sqrt(fan_in), gain = sqrt(2 / (1 + a^2)) (leaky_relu).
Tensor kaiming_uniform_(Tensor t, double a = 0.0, Generator* gen = nullptr);

}  // namespace gaze::nn::init
