// One OpenMP thread pool for all of gaze (oneDNN runs on the same pool): its size comes from
// GAZE_NUM_THREADS, else the number of cores. parallel_for splits work statically, so results are
// identical from run to run at a given thread count.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <functional>

namespace gaze {

// The most threads gaze will start: libgomp crashes when asked for ~100,000, and more threads than
// this never help on one machine.
inline constexpr int kMaxThreads = 1024;

int num_threads();
// Sets the pool size (1 <= n <= kMaxThreads) for gaze and for the GEMM library; throws ValueError
// otherwise.
void set_num_threads(int n);

// Runs task(i) for each i in [0, n), each task whole on one thread of the pool: the free threads
// take the tasks in order of i (put the longest first), and the ops inside a task run
// single-threaded (no nested pools). For independent jobs whose own ops split poorly across
// threads, such as decoding separate batches: their results are what the tasks compute one after
// the other at one thread. Tasks see the caller's grad mode and autocast precision (both are per
// thread). The first exception a task throws is rethrown here once the running tasks end; the
// tasks not started by then are skipped. With fewer than 2 tasks or threads, or inside a parallel
// region, the tasks run in order on the calling thread.
void parallel_tasks(int64_t n, const std::function<void(int64_t)>& task);

// Calls f(lo, hi) on contiguous chunks of [begin, end), one chunk per thread. Runs inline when the
// range holds fewer than 2*grain items or when already inside a parallel region (no nested pools).
// The first exception a chunk throws is rethrown here once every chunk has ended (leaving the
// parallel region, it would end the process).
template <typename F>
void parallel_for(int64_t begin, int64_t end, int64_t grain, F&& f) {
  const int64_t n = end - begin;
  if (n <= 0) return;
  const int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(grain, 1));
  const int nt = static_cast<int>(std::min<int64_t>(num_threads(), max_chunks));
  if (nt <= 1 || omp_in_parallel()) {
    f(begin, end);
    return;
  }
  std::exception_ptr error;
  std::atomic<bool> failed{false};
#pragma omp parallel num_threads(nt)
  {
    const int t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t lo = begin + n * t / T, hi = begin + n * (t + 1) / T;
    if (lo < hi) try {
        f(lo, hi);
      } catch (...) {
        if (!failed.exchange(true)) error = std::current_exception();
      }
  }
  if (error) std::rethrow_exception(error);
}

// The team for_team should run `tasks` independent tasks on: the pool's size, no more threads than
// tasks, and 1 inside a parallel region (no nested pools).
inline int team_for(int64_t tasks) {
  if (omp_in_parallel()) return 1;
  return static_cast<int>(std::clamp<int64_t>(tasks, 1, num_threads()));
}

// Runs f(thread, i) for each i in [0, n) on a team of `team` threads that take chunks of `chunk`
// consecutive i as they free up (OpenMP's dynamic schedule), or in order on the calling thread
// (thread 0) when team <= 1. That case opens no OpenMP region: a region of one thread, nested in
// another or with if(false), still sets up a team and waits on futexes, 4 us a call on this VM,
// and a decoding step opened six. f must not throw: an exception cannot leave a region.
template <typename F>
void for_team(int team, int64_t n, int64_t chunk, F&& f) {
  if (team <= 1) {
    for (int64_t i = 0; i < n; ++i) f(0, i);
    return;
  }
  chunk = std::max<int64_t>(chunk, 1);
  std::atomic<int64_t> next{0};
#pragma omp parallel num_threads(team)
  {
    const int t = omp_get_thread_num();
    for (int64_t lo = next.fetch_add(chunk); lo < n; lo = next.fetch_add(chunk))
      for (int64_t i = lo; i < std::min(n, lo + chunk); ++i) f(t, i);
  }
}

}  // namespace gaze
