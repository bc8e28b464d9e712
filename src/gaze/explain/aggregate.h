// Aggregations of attention weights: the mean over heads, attention rollout (Abnar & Zuidema
// 2020), hard alignments and per-token importance.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/tensor.h"
#include "gaze/models/transformer_models.h"

namespace gaze::explain {

// [H, Tq, Tk] -> [Tq, Tk]: the mean over the heads.
Tensor mean_heads(const Tensor& weights);

// Attention rollout over layers given first to last, each [T, T] (heads already averaged): every
// layer's weights are adjusted for the residual connection, A' = (A + I) / 2, rows re-normalised
// to sum to 1, and multiplied from the last layer down: R = A'_L ... A'_2 A'_1. Row i of R is how
// much position i's final representation draws on each input token.
Tensor rollout(const std::vector<Tensor>& layers);

// For each row of a [Tq, Tk] matrix, the column of its largest value (the first of ties).
std::vector<int64_t> argmax_rows(const Tensor& matrix);

// Each token's share of a pooled representation from the rollout [T, T]: row 0 for `cls` pooling,
// the mean of the rows for `mean` pooling (and for `max`, whose winners differ per feature: every
// token may feed it, so all rows count alike); for `attention` pooling, the rows weighted by the
// pooling's weights over the tokens (query_weights, one per row). Sums to 1.
std::vector<float> token_importance(const Tensor& rollout, models::Pooling pooling,
                                    const std::vector<float>& query_weights = {});

}  // namespace gaze::explain
