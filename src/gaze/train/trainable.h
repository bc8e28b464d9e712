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
  // The mean loss over a batch of training examples (indices), with the number of tokens it holds.
  virtual Tensor loss(const std::vector<int64_t>& batch, double label_smoothing,
                      int64_t* tokens) = 0;
  // Metrics on the validation data, e.g. {"accuracy", "macro_f1", "loss"}.
  virtual std::map<std::string, double> validate() = 0;
  // Writes everything a model folder needs besides config.json and the weights.
  virtual void save_assets(const std::string& dir) const = 0;
};

}  // namespace gaze::train
