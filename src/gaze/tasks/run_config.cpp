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
  using models::Positions;
  switch (c.task) {
    case TaskKind::classify:
      return c.classifier.positions == Positions::learned ? c.classifier.max_positions : -1;
    case TaskKind::tag:
      return c.tagger.positions == Positions::learned ? c.tagger.max_positions : -1;
    case TaskKind::translate:
      return c.architecture == models::Seq2SeqArchitecture::transformer &&
                     c.seq2seq.positions == Positions::learned
                 ? c.seq2seq.max_positions
                 : -1;
    case TaskKind::embed:
      break;
  }
  return -1;
}

void check(const RunConfig& c, const std::string& source) {
  const bool split = c.data.split == DataSplit::modulo10;
  GAZE_CHECK(!c.data.train.empty(), DataError, "{}: data.train is required (the training file)",
             source);
  GAZE_CHECK(
      split || !c.data.dev.empty(), DataError,
      "{}: data.dev is required to validate and pick the best checkpoint{}", source,
      c.task == TaskKind::classify ? " (or set data.split: modulo10 to split data.train)" : "");
  GAZE_CHECK(!split || (c.data.dev.empty() && c.data.test.empty()), DataError,
             "{}: data.split: modulo10 takes dev and test from data.train; remove data.dev and "
             "data.test",
             source);
  GAZE_CHECK(!c.output.empty(), DataError, "{}: output (the run folder) must not be empty", source);
  const int64_t positions = model_max_positions(c);
  const int64_t longest = c.task == TaskKind::translate
                              ? std::max(c.data.max_length + 1, c.data.max_target_length + 1)
                              : c.data.max_length;
  GAZE_CHECK(positions < 0 || longest <= positions, DataError,
             "{}: data.max_length ({}) exceeds model.max_positions ({}), the learned position "
             "table; raise model.max_positions or lower data.max_length",
             source, longest, positions);
  if (c.task == TaskKind::translate) {
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
  GAZE_CHECK(c.task != TaskKind::translate || c.train.class_weights == train::ClassWeights::none,
             DataError,
             "{}: train.class_weights applies to classification and tagging, not translation",
             source);
  GAZE_CHECK(
      c.task != TaskKind::tag || !c.tagger.crf ||
          (c.train.class_weights == train::ClassWeights::none && c.train.label_smoothing == 0.0),
      DataError,
      "{}: model.crf trains by the CRF's likelihood; train.class_weights and "
      "train.label_smoothing apply to the per-token loss without it (remove them)",
      source);
  GAZE_CHECK(c.decode.nbest <= c.decode.beam_size, DataError,
             "{}: decode.nbest ({}) cannot exceed decode.beam_size ({})", source, c.decode.nbest,
             c.decode.beam_size);
}

// An enumerated key that decides which other keys exist, read before the rest.
template <class E>
void peek_enum(E& v, const std::string& yaml, const std::string& source,
               const std::vector<std::string>& overrides, const std::string& key,
               const char* what) {
  const std::string name = peek(yaml, source, overrides, key, enum_name(v));
  const auto e = enum_from_name<E>(name);
  GAZE_CHECK(e.has_value(), DataError, "{}: {} '{}' is not available; valid {}: {}", source, key,
             name, what, fmt::join(enum_name_list<E>(), ", "));
  v = *e;
}

}  // namespace

std::map<std::string, std::string> flat_settings(const RunConfig& c) {
  RunConfig copy = c;
  std::map<std::string, std::string> out;
  const Section root = run_schema(copy);
  for (const auto& f : root.fields) out[f.name] = f.write();
  for (const auto& s : root.sections)
    for (const auto& f : s.fields) out[s.name + "." + f.name] = f.write();
  return out;
}

std::vector<train::Metric> task_metrics(TaskKind task) {
  using train::Metric;
  switch (task) {
    case TaskKind::tag:
      return {Metric::f1, Metric::accuracy, Metric::loss};
    case TaskKind::translate:
      return {Metric::bleu, Metric::chrf, Metric::wer, Metric::per, Metric::loss};
    case TaskKind::classify:
    case TaskKind::embed:
      break;
  }
  return {Metric::accuracy, Metric::macro_f1, Metric::loss};
}

config::Section run_schema(RunConfig& c) {
  Section root;
  root.fields = {field("task", c.task), field("output", c.output)};
  root.add({"data", config_fields(c.data, c.task), {}});
  root.add({"tokenizer", text::config_fields(c.tokenizer), {}});
  if (c.task == TaskKind::translate)
    root.add({"target_tokenizer", text::config_fields(c.target_tokenizer, /*shared=*/true), {}});
  switch (c.task) {
    case TaskKind::classify:
      root.add({"model", model_fields(models::config_fields(c.classifier)), {}});
      break;
    case TaskKind::tag:
      root.add({"model", model_fields(models::config_fields(c.tagger)), {}});
      break;
    case TaskKind::translate: {
      auto fields = c.architecture == models::Seq2SeqArchitecture::rnn
                        ? model_fields(models::config_fields(c.rnn))
                        : model_fields(models::config_fields(c.seq2seq));
      fields.insert(fields.begin(), field("architecture", c.architecture));
      root.add({"model", fields, {}});
      root.add({"decode", decode::config_fields(c.decode), {}});
      break;
    }
    case TaskKind::embed:
      break;
  }
  root.add({"train", train::config_fields(c.train, task_metrics(c.task)), {}});
  return root;
}

RunConfig parse_run_config(const std::string& yaml, const std::string& source,
                           const std::vector<std::string>& overrides) {
  RunConfig c;
  // The task and the architecture decide which keys exist: read them first.
  peek_enum(c.task, yaml, source, overrides, "task", "tasks");
  GAZE_CHECK(c.task != TaskKind::embed, DataError,
             "{}: task embed is not trained: `gaze import use-lite` makes a sentence encoder, and "
             "task: classify or tag with model.pretrained fine-tunes one",
             source);
  peek_enum(c.architecture, yaml, source, overrides, "model.architecture", "architectures");
  // Task-specific defaults, before the file and the overrides.
  c.output = "runs/" + enum_name(c.task);
  c.train.metric = task_metrics(c.task)[0];
  if (c.task == TaskKind::translate) c.target_tokenizer.kind = text::TokenizerKind::shared;
  const Section schema = run_schema(c);
  config::read_yaml(yaml, source, schema);
  for (const std::string& o : overrides) config::apply_override(schema, o);
  check(c, source);
  return c;
}

RunConfig load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  return parse_run_config(io::read_file(path, io::kMaxMetadataBytes), path, overrides);
}

std::string dump_run_config(const RunConfig& c) {
  RunConfig copy = c;
  return config::dump_yaml(run_schema(copy));
}

}  // namespace gaze::tasks
