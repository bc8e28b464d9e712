#include "gaze/core/threads.h"

#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include "gaze/core/error.h"

namespace gaze {
namespace {

int g_threads = 0;  // 0 = not yet initialised; an explicit setting, like PyTorch's set_num_threads
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
  return g_threads;
}

void set_num_threads(int n) {
  GAZE_CHECK(n >= 1 && n <= kMaxThreads, ValueError,
             "set_num_threads: expected 1 <= n <= {}, got {}", kMaxThreads, n);
  init();
  g_threads = n;
  omp_set_num_threads(n);
}

}  // namespace gaze
