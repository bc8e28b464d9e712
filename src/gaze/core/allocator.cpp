#include "gaze/core/allocator.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "gaze/core/error.h"

namespace gaze::allocator {
namespace {

// Size classes: multiples of 64 B up to 4 KiB, then four classes per power of two (at most 25%
// slack), so shapes that vary slightly between batches still hit the cache.
size_t size_class(size_t n) {
  if (n <= 4096)
    return std::max<size_t>(kAlignment, (n + kAlignment - 1) / kAlignment * kAlignment);
  const size_t top = std::bit_floor(n - 1);  // n in (top, 2*top]
  const size_t step = top / 4;
  return (n + step - 1) / step * step;
}

size_t default_cache_limit() {
  if (const char* env = std::getenv("GAZE_ALLOC_CACHE_MB")) {
    try {
      return static_cast<size_t>(std::stoull(env)) << 20;
    } catch (...) {
    }
  }
  return size_t{4} << 30;
}

class CachingAllocator {
 public:
  void* allocate(size_t nbytes) {
    const size_t cls = size_class(nbytes);
    {
      std::lock_guard lock(mu_);
      auto it = free_.find(cls);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        stats_.bytes_cached -= cls;
        ++stats_.cache_hits;
        note_in_use(cls);
        return p;
      }
      ++stats_.system_allocs;
      note_in_use(cls);
    }
    void* p = std::aligned_alloc(kAlignment, cls);
    if (!p) {
      // Give the cache back and try once more before reporting.
      empty_cache();
      p = std::aligned_alloc(kAlignment, cls);
    }
    if (!p) {
      std::lock_guard lock(mu_);
      stats_.bytes_in_use -= cls;
      throw Error(fmt::format("out of memory: could not allocate {} bytes for a tensor", nbytes));
    }
    return p;
  }

  void deallocate(void* p, size_t nbytes) {
    const size_t cls = size_class(nbytes);
    std::lock_guard lock(mu_);
    stats_.bytes_in_use -= cls;
    if (stats_.bytes_cached + cls > limit_) {
      ++stats_.system_frees;
      std::free(p);
      return;
    }
    free_[cls].push_back(p);
    stats_.bytes_cached += cls;
  }

  void empty_cache() {
    std::lock_guard lock(mu_);
    for (auto& [cls, blocks] : free_) {
      for (void* p : blocks) std::free(p);
      stats_.system_frees += blocks.size();
    }
    free_.clear();
    stats_.bytes_cached = 0;
  }

  AllocatorStats stats() {
    std::lock_guard lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mu_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
  }
  void set_limit(size_t bytes) {
    {
      std::lock_guard lock(mu_);
      limit_ = bytes;
      if (stats_.bytes_cached <= limit_) return;
    }
    empty_cache();
  }

 private:
  void note_in_use(size_t cls) {
    stats_.bytes_in_use += cls;
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  }

  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  AllocatorStats stats_;
  size_t limit_ = default_cache_limit();
};

// Deliberately never destroyed: tensors owned by other static objects (e.g. Python module state)
// may be released after this translation unit's statics are gone.
CachingAllocator& instance() {
  alignas(CachingAllocator) static unsigned char buf[sizeof(CachingAllocator)];
  static CachingAllocator* a = ::new (buf) CachingAllocator();
  return *a;
}

}  // namespace

void* allocate(size_t nbytes) {
  return instance().allocate(nbytes);
}
void deallocate(void* p, size_t nbytes) {
  instance().deallocate(p, nbytes);
}
AllocatorStats stats() {
  return instance().stats();
}
void reset_peak() {
  instance().reset_peak();
}
void empty_cache() {
  instance().empty_cache();
}
void set_cache_limit(size_t bytes) {
  instance().set_limit(bytes);
}

}  // namespace gaze::allocator
