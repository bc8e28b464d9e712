// Checkpoints: a directory holding config.json (the model's configuration), model.safetensors (its
// state dict, torch's keys) and, for training, training.safetensors (optimizer state, schedule
// step, RNG states, the trainer's data position) so a resumed run continues exactly.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "gaze/core/named_tensors.h"
#include "gaze/core/rng.h"
#include "gaze/kernels/lowp_gemm.h"
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
  // train.ema_decay: the weights the model does not hold (optim::ExponentialAverage's state; the
  // model holds the average), stored as "average.<i>", and the average's update count.
  NamedTensors average_tensors;
  int64_t average_updates = 0;
};

// Snapshot of an optimizer, its scheduler (may be null) and the default generators.
TrainingState capture_training_state(const optim::Optimizer& optimizer,
                                     const optim::LRScheduler* scheduler,
                                     const std::string& progress_json = "{}");
// Puts them back; the optimizer must be of the same kind over the same parameters.
void restore_training_state(const TrainingState& state, optim::Optimizer& optimizer,
                            optim::LRScheduler* scheduler);

// Writes the checkpoint into `dir` atomically: everything goes to `dir.tmp` first, which then
// trades places with `dir` in one atomic rename (RENAME_EXCHANGE; where the file system lacks it,
// two renames whose gap load_checkpoint recovers from). A crash at any point leaves a complete
// checkpoint at `dir`. Only gaze checkpoints are ever replaced or removed: an existing `dir` (or a
// leftover `dir.tmp`, `dir.old`) that is not one, e.g. a run folder or a user's file, is a
// DataError and stays untouched.
// Matrices set to bf16 or int8 (ops/lowp.h) are written in that precision: BF16, or I8 values
// with a float32 "<name>_scale" per row; the metadata's "precision" and "quantized" (a JSON list
// of their names) say so.
// write_extra (optional) adds files of the caller's (a tokenizer, labels) to the temporary
// directory before the swap, so they are part of the same atomic replacement.
void save_checkpoint(const std::string& dir, const nn::Module& model,
                     const std::string& config_json, const TrainingState* training = nullptr,
                     const std::function<void(const std::string& dir)>& write_extra = {});

// The check save_checkpoint makes before writing anything: DataError unless `dir` is absent or a
// gaze checkpoint (callers about to spend time training check their targets first).
void check_checkpoint_target(const std::string& dir);

// Removes the gaze checkpoint at `dir` and any leftovers of an interrupted save (dir.tmp, dir.old);
// DataError, with nothing removed, if one of them is something else.
void remove_checkpoint(const std::string& dir);

struct Checkpoint {
  std::string config_json;
  // Reduced-precision matrices as the float values they stand for; an int8 one's are deferred
  // (Storage::deferred): made from `lowp` only if something reads them.
  NamedTensors model;
  // The matrices a quantized model folder holds in bf16 or int8 (gaze quantize), by name: what
  // ops/lowp.h multiplies by once they are loaded.
  std::map<std::string, std::shared_ptr<const kernels::LowpWeight>> lowp;
  std::optional<TrainingState> training;
};
// Whether the checkpoint in `dir` holds training state (a resumable last/), without reading it.
bool has_training_state(const std::string& dir);
// Reads and validates a checkpoint (DataError naming the file on anything malformed).
Checkpoint load_checkpoint(const std::string& dir);
// The directory that holds the checkpoint saved as `dir`: `dir`, or `dir.old` when a save on a
// file system without RENAME_EXCHANGE was interrupted between its two renames; nullopt if neither
// holds one.
std::optional<std::string> find_checkpoint(const std::string& dir);

}  // namespace gaze::io
