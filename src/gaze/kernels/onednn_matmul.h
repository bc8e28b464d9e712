// oneDNN plumbing shared by gaze's matrix-product kernels (gemm.cpp, lowp_gemm.cpp): one engine,
// matmul primitives cached per shape, and their execution with scratch from gaze's allocator.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "gaze/core/threads.h"
#include "gaze/kernels/gemm.h"

namespace gaze::kernels::onednn {

// The CPU engine every gaze primitive runs on (oneDNN shares gaze's OpenMP pool).
const dnnl::engine& engine();

struct Matmul {
  dnnl::matmul prim;
  std::string impl;  // oneDNN's kernel, e.g. "brg:avx512_core" (tests check it)
  dnnl::memory::desc src, weights, dst, bias, scratch;
};

// The primitive for these operands (bias: undefined for none) with scratch left to the caller
// (execute() takes it from gaze's allocator); an Error starting with `context` if oneDNN has no
// kernel for them. `weights` may be format_tag::any: Matmul::weights then holds the layout chosen.
Matmul make_matmul(const dnnl::memory::desc& src, const dnnl::memory::desc& weights,
                   const dnnl::memory::desc& bias, const dnnl::memory::desc& dst,
                   dnnl::primitive_attr attr, const std::string& context);

// act as an eltwise post-op (none adds nothing).
void append_activation(dnnl::post_ops& po, GemmAct act);

// Runs m (bias null when m has none); `extra` holds further arguments (runtime output scales).
void execute(const Matmul& m, const void* src, const void* weights, void* dst, const void* bias,
             std::unordered_map<int, dnnl::memory> extra = {});

// Primitives by shape key, created once and handed out with shared ownership: the cache starts
// over when shapes churn (varying lengths) past 4096, and a primitive still running elsewhere must
// outlive that. The pool size is part of the key: oneDNN fixes a primitive's thread count when it
// is made, so one made at 1 thread ran on 1 thread after set_num_threads(2).
template <size_t N>
class MatmulCache {
 public:
  using Key = std::array<int64_t, N>;
  template <class Make>
  std::shared_ptr<const Matmul> get(const Key& shape, Make&& make) {
    FullKey key;
    std::copy(shape.begin(), shape.end(), key.begin());
    key[N] = num_threads();
    {
      // Shared: the threads of a parallel region look up their products at the same moment, and
      // under an exclusive lock they queued for it (an int8 [64 x 256] x [256 x 1024] product per
      // thread in a 2-thread region: 62 -> 56 us on the first thread).
      std::shared_lock lock(mu_);
      if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    }
    // Made outside the lock: making a primitive compiles its kernels, and threads decoding side by
    // side (whose row counts change as sources finish) would wait on each other's compilations
    // for every product. Two threads may make the same one; the first to store it wins.
    auto made = std::make_shared<const Matmul>(make());
    std::unique_lock lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    if (cache_.size() >= 4096) cache_.clear();
    return cache_.emplace(key, std::move(made)).first->second;
  }

 private:
  using FullKey = std::array<int64_t, N + 1>;
  struct Hash {
    size_t operator()(const FullKey& k) const {
      size_t h = 0xcbf29ce484222325ull;  // FNV-1a over the fields
      for (int64_t v : k) h = (h ^ static_cast<size_t>(v)) * 0x100000001b3ull;
      return h;
    }
  };
  std::shared_mutex mu_;
  std::unordered_map<FullKey, std::shared_ptr<const Matmul>, Hash> cache_;
};

}  // namespace gaze::kernels::onednn
