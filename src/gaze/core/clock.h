// Elapsed wall time for logs, metrics and throughput lines: seconds on the steady clock, which
// never jumps with the system time.
#pragma once

#include <chrono>

namespace gaze {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

}  // namespace gaze
