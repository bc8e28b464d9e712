// Caching allocator for tensor storage: 64-byte aligned blocks, kept in size-class free lists after
// release, so a training step that repeats the same shapes reuses memory instead of calling malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gaze {

struct AllocatorStats {
  uint64_t system_allocs = 0;    // calls that reached the system allocator
  uint64_t system_frees = 0;     // blocks returned to the system
  uint64_t cache_hits = 0;       // allocations served from the cache
  size_t bytes_in_use = 0;       // live tensor storage (rounded to size classes)
  size_t peak_bytes_in_use = 0;  // high-water mark since the last reset_peak()
  size_t bytes_cached = 0;       // free blocks held for reuse
};

namespace allocator {

constexpr size_t kAlignment = 64;

// Returns a block of at least `nbytes` (never null; nbytes == 0 gives a valid unique block): a
// cached block of its size class, else one of a class at most half as large again (twice as large
// from 1 MiB), else a new one. New blocks from 2 MiB start on a 2 MiB boundary, their whole 2 MiB
// pages advised as transparent huge pages; those from 128 KiB are carved from such pages.
void* allocate(size_t nbytes);
// Returns a block obtained from allocate(nbytes) with the same nbytes.
void deallocate(void* p, size_t nbytes);

AllocatorStats stats();
void reset_peak();
// Gives every cached block back to the system.
void empty_cache();
// A fixed upper bound on cached bytes (0: cache nothing). When a freed block does not fit, the
// least recently cached blocks are freed to make room. Without one (the default, unless
// GAZE_ALLOC_CACHE_MB is set) the bound is the peak of live tensor storage so far, at least
// 256 MiB: about one training step's working set.
void set_cache_limit(size_t bytes);
// Back to the default bound that follows the working set.
void reset_cache_limit();

}  // namespace allocator
}  // namespace gaze
