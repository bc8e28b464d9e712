#include "gaze/train/interrupt.h"

#include <csignal>

namespace gaze::train {
namespace {

// The one piece of process-wide mutable state in the trainer: a signal handler can only talk to
// the program through a flag of this type.
volatile std::sig_atomic_t g_interrupted = 0;

extern "C" void on_signal(int sig) {
  g_interrupted = 1;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process
}

struct Saved {
  void (*int_handler)(int);
  void (*term_handler)(int);
};
Saved g_saved{SIG_DFL, SIG_DFL};

}  // namespace

InterruptGuard::InterruptGuard() {
  g_interrupted = 0;
  g_saved.int_handler = std::signal(SIGINT, on_signal);
  g_saved.term_handler = std::signal(SIGTERM, on_signal);
}

InterruptGuard::~InterruptGuard() {
  std::signal(SIGINT, g_saved.int_handler);
  std::signal(SIGTERM, g_saved.term_handler);
}

bool InterruptGuard::requested() {
  return g_interrupted != 0;
}

}  // namespace gaze::train
