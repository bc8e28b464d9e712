// nn::CRF, as torchcrf.CRF (pytorch-crf): a linear-chain conditional random field over tag
// sequences, with start, end and transition scores, the log-likelihood of gold tags (forward
// algorithm) and Viterbi decoding, on masks whose true entries are a prefix of each sequence.
#pragma once

#include <vector>

#include "gaze/core/enums.h"
#include "gaze/nn/module.h"
#include "gaze/ops/crf.h"

namespace gaze::nn {

// torchcrf's reductions of the per-sequence log-likelihoods: none, sum, mean (over sequences),
// token_mean (over the mask's true entries).
enum class CrfReduction { none, sum, mean, token_mean };
GAZE_ENUM_NAMES(CrfReduction, {CrfReduction::none, "none"}, {CrfReduction::sum, "sum"},
                {CrfReduction::mean, "mean"}, {CrfReduction::token_mean, "token_mean"})

class CRF : public Module {
 public:
  // Scores start uniform in [-0.1, 0.1], as torchcrf's reset_parameters.
  explicit CRF(int64_t num_tags, bool batch_first = false);

  // emissions [T, B, K] ([B, T, K] with batch_first), tags [T, B] int64 (or [B, T]), mask bool of
  // the tags' shape whose true entries are each sequence's first steps (undefined: all true).
  // Returns the log-likelihood (higher is better), reduced as torchcrf does.
  Tensor forward(const Tensor& emissions, const Tensor& tags, const Tensor& mask = Tensor(),
                 CrfReduction reduction = CrfReduction::sum) const;
  // The best tag sequence of each sequence, by Viterbi.
  std::vector<std::vector<int64_t>> decode(const Tensor& emissions,
                                           const Tensor& mask = Tensor()) const;

  // Forbids transitions (from i to j: allowed[i][j] false), first tags and last tags, as AllenNLP's
  // constrained CRF: they get a -10000 penalty in the likelihood and in decoding, so a gold path
  // that breaks them still has a finite loss. Not part of the state dict (a tagger derives them
  // from its tag scheme).
  void constrain(std::vector<std::vector<bool>> allowed, std::vector<bool> allowed_start,
                 std::vector<bool> allowed_end);
  // The score tables the likelihood and decoding use: the parameters plus the constraints'
  // penalties (differentiable in the parameters).
  CrfScores scores() const;

  int64_t num_tags;
  bool batch_first;
  Tensor start_transitions, end_transitions, transitions;

 private:
  std::vector<std::vector<bool>> allowed_;
  std::vector<bool> allowed_start_, allowed_end_;
  // Batch-first emissions and the lengths the mask gives (undefined mask: all T).
  std::pair<Tensor, Tensor> batch_first_inputs(const Tensor& emissions, const Tensor& mask) const;
};

}  // namespace gaze::nn
