#include "gaze/tasks/run_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>

#include "gaze/core/error.h"
#include "gaze/io/files.h"

namespace gaze::tasks {
namespace {

using config::field;
using config::Section;

// The model's own configuration minus what the data decides (vocabulary, classes, padding id).
std::vector<config::Field> model_fields(std::vector<config::Field> all) {
  const std::vector<std::string> derived = {"vocab_size", "num_classes", "num_tags", "pad_id"};
  std::erase_if(all, [&](const config::Field& f) {
    return std::find(derived.begin(), derived.end(), f.name) != derived.end();
  });
  return all;
}

// The task named in the YAML text or in a `task=` override (default: classify).
std::string peek_task(const std::string& yaml, const std::string& source,
                      const std::vector<std::string>& overrides) {
  std::string task = "classify";
  try {
    const YAML::Node doc = YAML::Load(yaml);
    if (doc.IsMap() && doc["task"] && doc["task"].IsScalar()) task = doc["task"].Scalar();
  } catch (const YAML::Exception& e) {
    throw DataError(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  for (const std::string& o : overrides)
    if (o.rfind("task=", 0) == 0) task = o.substr(5);
  return task;
}

void check(const RunConfig& c, const std::string& source) {
  GAZE_CHECK(!c.data.train.empty(), DataError, "{}: data.train is required (the training file)",
             source);
  GAZE_CHECK(c.data.split == "modulo10" || !c.data.dev.empty(), DataError,
             "{}: data.dev is required to validate and pick the best checkpoint (or set "
             "data.split: modulo10 to split data.train)",
             source);
  GAZE_CHECK(c.data.split == "none" || (c.data.dev.empty() && c.data.test.empty()), DataError,
             "{}: data.split: modulo10 takes dev and test from data.train; remove data.dev and "
             "data.test",
             source);
  GAZE_CHECK(!c.output.empty(), DataError, "{}: output (the run folder) must not be empty", source);
  GAZE_CHECK(c.classifier.positions != "learned" || c.data.max_length <= c.classifier.max_positions,
             DataError,
             "{}: data.max_length ({}) exceeds model.max_positions ({}), the learned position "
             "table; raise model.max_positions or lower data.max_length",
             source, c.data.max_length, c.classifier.max_positions);
  const std::vector<std::string> metrics = {"accuracy", "macro_f1", "loss"};
  GAZE_CHECK(std::find(metrics.begin(), metrics.end(), c.train.metric) != metrics.end(), DataError,
             "{}: train.metric must be one of accuracy, macro_f1, loss; got '{}'", source,
             c.train.metric);
}

}  // namespace

config::Section run_schema(RunConfig& c) {
  Section root;
  root.fields = {field("task", c.task, {"classify"}), field("output", c.output)};
  DataConfig& d = c.data;
  root.add({"data",
            {field("format", d.format, {"auto", "tsv", "jsonl"}), field("train", d.train),
             field("dev", d.dev), field("test", d.test),
             field("split", d.split, {"none", "modulo10"}), field("text_column", d.text_column),
             field("label_column", d.label_column), field("max_length", d.max_length, 1)},
            {}});
  text::TokenizerOptions& t = c.tokenizer;
  root.add({"tokenizer",
            {field("kind", t.kind, {"sentencepiece", "word", "char"}), field("model", t.model),
             field("model_type", t.model_type, {"unigram", "bpe"}),
             field("vocab_size", t.vocab_size, 0), field("min_count", t.min_count, 1),
             field("character_coverage", t.character_coverage, 0.5, 1.0),
             field("lowercase", t.lowercase)},
            {}});
  root.add({"model", model_fields(models::config_fields(c.classifier)), {}});
  train::TrainOptions& r = c.train;
  root.add({"train",
            {field("seed", r.seed, 0),
             field("epochs", r.epochs, 1),
             field("max_steps", r.max_steps, 0),
             field("batch_tokens", r.batch_tokens, 1),
             field("batch_size", r.batch_size, 1),
             field("optimizer", r.optimizer, {"adamw", "adam", "sgd"}),
             field("lr", r.lr, 0.0, 10.0),
             field("weight_decay", r.weight_decay, 0.0, 10.0),
             field("beta1", r.beta1, 0.0, 1.0),
             field("beta2", r.beta2, 0.0, 1.0),
             field("eps", r.eps, 0.0, 1.0),
             field("momentum", r.momentum, 0.0, 1.0),
             field("schedule", r.schedule, {"constant", "linear", "cosine", "inverse_sqrt"}),
             field("warmup_steps", r.warmup_steps, 0),
             field("min_lr_ratio", r.min_lr_ratio, 0.0, 1.0),
             field("clip_norm", r.clip_norm, 0.0, 1e9),
             field("label_smoothing", r.label_smoothing, 0.0, 1.0),
             field("eval_every", r.eval_every, 0),
             field("metric", r.metric, {"accuracy", "macro_f1", "loss"}),
             field("patience", r.patience, 0),
             field("log_every", r.log_every, 1),
             field("threads", r.threads, 0)},
            {}});
  return root;
}

RunConfig parse_run_config(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides) {
  RunConfig c;
  c.task = peek_task(yaml, source, overrides);
  GAZE_CHECK(c.task == "classify", DataError,
             "{}: task '{}' is not available; valid tasks: classify", source, c.task);
  const Section schema = run_schema(c);
  config::read_yaml(yaml, source, schema);
  for (const std::string& o : overrides) config::apply_override(schema, o);
  check(c, source);
  return c;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_run_config(io::read_file(path), path, overrides);
}

std::string dump_run_config(const RunConfig& c) {
  RunConfig copy = c;
  return config::dump_yaml(run_schema(copy));
}

}  // namespace gaze::tasks
