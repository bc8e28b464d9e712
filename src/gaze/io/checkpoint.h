// Checkpoints: a directory holding config.json (the model's configuration), model.safetensors (its
// state dict, torch's keys) and, for training, training.safetensors (optimizer state, schedule
// step, RNG states, the trainer's data position) so a resumed run continues exactly.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "gaze/core/named_tensors.h"
#include "gaze/core/rng.h"
#include "gaze/optim/schedule.h"

namespace gaze::nn {
class Module;
}

namespace gaze::io {

struct TrainingState {
  std::string optimizer;  // "SGD", "Adam", "AdamW"
  int64_t optimizer_steps = 0;
  double lr = 0;
  NamedTensors optimizer_tensors;
  int64_t scheduler_step = 0;
  Generator::State rng_init, rng_dropout, rng_data;
  std::string progress = "{}";  // the trainer's own position (JSON): epoch, batch, best metric, ...
};

// Snapshot of an optimizer, its scheduler (may be null) and the default generators.
TrainingState capture_training_state(const optim::Optimizer& optimizer,
                                     const optim::LRScheduler* scheduler,
                                     const std::string& progress_json = "{}");
// Puts them back; the optimizer must be of the same kind over the same parameters.
void restore_training_state(const TrainingState& state, optim::Optimizer& optimizer,
                            optim::LRScheduler* scheduler);

// Writes the checkpoint into `dir` atomically: everything goes to a temporary directory first, then
// replaces `dir`. A crash at any point leaves the previous checkpoint loadable.
// write_extra (optional) adds files of the caller's (a tokenizer, labels) to the temporary
// directory before the swap, so they are part of the same atomic replacement.
void save_checkpoint(const std::string& dir, const nn::Module& model,
                     const std::string& config_json, const TrainingState* training = nullptr,
                     const std::function<void(const std::string& dir)>& write_extra = {});

struct Checkpoint {
  std::string config_json;
  NamedTensors model;
  std::optional<TrainingState> training;
};
// Reads and validates a checkpoint (DataError naming the file on anything malformed).
Checkpoint load_checkpoint(const std::string& dir);

}  // namespace gaze::io
