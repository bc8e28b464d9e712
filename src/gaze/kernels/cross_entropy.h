// Fused cross-entropy over rows of logits [N, C] with class-index targets: log-softmax, optional
// class weights, ignore_index and label smoothing in one pass, and its backward.
#pragma once

#include <cstdint>

namespace gaze::kernels {

// For each row i with target y = target[i] (rows with y == ignore_index give loss 0 and weight 0):
//   loss[i]  = (1 - eps) * w[y] * -logp[i, y] + (eps / C) * sum_c w[c] * -logp[i, c]
//   wrow[i]  = w[y]   (the row's share of the "mean" denominator)
//   lse[i]   = log sum_c exp(logits[i, c])   (saved for the backward)
// weight may be null (all ones). Targets must already be validated.
template <typename T>
void cross_entropy(const T* logits, const int64_t* target, const T* weight, int64_t n, int64_t c,
                   int64_t ignore_index, double eps, T* loss, T* wrow, T* lse);

// glogits[i, j] = scale[i] * dloss[i] / dlogits[i, j].
template <typename T>
void cross_entropy_backward(const T* logits, const int64_t* target, const T* weight, const T* lse,
                            const T* scale, int64_t n, int64_t c, int64_t ignore_index, double eps,
                            T* glogits);

}  // namespace gaze::kernels
