#include "gaze/core/allocator.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cassert>
#include <cstdlib>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>
#include <unistd.h>

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

// An explicit bound from GAZE_ALLOC_CACHE_MB (0: cache nothing), or none: follow the working set
// (see limit()).
std::optional<size_t> env_cache_limit() {
  if (const char* env = std::getenv("GAZE_ALLOC_CACHE_MB")) {
    try {
      return static_cast<size_t>(std::stoull(env)) << 20;
    } catch (...) {
    }
  }
  return std::nullopt;
}

// The automatic bound: the peak of live tensor storage (what one training step needs again), at
// least 256 MiB. A fixed large bound let blocks of shapes no longer in use pile up (5.8 GB RSS
// when training the Bible model) while blocks of the current shapes were freed.
constexpr size_t kMinAutoLimit = size_t{256} << 20;
// From this size a cache miss may take a cached block up to twice the request (see allocate()).
constexpr size_t kLargeBlock = size_t{1} << 20;

// From this size a block is a mapping of its own that starts on a 2 MiB boundary, and its whole
// 2 MiB pages are offered to the kernel as transparent huge pages (madvise; the kernel's THP
// setting decides). Every 4 KiB page touched for the first time is a page fault, and on a virtual
// machine a fault cost 11 us: the KV caches of translating 200 verses took 36k faults, 22 % of the
// run. A huge page is one fault. Only whole 2 MiB pages inside the block are advised, so no memory
// beyond the request is used; and the block is mapped by gaze, not malloc, so the advice cannot
// reach the heap that malloc later hands out in small pieces.
constexpr size_t kHugePage = size_t{2} << 20;

size_t huge_mapping_size(size_t cls) {
  return (cls + kHugePage - 1) / kHugePage * kHugePage;
}

// n bytes (a multiple of 2 MiB) mapped from a 2 MiB boundary and advised as huge pages up to
// `advised` bytes; null if the system has no memory.
void* map_huge(size_t n, size_t advised) {
  void* raw =
      mmap(nullptr, n + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  // Keep the 2 MiB-aligned n bytes inside and give back what lies before and after them.
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePage - 1) / kHugePage * kHugePage;
  if (aligned > start) munmap(raw, aligned - start);
  if (const size_t after = start + n + kHugePage - (aligned + n); after > 0)
    munmap(reinterpret_cast<void*>(aligned + n), after);
  void* p = reinterpret_cast<void*>(aligned);
  madvise(p, advised / kHugePage * kHugePage, MADV_HUGEPAGE);  // a hint: failure is harmless
  return p;
}

// Blocks from 128 KiB up to 2 MiB are carved from slabs: mappings of gaze's own, advised as huge
// pages like the large blocks, each holding blocks of one class. glibc would give each such block
// a mapping of 4 KiB pages, and on this project's virtual machines those were slow to reach again
// once the rest of a training step had run: AdamW's update of a 1 MiB parameter took 1.35-2.0 ms
// on average, 0.21-0.32 ms in huge pages. (Below 128 KiB glibc serves blocks from its heap.) Under
// AddressSanitizer they stay with malloc, whose red zones catch a write past a block's end.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kSlabBlock = size_t{2} << 20;
#else
constexpr size_t kSlabBlock = size_t{128} << 10;
#endif

class Slabs {
 public:
  void* carve(size_t cls) {
    std::lock_guard lock(mu_);
    auto& open = open_[cls];
    if (open.empty()) {
      const size_t bytes = slab_bytes(cls);
      void* base = map_huge(bytes, bytes);
      if (!base) return nullptr;
      const uint32_t count = static_cast<uint32_t>(bytes / cls);
      Slab slab{bytes, {}};
      for (uint32_t i = count; i-- > 0;) slab.free.push_back(i);  // lowest address first
      const auto at = reinterpret_cast<uintptr_t>(base);
      slabs_.emplace(at, std::move(slab));
      open.insert(at);
    }
    // The lowest slab with room: later slabs then empty out and can be given back.
    const uintptr_t at = *open.begin();
    Slab& slab = slabs_.at(at);
    const uint32_t slot = slab.free.back();
    slab.free.pop_back();
    if (slab.free.empty()) open.erase(open.begin());
    return reinterpret_cast<void*>(at + slot * cls);
  }

  void release(void* p, size_t cls) {
    std::lock_guard lock(mu_);
    const auto addr = reinterpret_cast<uintptr_t>(p);
    auto it = slabs_.upper_bound(addr);
    assert(it != slabs_.begin());
    --it;
    Slab& slab = it->second;
    assert(addr < it->first + slab.bytes && (addr - it->first) % cls == 0);
    slab.free.push_back(static_cast<uint32_t>((addr - it->first) / cls));
    auto& open = open_[cls];
    if (slab.free.size() == slab.bytes / cls) {  // nothing left in it
      munmap(reinterpret_cast<void*>(it->first), slab.bytes);
      open.erase(it->first);
      slabs_.erase(it);
      return;
    }
    // Its memory goes back now; the address stays the slab's. Only whole pages inside the block:
    // with pages above 4 KiB (some arm64 and ppc64 kernels) a block of 160 KiB may start inside
    // one, and the kernel would round the range outwards into the neighbour.
    static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (addr + page - 1) / page * page, hi = (addr + cls) / page * page;
    if (hi > lo) madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
    open.insert(it->first);
  }

 private:
  struct Slab {
    size_t bytes;
    std::vector<uint32_t> free;  // slots not handed out, the next to hand out last
  };

  // The fewest whole 2 MiB pages (at most 8) that hold blocks of class cls with at most an eighth
  // left over. Untouched huge pages cost no memory, but a touched one is resident whole, and a
  // block given back inside it only splits it (the kernel frees the pieces under memory
  // pressure). So a slab whose other blocks went back can keep up to its size (2-8 MiB) resident
  // while one block lives. Measured: +10 MB on a 408 MB training run, +6 MB on a 49 MB inference.
  static size_t slab_bytes(size_t cls) {
    for (size_t pages = 1;; ++pages)
      if (const size_t bytes = pages * kHugePage; bytes % cls <= bytes / 8 || pages == 8)
        return bytes;
  }

  std::mutex mu_;
  std::map<uintptr_t, Slab> slabs_;                       // by start address
  std::unordered_map<size_t, std::set<uintptr_t>> open_;  // slabs with room, per class
};

void* system_alloc(Slabs& slabs, size_t cls) {
  if (cls < kSlabBlock) return std::aligned_alloc(kAlignment, cls);
  if (cls < kHugePage) return slabs.carve(cls);
  return map_huge(huge_mapping_size(cls), cls);
}

void system_free(Slabs& slabs, void* p, size_t cls) {
  if (cls < kSlabBlock)
    std::free(p);
  else if (cls < kHugePage)
    slabs.release(p, cls);
  else
    munmap(p, huge_mapping_size(cls));
}

// The cache's lock. Its critical sections are a few list operations, and the threads of a parallel
// region take their scratch buffers at the same moment: a std::mutex then sends the loser to sleep
// in the kernel, and a futex round trip costs more than the work (decoding, with a few parallel
// regions per layer and step, spent its second thread waking up). So: spin briefly, then yield.
class SpinLock {
 public:
  void lock() {
    for (int spins = 0; flag_.test_and_set(std::memory_order_acquire);) {
      while (flag_.test(std::memory_order_relaxed)) {
        if (++spins < 2048) {
#if defined(__x86_64__) || defined(__i386__)
          __builtin_ia32_pause();
#endif
        } else {
          std::this_thread::yield();  // the holder may have been preempted
        }
      }
    }
  }
  void unlock() {
    flag_.clear(std::memory_order_release);
  }

 private:
  std::atomic_flag flag_;
};

class CachingAllocator {
 public:
  void* allocate(size_t nbytes) {
    const size_t cls = size_class(nbytes);
    {
      std::lock_guard lock(mu_);
      if (void* p = take(cls)) return p;
      // None of the class: a block of one of the next classes, at most half as large again
      // (twice as large from 1 MiB). Shapes that change a little from batch to batch (decoding's
      // rows, the lengths of a batch) then reuse each other's blocks; fresh ones cost a page fault
      // per 4 KiB touched, which was half of the page faults of translating 200 verses. A cached
      // block is resident already, so its slack costs no new memory. The wider limit for large
      // blocks lets a translation batch's KV cache take the previous batch's (1 thread: page
      // faults 43.8k -> 36.2k, peak RSS 188 -> 158 MB).
      if (cls > 4096) {
        const size_t most = cls >= kLargeBlock ? 2 * cls : cls + cls / 2;
        for (size_t up = size_class(cls + 1); up <= most; up = size_class(up + 1))
          if (void* p = take(up)) {
            larger_.emplace(p, up);
            return p;
          }
      }
      ++stats_.system_allocs;
      note_in_use(cls);
    }
    void* p = system_alloc(slabs_, cls);
    if (!p) {
      // Give the cache back and try once more before reporting.
      empty_cache();
      p = system_alloc(slabs_, cls);
    }
    if (!p) {
      std::lock_guard lock(mu_);
      stats_.bytes_in_use -= cls;
      throw Error(fmt::format("out of memory: could not allocate {} bytes for a tensor", nbytes));
    }
    return p;
  }

  void deallocate(void* p, size_t nbytes) {
    size_t cls = size_class(nbytes);
    std::vector<Block> evicted;
    {
      std::lock_guard lock(mu_);
      if (!larger_.empty())
        if (auto it = larger_.find(p); it != larger_.end()) {
          cls = it->second;  // it goes back to the class it really is
          larger_.erase(it);
        }
      stats_.bytes_in_use -= cls;
      const size_t cap = limit();
      if (cls > cap) {  // also every block when the limit is 0
        ++stats_.system_frees;
        evicted.push_back({cls, p});
      } else {
        // Make room by evicting the least recently cached blocks, whatever their class: blocks
        // of shapes that have gone out of use leave first.
        while (stats_.bytes_cached + cls > cap) evicted.push_back(evict_oldest());
        lru_.push_back({cls, p});
        free_[cls].push_back(std::prev(lru_.end()));
        stats_.bytes_cached += cls;
      }
    }
    for (const Block& b : evicted) system_free(slabs_, b.ptr, b.cls);
  }

  void empty_cache() {
    std::list<Block> blocks;
    {
      std::lock_guard lock(mu_);
      blocks.swap(lru_);
      stats_.system_frees += blocks.size();
      free_.clear();
      stats_.bytes_cached = 0;
    }
    // Outside the lock: unmapping takes system calls, and other threads spin on it meanwhile.
    for (const Block& b : blocks) system_free(slabs_, b.ptr, b.cls);
  }

  AllocatorStats stats() {
    std::lock_guard lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mu_);
    stats_.peak_bytes_in_use = stats_.bytes_in_use;
    working_set_ = std::max(working_set_, stats_.peak_bytes_in_use);
  }
  void set_limit(std::optional<size_t> bytes) {
    std::vector<Block> evicted;
    {
      std::lock_guard lock(mu_);
      explicit_limit_ = bytes;
      while (stats_.bytes_cached > limit()) evicted.push_back(evict_oldest());
    }
    for (const Block& b : evicted) system_free(slabs_, b.ptr, b.cls);
  }

 private:
  struct Block {
    size_t cls;
    void* ptr;
  };

  size_t limit() const {
    if (explicit_limit_) return *explicit_limit_;
    return std::max({kMinAutoLimit, working_set_, stats_.peak_bytes_in_use});
  }

  // The newest cached block of class cls (the oldest are the first to be evicted), counted as in
  // use; null if there is none.
  void* take(size_t cls) {
    auto it = free_.find(cls);
    if (it == free_.end() || it->second.empty()) return nullptr;
    const auto node = it->second.back();
    it->second.pop_back();
    if (it->second.empty()) free_.erase(it);
    void* p = node->ptr;
    lru_.erase(node);
    stats_.bytes_cached -= cls;
    ++stats_.cache_hits;
    note_in_use(cls);
    return p;
  }

  // Unlinks the least recently cached block (the cache must not be empty); the caller frees it
  // outside the lock.
  Block evict_oldest() {
    const Block b = lru_.front();
    auto& blocks = free_[b.cls];
    blocks.pop_front();  // the oldest block of its class is the oldest of all in that class
    if (blocks.empty()) free_.erase(b.cls);
    lru_.pop_front();
    stats_.bytes_cached -= b.cls;
    ++stats_.system_frees;
    return b;
  }

  void note_in_use(size_t cls) {
    stats_.bytes_in_use += cls;
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
  }

  SpinLock mu_;
  Slabs slabs_;
  std::list<Block> lru_;  // cached blocks, least recently cached first
  std::unordered_map<size_t, std::deque<std::list<Block>::iterator>> free_;
  // Blocks handed out for a smaller class, and the class they are.
  std::unordered_map<void*, size_t> larger_;
  AllocatorStats stats_;
  std::optional<size_t> explicit_limit_ = env_cache_limit();
  size_t working_set_ = 0;  // the largest peak seen before a reset_peak()
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
void reset_cache_limit() {
  instance().set_limit(std::nullopt);
}

}  // namespace gaze::allocator
