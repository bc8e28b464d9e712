// Reduction kernels over a tensor viewed as [outer, r, inner]: the middle axis is reduced.
// Sums use several SIMD accumulators; max also returns the index of the (first) maximum.
#pragma once

#include <cstdint>

namespace gaze::kernels {

// y[o, i] = sum_k x[o, k, i]  (y has outer * inner elements).
template <typename T>
void sum_axis(const T* x, T* y, int64_t outer, int64_t r, int64_t inner);

// y[o, i] = max_k x[o, k, i], idx[o, i] = its k (first one; NaN counts as the maximum, as in
// torch).
template <typename T>
void max_axis(const T* x, T* y, int64_t* idx, int64_t outer, int64_t r, int64_t inner);

// Backward of max_axis: gx (zeroed here) gets g[o, i] at k = idx[o, i].
template <typename T>
void scatter_axis(const T* g, const int64_t* idx, T* gx, int64_t outer, int64_t r, int64_t inner);

// The first i < n with x[i] >= cut, or n (NaN never qualifies). Beam search's scan of a row of
// log-probabilities for the few that can still enter its best list.
int64_t first_at_least(const float* x, int64_t n, float cut);

// x of [outer, inner] broadcast along a new middle axis: y[o, k, i] = x[o, i] for k < r.
template <typename T>
void expand_axis(const T* x, T* y, int64_t outer, int64_t r, int64_t inner);

}  // namespace gaze::kernels
