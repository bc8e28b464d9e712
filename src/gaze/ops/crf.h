// Linear-chain conditional random field ops, with torchcrf.CRF's semantics: the negative
// log-likelihood of gold tag sequences (forward algorithm; gradients by forward-backward
// marginals) and Viterbi decoding.
#pragma once

#include <vector>

#include "gaze/core/tensor.h"

namespace gaze {

// The CRF's score tables: start [K] and end [K] scores, transitions [K, K] (row: from, col: to).
struct CrfScores {
  Tensor start, end, transitions;
};

// emissions [B, T, K] (f32 or f64); tags [B, T] int64 (entries past a length are ignored);
// lengths [B] int64 in [1, T], or undefined for all T. Returns the per-sequence negative
// log-likelihood [B], log Z - score(tags), differentiable in the emissions and the three tables.
Tensor crf_nll(const Tensor& emissions, const Tensor& tags, const Tensor& lengths,
               const CrfScores& scores);

// The best tag sequence of each sequence (lengths[b] tags), by Viterbi; no autograd.
std::vector<std::vector<int64_t>> crf_decode(const Tensor& emissions, const Tensor& lengths,
                                             const CrfScores& scores);

}  // namespace gaze
