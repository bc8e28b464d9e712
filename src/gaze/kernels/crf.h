// Linear-chain CRF kernels over B sequences of K tags: the forward algorithm (log partition), the
// gold path's score, their gradient through forward-backward marginals, and Viterbi decoding.
// Emissions are [B, Tmax, K] row-major; sequence b uses its first lengths[b] >= 1 steps.
#pragma once

#include <cstdint>

namespace gaze::kernels {

struct CrfShape {
  int64_t batch, steps, tags;
};

// nll[b] = log Z_b - score_b(tags[b]) (score: start + emissions + transitions + end).
template <typename T>
void crf_nll(const T* emissions, const int64_t* tags, const int64_t* lengths, const T* start,
             const T* end, const T* transitions, CrfShape s, T* nll);

// Adds g[b] * d nll[b] / d(each input) to d_emissions [B, Tmax, K], d_start [K], d_end [K] and
// d_transitions [K, K] (each may be null when not wanted; emission entries past a length stay 0).
template <typename T>
void crf_nll_backward(const T* emissions, const int64_t* tags, const int64_t* lengths,
                      const T* start, const T* end, const T* transitions, CrfShape s, const T* g,
                      T* d_emissions, T* d_start, T* d_end, T* d_transitions);

// The highest-scoring tag sequence of each sequence into best [B, Tmax] (-1 past its length) and
// its score into score [B]; ties go to the lower tag index.
template <typename T>
void crf_viterbi(const T* emissions, const int64_t* lengths, const T* start, const T* end,
                 const T* transitions, CrfShape s, int64_t* best, T* score);

}  // namespace gaze::kernels
