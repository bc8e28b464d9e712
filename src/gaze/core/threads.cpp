#include "gaze/core/threads.h"

#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"

namespace gaze {
namespace {

int g_threads = 0;  // 0 = not yet initialised; an explicit setting, like PyTorch's set_num_threads
thread_local int t_applied = 0;  // the g_threads this thread last gave OpenMP (see num_threads)
std::once_flag g_init;

int initial_threads() {
  if (const char* env = std::getenv("GAZE_NUM_THREADS"); env && *env) {
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    GAZE_CHECK(*end == '\0' && v >= 1 && v <= kMaxThreads, ValueError,
               "GAZE_NUM_THREADS='{}': expected a whole number of threads from 1 to {}", env,
               kMaxThreads);
    return static_cast<int>(v);
  }
  return std::max(1, omp_get_num_procs());
}

void init() {
  std::call_once(g_init, [] {
    if (g_threads == 0) g_threads = initial_threads();
    // oneDNN reads the OpenMP ICV; keep it equal to gaze's setting so both use one pool size.
    omp_set_num_threads(g_threads);
  });
}

}  // namespace

int num_threads() {
  init();
  // OpenMP's thread count is a setting of each thread, and oneDNN fixes a primitive's threads from
  // the setting of the thread that makes it: a thread other than the one that called
  // set_num_threads (a server's worker, a std::thread) starts at OpenMP's default. Each thread
  // that calls in takes gaze's setting before it runs anything.
  if (t_applied != g_threads && !omp_in_parallel()) {
    omp_set_num_threads(g_threads);
    t_applied = g_threads;
  }
  return g_threads;
}

void set_num_threads(int n) {
  GAZE_CHECK(n >= 1 && n <= kMaxThreads, ValueError,
             "set_num_threads: expected 1 <= n <= {}, got {}", kMaxThreads, n);
  init();
  g_threads = n;
  omp_set_num_threads(n);
  t_applied = n;
}

void parallel_tasks(int64_t n, const std::function<void(int64_t)>& task) {
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), n));
  if (nt <= 1 || omp_in_parallel()) {
    for (int64_t i = 0; i < n; ++i) task(i);
    return;
  }
  const bool grad = autograd::grad_mode_enabled();
  const Precision autocast = autocast_precision();
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
  for (int64_t i = 0; i < n; ++i) {
    if (failed.load(std::memory_order_relaxed)) continue;
    // The caller's modes, restored afterwards: the pool's threads outlive the call.
    const bool grad_was = autograd::grad_mode_enabled();
    const Precision autocast_was = autocast_precision();
    autograd::set_grad_mode(grad);
    set_autocast_precision(autocast);
    try {
      task(i);
    } catch (...) {
#pragma omp critical(gaze_parallel_tasks_error)
      if (!error) error = std::current_exception();
      failed.store(true, std::memory_order_relaxed);
    }
    autograd::set_grad_mode(grad_was);
    set_autocast_precision(autocast_was);
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace gaze
