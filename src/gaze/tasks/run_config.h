// The configuration of a training run, as written in YAML (`gaze train run.yaml`): the task, the
// data files and columns, the tokenizer, the model and the training settings, resolved into typed
// structs with defaults. Unknown keys and wrong types are errors with the file, line and valid keys.
#pragma once

#include <string>
#include <vector>

#include "gaze/io/yaml_config.h"
#include "gaze/models/transformer_models.h"
#include "gaze/text/tokenizer.h"
#include "gaze/train/trainer.h"

namespace gaze::tasks {

struct DataConfig {
  std::string format = "auto";  // tsv | jsonl | auto (by file name)
  std::string train, dev, test;  // files; dev and test may be empty
  std::string split = "none";    // none | modulo10: split `train` by row (i%10: 0 test, 1 dev)
  std::string text_column = "text", label_column = "label";
  int64_t max_length = 256;  // tokens per text; longer texts are cut (and counted)
};

struct RunConfig {
  std::string task = "classify";
  std::string output = "runs/classify";
  DataConfig data;
  text::TokenizerOptions tokenizer;
  train::TrainOptions train;
  models::ClassifierConfig classifier;  // task classify: the `model` section
};

// The schema of `c` for its task (the `model` section depends on it).
config::Section run_schema(RunConfig& c);
// Reads `path`, applies `--set key=value` overrides and checks the result.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// The same from YAML text (tests; `source` names it in messages).
RunConfig parse_run_config(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides = {});
std::string dump_run_config(const RunConfig& c);

}  // namespace gaze::tasks
