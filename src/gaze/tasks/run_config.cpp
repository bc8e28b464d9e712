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
  const std::vector<std::string> derived = {"vocab_size", "num_classes",    "num_tags",
                                            "pad_id",     "src_vocab_size", "tgt_vocab_size"};
  std::erase_if(all, [&](const config::Field& f) {
    return std::find(derived.begin(), derived.end(), f.name) != derived.end();
  });
  return all;
}

// A scalar `key` (dotted: "model.architecture") named in the YAML text or in an override.
std::string peek(const std::string& yaml, const std::string& source,
                 const std::vector<std::string>& overrides, const std::string& key,
                 const std::string& fallback) {
  std::string value = fallback;
  try {
    YAML::Node node = YAML::Load(yaml);
    const size_t dot = key.find('.');
    if (dot != std::string::npos && node.IsMap()) node = node[key.substr(0, dot)];
    const std::string leaf = dot == std::string::npos ? key : key.substr(dot + 1);
    if (node && node.IsMap() && node[leaf] && node[leaf].IsScalar()) value = node[leaf].Scalar();
  } catch (const YAML::Exception& e) {
    throw DataError(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  for (const std::string& o : overrides)
    if (o.rfind(key + "=", 0) == 0) value = o.substr(key.size() + 1);
  return value;
}

int64_t model_max_positions(const RunConfig& c) {
  if (c.task == "classify")
    return c.classifier.positions == "learned" ? c.classifier.max_positions : -1;
  if (c.task == "tag") return c.tagger.positions == "learned" ? c.tagger.max_positions : -1;
  if (c.architecture == "transformer" && c.seq2seq.positions == "learned")
    return c.seq2seq.max_positions;
  return -1;
}

void check(const RunConfig& c, const std::string& source) {
  GAZE_CHECK(!c.data.train.empty(), DataError, "{}: data.train is required (the training file)",
             source);
  GAZE_CHECK(c.data.split == "modulo10" || !c.data.dev.empty(), DataError,
             "{}: data.dev is required to validate and pick the best checkpoint{}", source,
             c.task == "classify" ? " (or set data.split: modulo10 to split data.train)" : "");
  GAZE_CHECK(c.data.split == "none" || (c.data.dev.empty() && c.data.test.empty()), DataError,
             "{}: data.split: modulo10 takes dev and test from data.train; remove data.dev and "
             "data.test",
             source);
  GAZE_CHECK(!c.output.empty(), DataError, "{}: output (the run folder) must not be empty", source);
  const int64_t positions = model_max_positions(c);
  const int64_t longest = c.task == "translate"
                              ? std::max(c.data.max_length + 1, c.data.max_target_length + 1)
                              : c.data.max_length;
  GAZE_CHECK(positions < 0 || longest <= positions, DataError,
             "{}: data.max_length ({}) exceeds model.max_positions ({}), the learned position "
             "table; raise model.max_positions or lower data.max_length",
             source, longest, positions);
  if (c.task == "translate") {
    const auto& d = c.data;
    auto paired = [&](const std::string& a, const std::string& b, const char* name) {
      GAZE_CHECK(b.empty() || !a.empty(), DataError,
                 "{}: data.{}_target is set but data.{} (its source file) is not", source, name,
                 name);
    };
    paired(d.train, d.train_target, "train");
    paired(d.dev, d.dev_target, "dev");
    paired(d.test, d.test_target, "test");
  }
  const auto metrics = task_metrics(c.task);
  GAZE_CHECK(std::find(metrics.begin(), metrics.end(), c.train.metric) != metrics.end(), DataError,
             "{}: train.metric must be one of {} for task {}; got '{}'", source,
             fmt::join(metrics, ", "), c.task, c.train.metric);
  GAZE_CHECK(c.task != "translate" || c.train.class_weights == "none", DataError,
             "{}: train.class_weights applies to classification and tagging, not translation",
             source);
  GAZE_CHECK(c.decode.nbest <= c.decode.beam_size, DataError,
             "{}: decode.nbest ({}) cannot exceed decode.beam_size ({})", source, c.decode.nbest,
             c.decode.beam_size);
}

config::Section tokenizer_section(const std::string& name, text::TokenizerOptions& t,
                                  bool shared_kind) {
  std::vector<std::string> kinds = {"sentencepiece", "word", "char"};
  if (shared_kind) kinds.insert(kinds.begin(), "shared");
  return {name,
          {field("kind", t.kind, kinds), field("model", t.model),
           field("model_type", t.model_type, {"unigram", "bpe"}),
           field("vocab_size", t.vocab_size, 0), field("min_count", t.min_count, 1),
           field("character_coverage", t.character_coverage, 0.5, 1.0),
           field("lowercase", t.lowercase)},
          {}};
}

}  // namespace

std::vector<std::string> task_metrics(const std::string& task) {
  if (task == "tag") return {"f1", "accuracy", "loss"};
  if (task == "translate") return {"bleu", "chrf", "wer", "per", "loss"};
  return {"accuracy", "macro_f1", "loss"};
}

std::vector<config::Field> decode_fields(decode::SearchOptions& o) {
  return {field("method", o.method, {"beam", "greedy"}),
          field("beam_size", o.beam_size, 1),
          field("length_penalty", o.length_penalty, -10.0, 10.0),
          field("max_length_ratio", o.max_length_ratio, 0.0, 1000.0),
          field("max_length_offset", o.max_length_offset, 0),
          field("nbest", o.nbest, 1)};
}

config::Section run_schema(RunConfig& c) {
  Section root;
  root.fields = {field("task", c.task, {"classify", "tag", "translate"}),
                 field("output", c.output)};
  DataConfig& d = c.data;
  if (c.task == "classify") {
    root.add({"data",
              {field("format", d.format, {"auto", "tsv", "jsonl"}), field("train", d.train),
               field("dev", d.dev), field("test", d.test),
               field("split", d.split, {"none", "modulo10"}), field("text_column", d.text_column),
               field("label_column", d.label_column), field("max_length", d.max_length, 1)},
              {}});
  } else if (c.task == "tag") {
    root.add({"data",
              {field("train", d.train), field("dev", d.dev), field("test", d.test),
               field("token_column", d.token_column), field("tag_column", d.tag_column),
               field("scheme", d.scheme, {"auto", "iob2", "bioes", "none"}),
               field("unknown_tags", d.unknown_tags, {"error", "wrong"}),
               field("max_length", d.max_length, 1)},
              {}});
  } else {
    root.add(
        {"data",
         {field("format", d.format, {"auto", "tsv", "jsonl"}), field("train", d.train),
          field("dev", d.dev), field("test", d.test), field("train_target", d.train_target),
          field("dev_target", d.dev_target), field("test_target", d.test_target),
          field("source_column", d.source_column), field("target_column", d.target_column),
          field("max_length", d.max_length, 1), field("max_target_length", d.max_target_length, 1)},
         {}});
  }
  root.add(tokenizer_section("tokenizer", c.tokenizer, false));
  if (c.task == "translate")
    root.add(tokenizer_section("target_tokenizer", c.target_tokenizer, true));
  if (c.task == "classify") {
    root.add({"model", model_fields(models::config_fields(c.classifier)), {}});
  } else if (c.task == "tag") {
    root.add({"model", model_fields(models::config_fields(c.tagger)), {}});
  } else {
    auto fields = c.architecture == "rnn" ? model_fields(models::config_fields(c.rnn))
                                          : model_fields(models::config_fields(c.seq2seq));
    fields.insert(fields.begin(), field("architecture", c.architecture, {"transformer", "rnn"}));
    root.add({"model", fields, {}});
    root.add({"decode", decode_fields(c.decode), {}});
  }
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
             field("class_weights", r.class_weights, {"none", "sqrt", "balanced"}),
             field("init_from", r.init_from),
             field("eval_every", r.eval_every, 0),
             field("metric", r.metric, task_metrics(c.task)),
             field("patience", r.patience, 0),
             field("log_every", r.log_every, 1),
             field("threads", r.threads, 0)},
            {}});
  return root;
}

RunConfig parse_run_config(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides) {
  RunConfig c;
  c.task = peek(yaml, source, overrides, "task", "classify");
  const auto tasks = {"classify", "tag", "translate"};
  GAZE_CHECK(std::find(tasks.begin(), tasks.end(), c.task) != tasks.end(), DataError,
             "{}: task '{}' is not available; valid tasks: classify, tag, translate", source,
             c.task);
  c.architecture = peek(yaml, source, overrides, "model.architecture", "transformer");
  // Task-specific defaults, before the file and the overrides.
  c.output = "runs/" + c.task;
  c.train.metric = task_metrics(c.task)[0];
  if (c.task == "translate") c.target_tokenizer.kind = "shared";
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
