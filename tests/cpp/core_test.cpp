// Tensor core: creation, views and shared storage, raw-buffer import/export, the caching allocator,
// the Philox RNG and the thread setting.
#include <gtest/gtest.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <numeric>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "gaze/core/allocator.h"
#include "gaze/core/autocast.h"
#include "gaze/core/grad_mode.h"
#include "gaze/core/simd.h"
#include "gaze/core/storage.h"
#include "gaze/core/threads.h"
#include "gaze/ops/ops.h"

namespace gaze {
namespace {

TEST(Tensor, CreationAndMetadata) {
  Tensor t = Tensor::zeros(Shape{2, 3});
  EXPECT_EQ(t.dim(), 2);
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_EQ(t.dtype(), DType::f32);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, 0.0f);
  EXPECT_EQ(Tensor::full(Shape{4}, 2.5).to_vector<float>(), std::vector<float>(4, 2.5f));
  EXPECT_EQ(Tensor::scalar(3.0, DType::f64).item<double>(), 3.0);
  EXPECT_EQ(Tensor::arange(4).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(Tensor::empty(Shape{0, 5}).numel(), 0);
  EXPECT_FALSE(Tensor().defined());
}

TEST(Tensor, StorageIs64ByteAligned) {
  for (int64_t n : {1, 3, 17, 1000, 100000}) {
    Tensor t = Tensor::empty(Shape{n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << n;
  }
}

TEST(Tensor, FromDataCopiesAndFromBlobShares) {
  std::vector<float> buf{1, 2, 3, 4, 5, 6};
  Tensor copy = Tensor::from_data(buf.data(), Shape{2, 3});
  Tensor blob = Tensor::from_blob(buf.data(), Shape{3, 2}, DType::f32, nullptr);
  buf[0] = 42;
  EXPECT_EQ(copy.data<float>()[0], 1.0f);
  EXPECT_EQ(blob.data<float>()[0], 42.0f);
  std::vector<float> out(6);
  copy.copy_to(out.data(), out.size() * sizeof(float));
  EXPECT_EQ(out, (std::vector<float>{1, 2, 3, 4, 5, 6}));
  EXPECT_THROW(copy.copy_to(out.data(), 4), ValueError);
  EXPECT_THROW(copy.data<double>(), ValueError);
}

TEST(Tensor, ReshapeIsAViewSharingStorage) {
  Tensor t = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, Shape{2, 3});
  Tensor r = reshape(t, std::vector<int64_t>{3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.raw_data(), t.raw_data());
  r.data<float>()[5] = 60;
  EXPECT_EQ(t.data<float>()[5], 60.0f);
  EXPECT_EQ(flatten(t).shape(), (Shape{6}));
  EXPECT_EQ(unsqueeze(t, 0).shape(), (Shape{1, 2, 3}));
  EXPECT_EQ(squeeze(unsqueeze(t, 2)).shape(), (Shape{2, 3}));
}

TEST(Tensor, SlicingViewsWhenContiguousCopiesOtherwise) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}, Shape{4, 3});
  Tensor rows = slice(t, 0, 1, 3);
  EXPECT_EQ(rows.shape(), (Shape{2, 3}));
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(rows.storage(), t.storage());  // a view
  Tensor cols = slice(t, 1, 0, 3, 2);
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{0, 2, 3, 5, 6, 8, 9, 11}));
  EXPECT_NE(cols.storage(), t.storage());  // a copy
  EXPECT_EQ(slice(t, 0, -1).to_vector<float>(), (std::vector<float>{9, 10, 11}));
  EXPECT_EQ(slice(t, 0, 10, 20).numel(), 0);  // clamped, empty
  EXPECT_EQ(select(t, 1, 1).to_vector<float>(), (std::vector<float>{1, 4, 7, 10}));
  EXPECT_EQ(narrow(t, 0, 2, 2).to_vector<float>(), (std::vector<float>{6, 7, 8, 9, 10, 11}));
}

TEST(Tensor, PermuteTransposeCatSplit) {
  Tensor t = Tensor::from_vector<float>({0, 1, 2, 3, 4, 5}, Shape{2, 3});
  EXPECT_EQ(transpose(t, 0, 1).to_vector<float>(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // A larger permutation against an index-computed reference (exercises the tiled path).
  Tensor big = Tensor::empty(Shape{3, 70, 45});
  std::iota(big.data<float>(), big.data<float>() + big.numel(), 0.0f);
  Tensor p = permute(big, {2, 0, 1});
  for (int64_t a = 0; a < 45; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 70; ++c)
        ASSERT_EQ(p.data<float>()[(a * 3 + b) * 70 + c], big.data<float>()[(b * 70 + c) * 45 + a]);
  Tensor c = cat({t, t}, 1);
  EXPECT_EQ(c.shape(), (Shape{2, 6}));
  EXPECT_EQ(c.to_vector<float>(), (std::vector<float>{0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5}));
  auto parts = split(c, 4, 1);
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(parts[1].to_vector<float>(), (std::vector<float>{1, 2, 4, 5}));
  // Non-float dtypes move too.
  Tensor ids = Tensor::from_vector<int64_t>({1, 2, 3, 4}, Shape{2, 2});
  EXPECT_EQ(transpose(ids, 0, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 2, 4}));
}

TEST(Storage, DeferredBytesAreMadeOnceByWhicheverThreadReadsFirst) {
  std::atomic<int> fills{0};
  auto s = gaze::Storage::deferred(1 << 20, [&](void*) { ADD_FAILURE() << "replaced fill ran"; });
  EXPECT_FALSE(s->materialized());
  EXPECT_EQ(s->nbytes(), size_t{1} << 20);
  // Replaced before anything read it: the new fill is the one that runs.
  EXPECT_TRUE(s->refill([&](void* p) {
    ++fills;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the others arrive meanwhile
    std::memset(p, 7, size_t{1} << 20);
  }));
  std::vector<void*> got(8, nullptr);
  std::vector<std::thread> readers;
  for (size_t i = 0; i < got.size(); ++i) readers.emplace_back([&, i] { got[i] = s->data(); });
  for (auto& t : readers) t.join();
  EXPECT_EQ(fills.load(), 1);
  for (void* p : got) ASSERT_EQ(p, got[0]);
  const auto* bytes = static_cast<const unsigned char*>(got[0]);
  EXPECT_EQ(bytes[0], 7);
  EXPECT_EQ(bytes[(1 << 20) - 1], 7);
  EXPECT_TRUE(s->materialized());
  EXPECT_FALSE(s->refill([](void*) {}));                            // made: nothing left to replace
  EXPECT_FALSE(gaze::Storage::allocate(64)->refill([](void*) {}));  // never deferred
}

TEST(Storage, AFillThatThrowsLeavesTheBytesUnmadeAndTheBlockReturned) {
  gaze::allocator::empty_cache();
  const size_t before = gaze::allocator::stats().bytes_in_use;
  int calls = 0;
  {
    auto s = gaze::Storage::deferred(4096, [&](void* p) {
      if (++calls == 1) throw gaze::ValueError("first fill fails");
      std::memset(p, 1, 4096);
    });
    EXPECT_THROW(s->data(), gaze::ValueError);
    EXPECT_FALSE(s->materialized());
    EXPECT_EQ(gaze::allocator::stats().bytes_in_use, before);
    ASSERT_NE(s->data(), nullptr);  // a second reader tries again
    EXPECT_EQ(calls, 2);
    EXPECT_GT(gaze::allocator::stats().bytes_in_use, before);
  }
  EXPECT_EQ(gaze::allocator::stats().bytes_in_use, before);  // freed with the storage
  {
    auto never = gaze::Storage::deferred(4096, [](void*) {});  // never read: nothing to free
  }
  EXPECT_EQ(gaze::allocator::stats().bytes_in_use, before);
}

TEST(Allocator, ReusesBlocksAcrossIdenticalSteps) {
  auto step = [] {
    Tensor a = Tensor::ones(Shape{64, 64}), b = Tensor::ones(Shape{64, 64});
    a.set_requires_grad();
    Tensor loss = sum(softmax(matmul(a, b) * 0.01, -1) + a);
    loss.backward();
  };
  step();
  step();  // warm: every size class has been seen
  const auto before = allocator::stats();
  for (int i = 0; i < 5; ++i) step();
  const auto after = allocator::stats();
  EXPECT_EQ(after.system_allocs, before.system_allocs)
      << "a repeated step went to the system allocator";
  EXPECT_GT(after.cache_hits, before.cache_hits);
}

TEST(Allocator, ThreadsAllocatingAtOnceKeepItConsistent) {
  // The threads of a parallel region take and return scratch blocks at the same moment (the lock
  // spins instead of sleeping): no block may be handed out twice and the books must balance. Run
  // once with the cache and once without, so that blocks also go back to malloc and the slabs.
  for (const bool cached : {true, false}) {
    if (!cached) allocator::set_cache_limit(0);
    const size_t base = allocator::stats().bytes_in_use;
    std::vector<std::thread> threads;
    std::atomic<int> overlaps{0};
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([t, &overlaps] {
        for (int i = 0; i < 200; ++i) {
          // Three live at once: small blocks from malloc and blocks carved from huge pages.
          std::array<std::pair<unsigned char*, size_t>, 3> live;
          for (int k = 0; k < 3; ++k) {
            const size_t n = (i + k) % 4 == 0
                                 ? (size_t{128} << 10) * static_cast<size_t>(1 + (i + t + k) % 3)
                                 : 64 * static_cast<size_t>(1 + (i + t + k) % 5);
            auto* p = static_cast<unsigned char*>(allocator::allocate(n));
            std::fill(p, p + n, static_cast<unsigned char>(t));
            live[k] = {p, n};
          }
          for (auto [p, n] : live) {
            for (size_t k = 0; k < n; ++k) overlaps += p[k] != t;  // another thread wrote here
            allocator::deallocate(p, n);
          }
        }
      });
    for (auto& th : threads) th.join();
    EXPECT_EQ(overlaps.load(), 0) << (cached ? "cached" : "uncached");
    EXPECT_EQ(allocator::stats().bytes_in_use, base);
  }
  allocator::reset_cache_limit();
}

// The VmFlags line of /proc/self/smaps for the mapping that holds p ("" if none was found).
std::string vm_flags_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long lo = 0, hi = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx ", &lo, &hi) == 2 && line.find('-') < 16)
      inside = addr >= lo && addr < hi;
    else if (inside && line.rfind("VmFlags:", 0) == 0)
      return line;
  }
  return "";
}

TEST(Allocator, OffersBlocksFromTwoMiBAsHugePages) {
  // A block from 2 MiB starts on a 2 MiB boundary and its mapping is advised for huge pages (the
  // "hg" flag), so that touching it costs one page fault per 2 MiB, not one per 4 KiB.
  allocator::empty_cache();
  constexpr size_t kMiB = size_t{1} << 20;
  void* big = allocator::allocate(5 * kMiB);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(big) % (2 * kMiB), 0u);
  std::memset(big, 1, 5 * kMiB);  // usable to its end
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good()) {
    const std::string flags = vm_flags_of(big);
    EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  }
  allocator::deallocate(big, 5 * kMiB);
  allocator::empty_cache();
}

TEST(Allocator, CarvesBlocksFrom128KiBOutOfHugePages) {
  // Blocks from 128 KiB to 2 MiB share 2 MiB pages advised as huge pages (glibc would map each on
  // its own, in 4 KiB pages); a block given back returns its memory, the last one its slab.
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "under AddressSanitizer these blocks come from malloc, for its red zones";
#endif
  allocator::empty_cache();
  allocator::set_cache_limit(0);  // every free reaches the slab
  constexpr size_t kMiB = size_t{1} << 20;
  auto* a = static_cast<unsigned char*>(allocator::allocate(kMiB));
  auto* b = static_cast<unsigned char*>(allocator::allocate(kMiB));
  const auto at = reinterpret_cast<uintptr_t>(a);
  EXPECT_EQ(at % (2 * kMiB), 0u);  // a fresh slab starts on a huge page ...
  EXPECT_EQ(b, a + kMiB);          // ... and holds both
  std::memset(a, 1, kMiB);
  std::memset(b, 2, kMiB);
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good()) {
    const std::string flags = vm_flags_of(a);
    EXPECT_NE(flags.find(" hg"), std::string::npos) << flags;
  }
  allocator::deallocate(a, kMiB);
  // Its pages went back to the system; the neighbour keeps every byte.
  std::vector<unsigned char> resident(kMiB / 4096);
  ASSERT_EQ(mincore(a, kMiB, resident.data()), 0);
  EXPECT_EQ(std::count_if(resident.begin(), resident.end(), [](unsigned char r) { return r & 1; }),
            0);
  EXPECT_EQ(std::count(b, b + kMiB, 2), static_cast<long>(kMiB));
  auto* again = static_cast<unsigned char*>(allocator::allocate(kMiB - 4096));
  EXPECT_EQ(again, a);  // the free slot is used before a new slab
  allocator::deallocate(again, kMiB - 4096);
  // 1.5 MiB blocks come four to a slab of three huge pages, not one per page.
  std::vector<unsigned char*> blocks;
  for (int i = 0; i < 5; ++i) {
    blocks.push_back(static_cast<unsigned char*>(allocator::allocate(3 * kMiB / 2)));
    std::memset(blocks.back(), i, 3 * kMiB / 2);
  }
  for (int i = 1; i < 4; ++i) EXPECT_EQ(blocks[i], blocks[0] + i * (3 * kMiB / 2));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(blocks[i][3 * kMiB / 2 - 1], i);
  for (auto* p : blocks) allocator::deallocate(p, 3 * kMiB / 2);
  allocator::deallocate(b, kMiB);
  EXPECT_EQ(vm_flags_of(b), "");  // the slab is unmapped with its last block
  allocator::reset_cache_limit();
}

TEST(Allocator, TracksPeakAndEmptiesCache) {
  allocator::reset_peak();
  const size_t base = allocator::stats().bytes_in_use;
  {
    Tensor big = Tensor::empty(Shape{1 << 20});
    EXPECT_GE(allocator::stats().peak_bytes_in_use, base + (4u << 20));
  }
  allocator::empty_cache();
  EXPECT_EQ(allocator::stats().bytes_cached, 0u);
}

TEST(Allocator, EvictsTheLeastRecentlyCachedBlocksFirst) {
  allocator::empty_cache();
  allocator::set_cache_limit(size_t{768} << 10);
  const Shape oldest{1 << 16};  // 2^16 floats, 256 KiB: exactly a size class
  auto system_allocs = [] { return allocator::stats().system_allocs; };
  // Blocks of 256, 320, 384 and 448 KiB in turn, each freed at once: to cache the last, the
  // three before it must go, oldest first.
  for (int64_t extra : {0, 1, 2, 3}) {
    Tensor t = Tensor::empty(Shape{(1 << 16) + extra * (1 << 14)});
  }
  EXPECT_LE(allocator::stats().bytes_cached, size_t{768} << 10);
  uint64_t before = system_allocs();
  { Tensor t = Tensor::empty(Shape{(1 << 16) + 3 * (1 << 14)}); }  // newest: still cached
  EXPECT_EQ(system_allocs(), before);
  before = system_allocs();
  { Tensor t = Tensor::empty(oldest); }  // evicted (and the 448 KiB block is too large for it)
  EXPECT_EQ(system_allocs(), before + 1);
  // A block larger than the whole cache is given straight back.
  const uint64_t frees = allocator::stats().system_frees;
  { Tensor t = Tensor::empty(Shape{1 << 20}); }
  EXPECT_EQ(allocator::stats().system_frees, frees + 1);
  EXPECT_LE(allocator::stats().bytes_cached, size_t{768} << 10);
  allocator::set_cache_limit(0);  // nothing is kept
  { Tensor t = Tensor::empty(oldest); }
  EXPECT_EQ(allocator::stats().bytes_cached, 0u);
  allocator::reset_cache_limit();
}

TEST(Allocator, ServesARequestFromACachedBlockUpToHalfAsLargeAgainOrTwiceFromOneMiB) {
  // Shapes that vary a little between batches reuse each other's blocks instead of fresh memory.
  allocator::empty_cache();
  constexpr size_t kMiB = size_t{1} << 20;
  auto system_allocs = [] { return allocator::stats().system_allocs; };
  const size_t base = allocator::stats().bytes_in_use;
  void* six = allocator::allocate(6 * kMiB);
  allocator::deallocate(six, 6 * kMiB);
  uint64_t before = system_allocs();
  void* five = allocator::allocate(5 * kMiB);  // served by the 6 MiB block ...
  EXPECT_EQ(five, six);
  EXPECT_EQ(system_allocs(), before);
  EXPECT_EQ(allocator::stats().bytes_in_use, base + 6 * kMiB);  // ... and counted as what it is
  allocator::deallocate(five, 5 * kMiB);
  EXPECT_EQ(allocator::stats().bytes_in_use, base);
  EXPECT_EQ(allocator::stats().bytes_cached, 6 * kMiB);
  void* again = allocator::allocate(6 * kMiB);  // back in its own class
  EXPECT_EQ(again, six);
  EXPECT_EQ(system_allocs(), before);
  allocator::deallocate(again, 6 * kMiB);
  // From 1 MiB, up to twice the request: 3.5 MiB and 3 MiB (exactly half) take it, 2.5 MiB
  // gets a block of its own.
  for (size_t request : {3 * kMiB + kMiB / 2, 3 * kMiB}) {
    void* p = allocator::allocate(request);
    EXPECT_EQ(p, six) << request;
    EXPECT_EQ(system_allocs(), before);
    allocator::deallocate(p, request);
  }
  void* small = allocator::allocate(2 * kMiB + kMiB / 2);
  EXPECT_NE(small, six);
  EXPECT_EQ(system_allocs(), before + 1);
  allocator::deallocate(small, 2 * kMiB + kMiB / 2);
  // The edge: a 1 MiB request may take a cached 2 MiB block.
  allocator::empty_cache();
  void* two = allocator::allocate(2 * kMiB);
  allocator::deallocate(two, 2 * kMiB);
  before = system_allocs();
  void* one = allocator::allocate(kMiB);
  EXPECT_EQ(one, two);
  EXPECT_EQ(system_allocs(), before);
  allocator::deallocate(one, kMiB);
  // Below 1 MiB the limit stays at half as large again: a cached 640 KiB block serves 448 KiB
  // (1.43x) but not 384 KiB (1.67x).
  allocator::empty_cache();
  constexpr size_t kKiB = 1024;
  void* b640 = allocator::allocate(640 * kKiB);
  allocator::deallocate(b640, 640 * kKiB);
  before = system_allocs();
  void* b384 = allocator::allocate(384 * kKiB);
  EXPECT_NE(b384, b640);
  EXPECT_EQ(system_allocs(), before + 1);
  void* b448 = allocator::allocate(448 * kKiB);
  EXPECT_EQ(b448, b640);
  EXPECT_EQ(system_allocs(), before + 1);
  allocator::deallocate(b448, 448 * kKiB);
  allocator::deallocate(b384, 384 * kKiB);
  allocator::empty_cache();
}

TEST(Rng, PhiloxKnownAnswers) {
  // Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
  auto w = philox4x32(0, 0, 0);
  EXPECT_EQ(w, (std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  w = philox4x32(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(w, (std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  // counter = 243f6a88 85a308d3 13198a2e 03707344, key = a4093822 299f31d0
  w = philox4x32(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  EXPECT_EQ(w, (std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

TEST(Rng, ReproducibleIndependentAndThreadCountInvariant) {
  const int saved = num_threads();
  Generator g1(42), g2(42), other_stream(42, 1);
  set_num_threads(1);
  Tensor a = randn(Shape{100001}, DType::f32, &g1);
  set_num_threads(2);
  Tensor b = randn(Shape{100001}, DType::f32, &g2);
  set_num_threads(saved);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  Tensor c = randn(Shape{100001}, DType::f32, &other_stream);
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  // Successive draws continue the stream rather than repeat it.
  EXPECT_NE(randn(Shape{8}, DType::f32, &g1).to_vector<float>(),
            randn(Shape{8}, DType::f32, &other_stream).to_vector<float>());
  // State save/restore replays exactly.
  const auto st = g1.state();
  Tensor d = rand(Shape{10}, DType::f64, &g1);
  g1.set_state(st);
  EXPECT_EQ(rand(Shape{10}, DType::f64, &g1).to_vector<double>(), d.to_vector<double>());
}

TEST(Rng, DistributionMoments) {
  Generator g(7);
  const int64_t n = 400000;
  auto moments = [](const Tensor& t) {
    double s = 0, s2 = 0;
    for (float v : t.to_vector<float>()) {
      s += v;
      s2 += static_cast<double>(v) * v;
    }
    const double m = s / t.numel();
    return std::pair{m, s2 / t.numel() - m * m};
  };
  auto [m, var] = moments(normal(Shape{n}, 2.0, 3.0, DType::f32, &g));
  EXPECT_NEAR(m, 2.0, 0.03);
  EXPECT_NEAR(var, 9.0, 0.1);
  std::tie(m, var) = moments(uniform(Shape{n}, -1.0, 3.0, DType::f32, &g));
  EXPECT_NEAR(m, 1.0, 0.02);
  EXPECT_NEAR(var, 16.0 / 12.0, 0.02);
  Tensor u = uniform(Shape{n}, -1.0, 3.0, DType::f32, &g);
  for (float v : u.to_vector<float>()) ASSERT_TRUE(v >= -1.0f && v < 3.0f);
  std::tie(m, var) = moments(bernoulli(Shape{n}, 0.3, DType::f32, &g));
  EXPECT_NEAR(m, 0.3, 0.005);
}

TEST(Rng, ManualSeedResetsDefaultGenerators) {
  manual_seed(3);
  Tensor a = randn(Shape{5});
  manual_seed(3);
  EXPECT_EQ(randn(Shape{5}).to_vector<float>(), a.to_vector<float>());
  // Purposes are independent streams: dropout draws do not shift init draws.
  manual_seed(3);
  (void)dropout(Tensor::ones(Shape{100}), 0.5, true);
  EXPECT_EQ(randn(Shape{5}).to_vector<float>(), a.to_vector<float>());
}

TEST(Threads, SettingAndValidation) {
  const int saved = num_threads();
  EXPECT_GE(saved, 1);
  set_num_threads(1);
  EXPECT_EQ(num_threads(), 1);
  EXPECT_THROW(set_num_threads(0), ValueError);
  set_num_threads(saved);
}

// OpenMP's thread count is per thread, and oneDNN reads it when it makes a primitive: a thread
// other than the one that called set_num_threads takes gaze's setting when it calls in.
TEST(Threads, OtherThreadsTakeTheSettingWhenTheyCallIn) {
  const int saved = num_threads();
  set_num_threads(3);
  int seen = 0, seen_after_change = 0;
  std::thread worker([&] {
    (void)num_threads();
    seen = omp_get_max_threads();
  });
  worker.join();
  EXPECT_EQ(seen, 3);
  std::thread again([&] {
    (void)num_threads();
    set_num_threads(2);  // from this thread now; the main thread follows on its next call
  });
  again.join();
  (void)num_threads();
  seen_after_change = omp_get_max_threads();
  EXPECT_EQ(seen_after_change, 2);
  set_num_threads(saved);
}

TEST(Threads, ResultsIdenticalAcrossRunsAtAThreadCount) {
  Generator g(11);
  Tensor x = randn(Shape{257, 301}, DType::f32, &g);
  Tensor w = randn(Shape{301}, DType::f32, &g);
  auto run = [&] { return sum(layer_norm(x, {301}, w) * x, {0}).to_vector<float>(); };
  EXPECT_EQ(run(), run());
}

TEST(Threads, ParallelTasksRunEachTaskOnceWithTheCallersModes) {
  const int saved = num_threads();
  set_num_threads(2);
  constexpr int64_t kTasks = 37;
  std::vector<std::atomic<int>> calls(kTasks);
  std::atomic<int> nested_inline{0}, grad_on{0}, bf16{0};
  std::set<std::thread::id> ids;
  std::mutex mu;
  auto task = [&](int64_t i) {
    calls[static_cast<size_t>(i)]++;
    // A task's own ops run single-threaded: a nested parallel_for is one inline call.
    int chunks = 0;
    parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) { chunks += lo == 0 && hi == 1000; });
    nested_inline += chunks == 1;
    grad_on += autograd::grad_mode_enabled();
    bf16 += autocast_precision() == Precision::bf16;
    {
      std::lock_guard lock(mu);
      ids.insert(std::this_thread::get_id());
    }
    // Both threads must take tasks (else the checks above prove nothing for the pool's thread): a
    // task waits until the other thread has one too, however the machine schedules them.
    for (int i = 0; i < 10000; ++i) {
      {
        std::lock_guard lock(mu);
        if (ids.size() == 2) break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  };
  {
    NoGradGuard no_grad;
    AutocastGuard autocast(Precision::bf16);
    parallel_tasks(kTasks, task);
  }
  for (const auto& c : calls) EXPECT_EQ(c.load(), 1);
  EXPECT_EQ(nested_inline.load(), kTasks);
  EXPECT_EQ(grad_on.load(), 0);  // the caller's modes, on the pool's threads too
  EXPECT_EQ(bf16.load(), kTasks);
  EXPECT_EQ(ids.size(), 2u);
  // ... and the pool's threads got their own back: a call without the guards sees the defaults.
  grad_on = 0, bf16 = 0;
  ids.clear();
  for (auto& c : calls) c = 0;
  parallel_tasks(kTasks, task);
  EXPECT_EQ(grad_on.load(), kTasks);
  EXPECT_EQ(bf16.load(), 0);
  set_num_threads(saved);
}

TEST(Threads, ParallelTasksRethrowTheFirstErrorAndSkipTheRest) {
  const int saved = num_threads();
  set_num_threads(2);
  std::atomic<int> ran{0};
  try {
    parallel_tasks(1000, [&](int64_t i) {
      ++ran;
      if (i == 3) throw DataError("task 3: bad input");
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    });
    ADD_FAILURE() << "no exception";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "task 3: bad input");
  }
  EXPECT_LT(ran.load(), 1000);  // the tasks not started when it failed were skipped
  // One task, or one thread: in order on the calling thread.
  std::vector<int64_t> order;
  set_num_threads(1);
  parallel_tasks(5, [&](int64_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  set_num_threads(saved);
  const auto caller = std::this_thread::get_id();
  parallel_tasks(1, [&](int64_t) { EXPECT_EQ(std::this_thread::get_id(), caller); });
}

// An exception inside a chunk reaches the caller instead of ending the process inside the region;
// the other chunks still run to their end.
TEST(Threads, ParallelForRethrowsAChunksError) {
  const int saved = num_threads();
  set_num_threads(2);
  std::atomic<int64_t> done{0};
  try {
    parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) {
      if (lo > 0) throw DataError("second chunk: bad input");
      done += hi - lo;
    });
    ADD_FAILURE() << "no exception";
  } catch (const DataError& e) {
    EXPECT_STREQ(e.what(), "second chunk: bad input");
  }
  EXPECT_EQ(done.load(), 500);
  set_num_threads(saved);
}

TEST(Threads, ForTeamRunsEachIndexOnceOnTheThreadItNames) {
  const int saved = num_threads();
  set_num_threads(3);
  for (int team : {1, 2, 3})
    for (int64_t chunk : {0, 1, 4, 1000}) {
      std::vector<std::atomic<int>> seen(50);
      std::vector<std::atomic<int>> on(50);
      for_team(team, 50, chunk, [&](int t, int64_t i) {
        ++seen[static_cast<size_t>(i)];
        on[static_cast<size_t>(i)] = t;
        EXPECT_EQ(t, team > 1 ? omp_get_thread_num() : 0);
        if (team == 1) EXPECT_EQ(omp_in_parallel(), 0);  // one thread: no region at all
      });
      for (int64_t i = 0; i < 50; ++i) {
        EXPECT_EQ(seen[static_cast<size_t>(i)].load(), 1) << team << " " << chunk << " " << i;
        EXPECT_LT(on[static_cast<size_t>(i)].load(), team);
      }
    }
  set_num_threads(saved);
}

TEST(Simd, TargetsListedAndForceable) {
  const auto targets = simd_targets();
  ASSERT_FALSE(targets.empty());
  for (const auto& t : targets) {
    force_simd_target(t);
    EXPECT_EQ(simd_target(), t);
  }
  force_simd_target("");
  EXPECT_EQ(simd_target(), targets.front());
  EXPECT_THROW(force_simd_target("NOT_A_TARGET"), ValueError);
}

}  // namespace
}  // namespace gaze

TEST(ShapeLimits, RefusesElementCountsThatWouldOverflow) {
  using gaze::Shape;
  EXPECT_THROW(Shape({int64_t{1} << 62}), gaze::ValueError);
  EXPECT_THROW(Shape({int64_t{1} << 32, int64_t{1} << 32}), gaze::ValueError);
  EXPECT_THROW(Shape({3, int64_t{1} << 31, int64_t{1} << 31}), gaze::ValueError);
  EXPECT_EQ(Shape({0, int64_t{1} << 40}).numel(), 0);  // empty: nothing to allocate
  EXPECT_EQ(Shape({int64_t{1} << 24, int64_t{1} << 24}).numel(), int64_t{1} << 48);
  EXPECT_THROW(gaze::set_num_threads(100000), gaze::ValueError);
}
