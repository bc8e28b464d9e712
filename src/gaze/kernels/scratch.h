// Scratch: a typed, uninitialised working buffer from gaze's caching allocator, released on scope
// exit. Kernels use it for packed tiles and accumulators so repeated calls do not reach malloc.
#pragma once

#include <cstddef>

#include "gaze/core/allocator.h"

namespace gaze::kernels {

template <typename T>
class Scratch {
 public:
  explicit Scratch(size_t n) : n_(n), p_(static_cast<T*>(allocator::allocate(n * sizeof(T)))) {}
  ~Scratch() { allocator::deallocate(p_, n_ * sizeof(T)); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;

  T* data() { return p_; }
  const T* data() const { return p_; }
  T& operator[](size_t i) { return p_[i]; }
  size_t size() const { return n_; }

 private:
  size_t n_;
  T* p_;
};

}  // namespace gaze::kernels
