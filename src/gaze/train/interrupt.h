// Ctrl-C during training: while an InterruptGuard lives, SIGINT and SIGTERM only raise a flag that
// the training loop polls, so it can save a resumable checkpoint and exit cleanly. A second signal
// gets the default action (the process ends), in case saving hangs. Blocking system calls the
// signal interrupts return (no SA_RESTART); gaze's file writes retry them.
#pragma once

namespace gaze::train {

class InterruptGuard {
 public:
  InterruptGuard();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;
  // True once a signal has arrived.
  static bool requested();
};

}  // namespace gaze::train
