// Grad mode: whether ops record backward nodes. NoGradGuard turns recording off in a scope (per
// thread), so inference builds no nodes and saves no tensors. In core/ because tensors consult it
// (in-place writes to leaves that require grad); autograd/ builds on it.
#pragma once

namespace gaze::autograd {

bool grad_mode_enabled();
void set_grad_mode(bool enabled);

class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_mode_enabled()) { set_grad_mode(false); }
  ~NoGradGuard() { set_grad_mode(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace gaze::autograd

namespace gaze {
using autograd::NoGradGuard;
}
