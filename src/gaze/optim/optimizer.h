// Optimizers with PyTorch's semantics (torch.optim.SGD / Adam / AdamW, single-tensor updates,
// float32 parameters), gradient clipping by global norm, and state for exact resume.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/named_tensors.h"

namespace gaze::optim {

class Optimizer {
 public:
  Optimizer(std::string name, std::vector<Tensor> params, double lr);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter that has a gradient (others are skipped, as torch).
  void step();
  // Drops the gradients (torch's zero_grad(set_to_none=True)).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  // Per-parameter multipliers of the learning rate (torch's parameter groups, e.g. a lower rate
  // for a pretrained backbone); all 1 unless set. The schedule scales every rate alike.
  void set_lr_scales(std::vector<double> scales);
  // The learning rate of parameter i.
  double lr(size_t i) const { return scales_.empty() ? lr_ : lr_ * scales_[i]; }
  int64_t steps() const { return steps_; }
  // How many updates parameter i has received (torch counts per parameter: skipped ones don't
  // count).
  int64_t param_steps(size_t i) const { return param_steps_[i]; }
  const std::vector<Tensor>& params() const { return params_; }
  const std::string& name() const { return name_; }

  // The optimizer's tensors ("<kind>.<param index>", plus "param_steps" int64 [n]) and its step
  // count, for checkpoints.
  NamedTensors state_tensors() const;
  void load_state(const NamedTensors& tensors, int64_t steps);

 protected:
  virtual void update(size_t i, Tensor& p, const Tensor& g) = 0;
  // The state tensor `kind` of parameter i, created (zeros) on first use.
  Tensor& state(const std::string& kind, size_t i);
  bool has_state(const std::string& kind, size_t i) const;

 private:
  std::string name_;
  std::vector<Tensor> params_;
  double lr_;
  std::vector<double> scales_;
  int64_t steps_ = 0;
  std::vector<int64_t> param_steps_;
  std::vector<std::pair<std::string, Tensor>> state_;  // "<kind>.<i>"
};

struct SgdOptions {
  double lr = 1e-3, momentum = 0.0, dampening = 0.0, weight_decay = 0.0;
  bool nesterov = false;
};
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, const SgdOptions& options);
  SgdOptions options;

 protected:
  void update(size_t i, Tensor& p, const Tensor& g) override;
};

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.0;
};
// Adam: weight decay as an L2 term in the gradient. AdamW: decoupled decay (default 0.01, as
// torch).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, const AdamOptions& options, bool decoupled_weight_decay = false);
  AdamOptions options;
  bool decoupled;

 protected:
  void update(size_t i, Tensor& p, const Tensor& g) override;
};
class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> params, AdamOptions options);
};
AdamOptions adamw_defaults();  // weight_decay 0.01

// Scales the gradients so that their global L2 norm is at most max_norm (torch's clip_grad_norm_:
// coefficient max_norm / (norm + 1e-6), clamped to 1). Returns the norm before clipping.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm);

}  // namespace gaze::optim
