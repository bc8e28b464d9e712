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

struct sigaction g_saved_int {
}, g_saved_term{};

void install(int sig, struct sigaction* saved) {
  struct sigaction a {};
  a.sa_handler = on_signal;
  sigemptyset(&a.sa_mask);
  // No SA_RESTART: a write blocked on a full pipe (a log nobody reads any more: mpirun stops
  // forwarding its ranks' output once it is shutting down) returns, and the loop gets to save.
  a.sa_flags = 0;
  sigaction(sig, &a, saved);
}

}  // namespace

InterruptGuard::InterruptGuard() {
  g_interrupted = 0;
  install(SIGINT, &g_saved_int);
  install(SIGTERM, &g_saved_term);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &g_saved_int, nullptr);
  sigaction(SIGTERM, &g_saved_term, nullptr);
}

bool InterruptGuard::requested() {
  return g_interrupted != 0;
}

}  // namespace gaze::train
