// An exponential moving average of the trained weights (torch.optim.swa_utils.AveragedModel with an
// EMA update, TensorFlow's ExponentialMovingAverage with num_updates): validated and saved in place
// of the last weights.
#pragma once

#include <vector>

#include "gaze/core/named_tensors.h"
#include "gaze/core/tensor.h"

namespace gaze::optim {

// avg_i <- avg_i + (1 - d) (p_i - avg_i) after every optimizer step, with d = min(decay, (1 + n) /
// (10 + n)) at the n-th update, so that the first updates, when the average would still be
// dominated by the initial weights, move it further (TensorFlow's num_updates rule).
class ExponentialAverage {
 public:
  // params: the trained tensors (float32); the average starts as their values.
  ExponentialAverage(std::vector<Tensor> params, double decay);

  void update();
  // Exchanges the parameters' values with the average's; calling it again exchanges them back.
  // Between the two calls the model computes (validates, is saved) with the average.
  void swap();
  bool swapped() const { return swapped_; }

  int64_t updates() const { return updates_; }
  // The tensors a checkpoint keeps ("<i>" per parameter): the values that are not in the parameters
  // at that moment (the average, or while swapped the training weights). Loading them back needs to
  // know which it was.
  NamedTensors state_tensors() const;
  void load_state(const NamedTensors& tensors, int64_t updates, bool swapped);

 private:
  std::vector<Tensor> params_, avg_;
  double decay_;
  int64_t updates_ = 0;
  bool swapped_ = false;
};

// Swaps an average in for a scope (nothing when null).
class AverageScope {
 public:
  explicit AverageScope(ExponentialAverage* avg) : avg_(avg) {
    if (avg_) avg_->swap();
  }
  ~AverageScope() {
    if (avg_) avg_->swap();
  }
  AverageScope(const AverageScope&) = delete;
  AverageScope& operator=(const AverageScope&) = delete;

 private:
  ExponentialAverage* avg_;
};

}  // namespace gaze::optim
