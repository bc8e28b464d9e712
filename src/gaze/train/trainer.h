// The training loop shared by every task: length-bucketed batches shuffled per epoch from the
// seed, AdamW/Adam/SGD with a warm-up schedule and clipping, validation every N steps or epochs,
// the best and the last checkpoint in the run folder, early stopping, metrics.jsonl, progress
// output, Ctrl-C -> a resumable checkpoint, and exact resumption from one.
#pragma once

#include <cstdio>
#include <string>

#include "gaze/core/precision.h"
#include "gaze/dist/communicator.h"
#include "gaze/io/config.h"
#include "gaze/optim/schedule.h"
#include "gaze/train/trainable.h"

namespace gaze::train {

enum class OptimizerKind { adamw, adam, sgd };
GAZE_ENUM_NAMES(OptimizerKind, {OptimizerKind::adamw, "adamw"}, {OptimizerKind::adam, "adam"},
                {OptimizerKind::sgd, "sgd"})
// Loss weight per class/tag from the training counts: none, sqrt ((N / (K n_k))^0.5) or balanced
// (N / (K n_k), scikit-learn's "balanced").
enum class ClassWeights { none, sqrt, balanced };
GAZE_ENUM_NAMES(ClassWeights, {ClassWeights::none, "none"}, {ClassWeights::sqrt, "sqrt"},
                {ClassWeights::balanced, "balanced"})
// The validation metrics of the tasks (each task offers some; see tasks::task_metrics).
enum class Metric { accuracy, macro_f1, f1, bleu, chrf, wer, per, loss };
GAZE_ENUM_NAMES(Metric, {Metric::accuracy, "accuracy"}, {Metric::macro_f1, "macro_f1"},
                {Metric::f1, "f1"}, {Metric::bleu, "bleu"}, {Metric::chrf, "chrf"},
                {Metric::wer, "wer"}, {Metric::per, "per"}, {Metric::loss, "loss"})
bool higher_is_better(Metric m);

struct TrainOptions {
  int64_t seed = 1;
  int64_t epochs = 10;
  int64_t max_steps = 0;        // 0: as many as the epochs take
  int64_t batch_tokens = 4096;  // padded tokens per batch
  int64_t batch_size = 64;      // examples per batch at most
  OptimizerKind optimizer = OptimizerKind::adamw;
  double lr = 1e-3, weight_decay = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double momentum = 0.9;  // sgd
  optim::ScheduleKind schedule = optim::ScheduleKind::linear;
  int64_t warmup_steps = 100;
  double min_lr_ratio = 0.0;
  double clip_norm = 1.0;  // 0: no clipping
  double label_smoothing = 0.0;
  ClassWeights class_weights = ClassWeights::none;  // classification and tagging
  // A model folder (or run folder) to start from: the weights whose names and shapes match are
  // copied before training (tasks::Task::init_from). Empty: a fresh model.
  std::string init_from;
  // Fine-tuning: freeze the whole backbone, or its embeddings and lowest freeze_layers layers;
  // train the backbone at backbone_lr (0: lr), each layer below its top at layer_lr_decay times the
  // rate of the layer above (1: no decay; embeddings lowest). See param_groups.h.
  bool freeze_backbone = false;
  int64_t freeze_layers = 0;
  double backbone_lr = 0.0, layer_lr_decay = 1.0;
  // An exponential moving average of the weights (optim/average.h), validated and saved in their
  // place: decay per step (0: none; 0.999 averages over roughly the last thousand steps).
  double ema_decay = 0.0;
  // Mixed precision (core/autocast.h): bf16 multiplies the linear layers' bfloat16-rounded inputs
  // and weights (fp32 accumulation, gradients and master weights), as torch.autocast on the CPU;
  // validation stays fp32. Without the CPU instructions: fp32, said once.
  Precision precision = Precision::fp32;
  int64_t eval_every = 0;            // steps between validations; 0: at the end of every epoch
  Metric metric = Metric::accuracy;  // the validation metric that picks the best checkpoint
  int64_t patience = 0;    // validations without improvement before stopping; 0: never stop early
  int64_t log_every = 50;  // steps between log lines when not on a terminal
  // Every save_every steps (0: never) a resumable checkpoint RUN/checkpoint-STEP besides last/;
  // only the keep_last newest are kept (0: all).
  int64_t save_every = 0, keep_last = 0;
  // Also write the training and validation lines of metrics.jsonl as TensorBoard scalars
  // (RUN/events.out.tfevents.*: `tensorboard --logdir RUN`).
  bool tensorboard = false;
  int64_t threads = 0;  // 0: GAZE_NUM_THREADS, else all cores
};

// The `train` section's keys, declared once (YAML, --dump-config, Python); `metrics` narrows
// train.metric to those a task offers.
config::Fields config_fields(TrainOptions& o, const std::vector<Metric>& metrics = {});

struct TrainResult {
  int64_t steps = 0;
  double best_metric = 0;
  int64_t best_step = -1;
  bool interrupted = false, early_stopped = false;
};

// Where a run reads and writes, and with whom it trains.
struct RunPlace {
  std::string output_dir;   // checkpoints in best/ and last/, validations in metrics.jsonl
  std::string resume_dir;   // a checkpoint to continue from; empty: a fresh run
  std::FILE* log = stderr;  // progress and notes
  // Data-parallel training: every rank runs run_training with the same task and options; each
  // takes its share of every global batch, gradients are summed across ranks during backward, and
  // rank 0 alone writes. Null: one process.
  dist::Communicator* comm = nullptr;
};

// Runs (or, with a resume_dir, continues) training. The task's model must already hold the
// resumed weights when resuming.
TrainResult run_training(TrainableTask& task, const TrainOptions& options, const RunPlace& place);

// A rank's share of a global batch: the examples at positions rank, rank + ranks, ... (a batch's
// examples come sorted by length, so every share gets long and short ones alike).
std::vector<int64_t> batch_share(const std::vector<int64_t>& batch, int rank, int ranks);

}  // namespace gaze::train
