// The configuration of a training run, as written in YAML (`gaze train run.yaml`): the task, the
// data files and columns, the tokenizer(s), the model and the training settings, resolved into
// typed structs with defaults. Unknown keys and wrong types are errors with the file, line and
// valid keys. Which keys exist depends on the task (classify, tag, translate).
#pragma once

#include <string>
#include <vector>

#include "gaze/decode/search.h"
#include "gaze/io/yaml_config.h"
#include "gaze/models/rnn_seq2seq.h"
#include "gaze/models/transformer_models.h"
#include "gaze/text/tokenizer.h"
#include "gaze/train/trainer.h"

namespace gaze::tasks {

struct DataConfig {
  std::string format = "auto";   // classify/translate: tsv | jsonl | auto (by file name)
  std::string train, dev, test;  // files; dev and test may be empty
  std::string split = "none";    // classify: none | modulo10 (split `train` by row: 0 test, 1 dev)
  std::string text_column = "text", label_column = "label";  // classify
  int64_t token_column = 0, tag_column = -1;                 // tag: CoNLL columns (0-based)
  std::string scheme = "auto";  // tag: auto | iob2 | bioes | none (no entities: token accuracy)
  std::string unknown_tags = "error";  // tag: gold tags of dev/test not in training: error | wrong
  std::string source_column = "source", target_column = "target";  // translate: TSV/JSONL
  std::string train_target, dev_target, test_target;  // translate: target files aligned by line
  int64_t max_length = 256;                           // tokens per text (translate: per source)
  int64_t max_target_length = 256;                    // translate: target tokens
};

struct RunConfig {
  std::string task = "classify";  // classify | tag | translate
  std::string output = "runs/classify";
  DataConfig data;
  text::TokenizerOptions tokenizer;         // translate: the source side (and the target if shared)
  text::TokenizerOptions target_tokenizer;  // translate: kind "shared" uses `tokenizer` for both
  train::TrainOptions train;
  models::ClassifierConfig classifier;       // task classify: the `model` section
  models::TaggerConfig tagger;               // task tag
  std::string architecture = "transformer";  // task translate: transformer | rnn
  models::Seq2SeqConfig seq2seq;             // translate, transformer
  models::RnnSeq2SeqConfig rnn;              // translate, rnn
  decode::SearchOptions decode;              // translate: decoding for validation and test
};

// The schema of `c` for its task (the `data` and `model` sections depend on it).
config::Section run_schema(RunConfig& c);
// Reads `path`, applies `--set key=value` overrides and checks the result.
RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides);
// The same from YAML text (tests; `source` names it in messages).
RunConfig parse_run_config(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides = {});
std::string dump_run_config(const RunConfig& c);
// The validation metrics a task offers (the first is its default).
std::vector<std::string> task_metrics(const std::string& task);
// The decoding keys, for the `decode` section and the CLI.
std::vector<config::Field> decode_fields(decode::SearchOptions& o);

}  // namespace gaze::tasks
