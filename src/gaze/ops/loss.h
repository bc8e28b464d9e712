// Loss functions with autograd, as torch.nn.functional: cross_entropy (class-index targets, class
// weights, ignore_index, label smoothing) and mse_loss, each with reduction none | mean | sum.
#pragma once

#include <string_view>

#include "gaze/core/enums.h"
#include "gaze/core/tensor.h"

namespace gaze {

enum class Reduction { none, mean, sum };
GAZE_ENUM_NAMES(Reduction, {Reduction::none, "none"}, {Reduction::mean, "mean"},
                {Reduction::sum, "sum"})
Reduction parse_reduction(std::string_view s);  // "none" | "mean" | "sum"

struct CrossEntropyOptions {
  Tensor weight;                // [C] class weights, or undefined
  int64_t ignore_index = -100;  // targets equal to this contribute nothing
  Reduction reduction = Reduction::mean;
  double label_smoothing = 0.0;  // in [0, 1]
};

// input: logits [N, C], [C] or [N, C, d1, ...]; target: int64 [N], [] or [N, d1, ...] with values
// in [0, C) or ignore_index. "mean" divides by the summed weight of the non-ignored targets (their
// count without weights), as torch does; all targets ignored gives NaN, as in torch.
Tensor cross_entropy(const Tensor& input, const Tensor& target,
                     const CrossEntropyOptions& options = {});

// What "mean" divides cross_entropy's sum by: the summed weight of the non-ignored targets (their
// count without weights). Data-parallel training weighs each rank's mean loss by it.
double cross_entropy_divisor(const Tensor& target, const CrossEntropyOptions& options = {});

// Mean (or sum, or elementwise) squared difference; target must broadcast to input's shape.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

}  // namespace gaze
