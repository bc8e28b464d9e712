// What `gaze train` does, for the command line and Python alike: resolve the run configuration
// (a file or text, with overrides; or a run to resume), keep the run folder's record, train, and
// score the best checkpoint on the run's test data.
#pragma once

#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "gaze/dist/communicator.h"
#include "gaze/tasks/run_config.h"
#include "gaze/tasks/task.h"

namespace gaze::tasks {

struct TrainRunOptions {
  std::string config;       // a run configuration file (YAML); or
  std::string config_text;  // its text (YAML, or JSON), named by config_source in messages
  std::string config_source = "<config>";
  std::vector<std::string> overrides;  // "key=value", applied in order (--set)
  bool overwrite = false;              // start afresh in an output folder an earlier run left
  std::string resume;                  // a run folder (or a checkpoint in it) to continue
  std::FILE* log = stderr;             // progress and notes
  // Data-parallel training (see train/trainer.h); null: one process. Ranks other than 0 neither
  // touch the run folder nor score the test data.
  dist::Communicator* comm = nullptr;
};

struct TrainRunResult {
  RunConfig config;  // as resolved (output: the run folder)
  train::TrainResult train;
  double seconds = 0;
  std::optional<Report> test;  // rank 0, when the run has test data and was not interrupted
};

// The configuration a run of `options` would use (gaze train --dump-config).
RunConfig resolve_run_config(const TrainRunOptions& options);
// Trains as `gaze train` does; DataError for bad configurations, data or run folders.
TrainRunResult train_run(const TrainRunOptions& options);

}  // namespace gaze::tasks
