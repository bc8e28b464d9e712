#include "gaze/core/grad_mode.h"

namespace gaze::autograd {
namespace {
thread_local bool t_grad_mode = true;
}
bool grad_mode_enabled() {
  return t_grad_mode;
}
void set_grad_mode(bool enabled) {
  t_grad_mode = enabled;
}
}  // namespace gaze::autograd
