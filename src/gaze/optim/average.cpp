#include "gaze/optim/average.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/kernels/optim.h"

namespace gaze::optim {

ExponentialAverage::ExponentialAverage(std::vector<Tensor> params, double decay)
    : params_(std::move(params)), decay_(decay) {
  GAZE_CHECK(decay >= 0 && decay < 1, ValueError,
             "the weight average's decay must be in [0, 1), got {}", decay);
  for (size_t i = 0; i < params_.size(); ++i) {
    GAZE_CHECK(params_[i].dtype() == DType::f32, ValueError,
               "weight average: parameter {} must be a float32 tensor", i);
    avg_.push_back(params_[i].clone_data());
  }
}

void ExponentialAverage::update() {
  GAZE_CHECK(!swapped_, StateError, "the weight average cannot be updated while it is swapped in");
  ++updates_;
  const double n = static_cast<double>(updates_ - 1);
  const double d = std::min(decay_, (1 + n) / (10 + n));
  const auto w = static_cast<float>(1 - d);
  for (size_t i = 0; i < params_.size(); ++i)
    kernels::lerp_update(avg_[i].data<float>(), params_[i].data<float>(), params_[i].numel(), w);
}

void ExponentialAverage::swap() {
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    float* p = params_[i].data<float>();
    float* a = avg_[i].data<float>();
    std::swap_ranges(p, p + params_[i].numel(), a);
    params_[i].storage()->bump_version();  // derived copies (reduced precision) are stale now
  }
  swapped_ = !swapped_;
}

NamedTensors ExponentialAverage::state_tensors() const {
  NamedTensors out;
  for (size_t i = 0; i < avg_.size(); ++i) out.emplace_back(std::to_string(i), avg_[i]);
  return out;
}

void ExponentialAverage::load_state(const NamedTensors& tensors, int64_t updates, bool swapped) {
  GAZE_CHECK(updates >= 0, ValueError, "weight average: invalid update count {}", updates);
  GAZE_CHECK(tensors.size() == params_.size(), ValueError,
             "weight average: the checkpoint holds {} tensors for {} trained parameters",
             tensors.size(), params_.size());
  std::vector<Tensor> fresh(params_.size());
  for (const auto& [k, v] : tensors) {
    size_t i = 0, used = 0;
    try {
      i = std::stoul(k, &used);
    } catch (...) {
      used = 0;
    }
    GAZE_CHECK(used == k.size() && i < params_.size() && !fresh[i].defined(), ValueError,
               "weight average: unexpected tensor '{}' (expected 0..{}, once each)", k,
               params_.size() - 1);
    GAZE_CHECK(v.shape() == params_[i].shape() && v.dtype() == DType::f32, ValueError,
               "weight average: tensor '{}' is {} {}, expected float32 {} like parameter {}", k,
               dtype_name(v.dtype()), v.shape_str(), params_[i].shape_str(), i);
    fresh[i] = v.clone_data();
  }
  avg_ = std::move(fresh);
  updates_ = updates;
  swapped_ = swapped;
}

}  // namespace gaze::optim
