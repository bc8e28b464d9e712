// Learning-rate schedules as multipliers of the base rate (torch's LambdaLR): constant, linear
// warm-up then linear or cosine decay, and inverse square root (Noam). LRScheduler applies one to
// an optimizer.
#pragma once

#include <string_view>

#include "gaze/core/enums.h"
#include "gaze/optim/optimizer.h"

namespace gaze::optim {

enum class ScheduleKind { constant, linear, cosine, inverse_sqrt };
GAZE_ENUM_NAMES(ScheduleKind, {ScheduleKind::constant, "constant"},
                {ScheduleKind::linear, "linear"}, {ScheduleKind::cosine, "cosine"},
                {ScheduleKind::inverse_sqrt, "inverse_sqrt"})
ScheduleKind parse_schedule(
    std::string_view name);  // "constant" | "linear" | "cosine" | "inverse_sqrt"

struct Schedule {
  ScheduleKind kind = ScheduleKind::constant;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;    // linear, cosine: the step where the decay ends
  double min_lr_ratio = 0.0;  // linear, cosine: the multiplier reached at total_steps

  // The multiplier at `step` (0 before the first update, as LambdaLR):
  //   warm-up (all kinds but constant): step / warmup_steps while step < warmup_steps
  //   linear:       decays linearly from 1 to min_lr_ratio at total_steps
  //   cosine:       min + (1 - min) * (1 + cos(pi * progress)) / 2
  //   inverse_sqrt: sqrt(warmup_steps / step) after the warm-up (1 at the end of it)
  double factor(int64_t step) const;
};

// torch.optim.lr_scheduler.LambdaLR: the optimizer's rate is base_lr * factor(step); step()
// advances.
class LRScheduler {
 public:
  LRScheduler(Optimizer& optimizer, const Schedule& schedule);
  void step();
  int64_t last_step() const { return step_; }
  void set_last_step(int64_t step);  // resume
  double base_lr() const { return base_lr_; }

 private:
  Optimizer& opt_;
  Schedule schedule_;
  double base_lr_;
  int64_t step_ = 0;
};

}  // namespace gaze::optim
