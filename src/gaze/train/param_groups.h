// Fine-tuning's parameter groups: which parameters a run trains, and at which learning rate, read
// from their state-dict names — the head (head., crf.) at train.lr; the backbone at
// train.backbone_lr, decayed layer by layer below its top (train.layer_lr_decay) with the
// embeddings lowest; what train.freeze_backbone / freeze_layers freeze is not trained at all.
#pragma once

#include <vector>

#include "gaze/core/named_tensors.h"

namespace gaze::train {

struct TrainOptions;

struct ParamPlan {
  std::vector<Tensor> params;  // the trained ones (requires_grad), in model order
  std::vector<double> scales;  // their learning-rate multipliers
  int64_t frozen = 0;          // tensors frozen by the options (not counting those frozen already)
  int64_t layers = 0;          // backbone layers found
};

// Freezes (requires_grad false) what the options freeze and returns the rest with their scales.
// ValueError when train.freeze_layers exceeds the backbone's layers.
ParamPlan plan_parameters(const NamedTensors& named, const TrainOptions& options);

}  // namespace gaze::train
