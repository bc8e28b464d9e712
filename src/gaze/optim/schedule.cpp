#include "gaze/optim/schedule.h"

#include <cmath>
#include <numbers>

#include "gaze/core/error.h"

namespace gaze::optim {

ScheduleKind parse_schedule(std::string_view s) {
  return parse_enum<ScheduleKind>(s, "schedule");
}

double Schedule::factor(int64_t step) const {
  GAZE_CHECK(warmup_steps >= 0 && step >= 0, ValueError, "schedule: steps must be >= 0");
  if (kind == ScheduleKind::constant) return 1.0;
  const double s = static_cast<double>(step), w = static_cast<double>(warmup_steps);
  if (step < warmup_steps) return s / w;
  switch (kind) {
    case ScheduleKind::linear:
    case ScheduleKind::cosine: {
      GAZE_CHECK(total_steps > warmup_steps, ValueError,
                 "schedule: total_steps ({}) must exceed warmup_steps ({}) for a decaying schedule",
                 total_steps, warmup_steps);
      const double progress =
          std::min(1.0, (s - w) / static_cast<double>(total_steps - warmup_steps));
      const double shape = kind == ScheduleKind::linear
                               ? 1.0 - progress
                               : 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
      return min_lr_ratio + (1.0 - min_lr_ratio) * shape;
    }
    case ScheduleKind::inverse_sqrt:
      return warmup_steps == 0 ? 1.0 / std::sqrt(std::max(s, 1.0)) : std::sqrt(w / s);
    default:
      return 1.0;
  }
}

LRScheduler::LRScheduler(Optimizer& opt, const Schedule& schedule)
    : opt_(opt), schedule_(schedule), base_lr_(opt.lr()) {
  opt_.set_lr(base_lr_ * schedule_.factor(0));
}

void LRScheduler::step() {
  ++step_;
  opt_.set_lr(base_lr_ * schedule_.factor(step_));
}

void LRScheduler::set_last_step(int64_t step) {
  step_ = step;
  opt_.set_lr(base_lr_ * schedule_.factor(step_));
}

}  // namespace gaze::optim
