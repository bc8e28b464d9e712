// What the training loop needs from a task: the model, the training examples' lengths (for
// batching), the loss of a batch, validation metrics, and the files a model folder needs besides
// the weights. Classification, tagging and translation each implement it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gaze/core/tensor.h"
#include "gaze/models/model.h"

namespace gaze::train {

class TrainableTask {
 public:
  virtual ~TrainableTask() = default;
  virtual models::Model& model() = 0;
  // Tokens per training example (batching groups similar lengths).
  virtual std::vector<int64_t> train_lengths() const = 0;
  // The loss of a batch of training examples (indices): a mean, what it divides by, and the tokens
  // the batch holds. Data-parallel training weighs each rank's mean by its divisor, so that the
  // ranks together learn what one process learns from the whole batch.
  struct BatchLoss {
    Tensor mean;
    double divisor = 0;  // the targets' count (or summed class weights; a CRF's words)
    int64_t tokens = 0;
  };
  virtual BatchLoss loss(const std::vector<int64_t>& batch, double label_smoothing) = 0;
  // Validation in parts, for data-parallel training: part p of n scores the validation examples
  // whose index is p modulo n and returns what merging needs (text, passed between processes);
  // validate_merge turns all the parts into metrics, e.g. {"accuracy", "macro_f1", "loss"}, the
  // same as one process over all examples.
  virtual std::string validate_part(int64_t part, int64_t parts) = 0;
  virtual std::map<std::string, double> validate_merge(const std::vector<std::string>& parts) = 0;
  std::map<std::string, double> validate() { return validate_merge({validate_part(0, 1)}); }
  // Writes everything a model folder needs besides config.json and the weights.
  virtual void save_assets(const std::string& dir) const = 0;
};

}  // namespace gaze::train
