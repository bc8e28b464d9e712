// The configuration of a training run, as written in YAML (`gaze train run.yaml`): the task, the
// data files and columns, the tokenizer(s), the model and the training settings, resolved into
// typed structs with defaults. Unknown keys and wrong types are errors with the file, line and
// valid keys. Which keys exist depends on the task (classify, tag, translate).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gaze/decode/search.h"
#include "gaze/io/yaml_config.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/tasks/options.h"
#include "gaze/text/tokenizer.h"
#include "gaze/train/trainer.h"

namespace gaze::tasks {

struct RunConfig {
  TaskKind task = TaskKind::classify;
  std::string output = "runs/classify";
  DataConfig data;
  text::TokenizerOptions tokenizer;         // translate: the source side (and the target if shared)
  text::TokenizerOptions target_tokenizer;  // translate: kind "shared" uses `tokenizer` for both
  train::TrainOptions train;
  models::ClassifierConfig classifier;  // task classify: the `model` section
  models::TaggerConfig tagger;          // task tag
  models::Seq2SeqArchitecture architecture = models::Seq2SeqArchitecture::transformer;  // translate
  models::Seq2SeqConfig seq2seq;  // translate, transformer
  models::RnnSeq2SeqConfig rnn;   // translate, rnn
  decode::SearchOptions decode;   // translate: decoding for validation and test
};

// The schema of `c` for its task (the `data` and `model` sections depend on it).
config::Section run_schema(RunConfig& c);
// Reads `path`, applies `--set key=value` overrides and checks the result.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// The same from YAML text (tests; `source` names it in messages).
RunConfig parse_run_config(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides = {});
std::string dump_run_config(const RunConfig& c);
// Every setting of `c` as "section.key" -> its value as JSON text (for comparing two runs).
std::map<std::string, std::string> flat_settings(const RunConfig& c);
// The validation metrics a task offers (the first is its default).
std::vector<train::Metric> task_metrics(TaskKind task);

}  // namespace gaze::tasks
