#include "gaze/tasks/options.h"

namespace gaze::tasks {

using config::field;

config::Fields config_fields(DataConfig& d, TaskKind task) {
  const auto format =
      field("format", d.format)
          .describe("tsv, csv, jsonl or auto (by file name: .csv, .jsonl/.json, else TSV)");
  const config::Fields files = {field("train", d.train), field("dev", d.dev),
                                field("test", d.test)};
  const auto max_length = field("max_length", d.max_length, 1, config::kMaxSize);
  switch (task) {
    case TaskKind::classify:
      return config::join(
          config::join({format}, files),
          {field("split", d.split),
           field("text_column", d.text_column).describe("classification: the text column/field"),
           field("label_column", d.label_column).describe("classification: the label column/field"),
           field("label_names", d.label_names, 4096)
               .describe("classification: names for the labels as the data writes them, e.g. "
                         "{0: negative, 1: positive}"),
           max_length});
    case TaskKind::tag:
      return config::join(
          files, {field("token_column", d.token_column), field("tag_column", d.tag_column),
                  field("scheme", d.scheme),
                  field("unknown_tags", d.unknown_tags)
                      .describe("tagging: gold tags the model was not trained on are an error, or "
                                "scored as wrong predictions"),
                  max_length});
    case TaskKind::translate:
      return config::join(
          config::join({format}, files),
          {field("train_target", d.train_target), field("dev_target", d.dev_target),
           field("test_target", d.test_target),
           field("source_column", d.source_column).describe("translation: the source column/field"),
           field("target_column", d.target_column).describe("translation: the target column/field"),
           max_length, field("max_target_length", d.max_target_length, 1, config::kMaxSize)});
    case TaskKind::embed:
      return {max_length};
  }
  return {};
}

namespace {
// What predict and explain share for translation: the alignment's layer and the decoding options.
config::Fields translation_fields(int64_t& alignment_layer, const char* layer_default,
                                  decode::SearchOptions& search) {
  return config::join({field("alignment_layer", alignment_layer)
                           .describe(std::string("translation, Transformer: the decoder layer "
                                                 "whose cross-attention (averaged over heads) is "
                                                 "the alignment; negative counts from the end "
                                                 "(default: ") +
                                     layer_default + ")")},
                      decode::config_fields(search));
}
// `fields` but the one called `name` (explain's --method is the attribution method; its
// translations are always beam-searched, --beam-size 1 being greedy's choices).
config::Fields without(config::Fields fields, const std::string& name) {
  std::erase_if(fields, [&](const config::Field& f) { return f.name == name; });
  return fields;
}
}  // namespace

config::Fields config_fields(PredictOptions& o) {
  return config::join(
      {field("top_k", o.top_k, 1).describe("classification: the K most likely labels, as a list"),
       field("aggregation", o.aggregation).describe("tagging: how a word's pieces decide its tag"),
       field("scores", o.scores)
           .describe("translation: add the hypothesis score and log-probability"),
       field("alignment", o.alignment)
           .describe("translation: add the source-target alignment (attention and argmax)")},
      translation_fields(o.alignment_layer, "the last", o.search));
}

config::Fields config_fields(ExplainOptions& o) {
  return config::join(
      {field("layers", o.layers).describe("layers to capture, e.g. 0,2 or -1 (default: all)"),
       field("heads", o.heads)
           .describe("heads to capture, e.g. 1,3 (default: all); also one PNG per head"),
       field("method", o.method)
           .describe("classification: attribution beside the attention (all: every method and "
                     "the faithfulness curves)"),
       field("steps", o.steps, 1, 4096).describe("integrated_gradients: integration intervals"),
       field("baseline", o.baseline).describe("integrated_gradients: the baseline embeddings"),
       field("faithfulness", o.faithfulness)
           .describe("classification: deletion and insertion curves of each method"),
       field("target", o.target)
           .describe("classification: the label explained (default: the predicted one)"),
       field("words", o.words)
           .describe("aggregate subword pieces to words (attention received summed, paid "
                     "averaged)")},
      without(translation_fields(o.alignment_layer, "the last captured", o.search), "method"));
}

config::Fields predict_fields(PredictOptions& o, TaskKind task) {
  config::Fields all = config_fields(o);
  switch (task) {
    case TaskKind::classify:
      return config::select(all, {"top_k"});
    case TaskKind::tag:
      return config::select(all, {"aggregation"});
    case TaskKind::translate: {
      config::Fields out;
      for (auto& f : all)
        if (f.name != "top_k" && f.name != "aggregation") out.push_back(std::move(f));
      return out;
    }
    case TaskKind::embed:
      break;
  }
  return {};
}

config::Fields explain_fields(ExplainOptions& o, TaskKind task) {
  config::Fields all = config_fields(o);
  if (task == TaskKind::classify)
    return config::select(
        all, {"layers", "heads", "method", "steps", "baseline", "faithfulness", "target", "words"});
  if (task == TaskKind::translate) {
    config::Fields out;
    for (auto& f : all)
      if (f.name != "target") out.push_back(std::move(f));
    return out;
  }
  if (task == TaskKind::tag)
    return config::select(all, {"layers", "heads", "words", "method", "steps", "baseline"});
  return config::select(all, {"layers", "heads", "words"});
}

config::Fields config_fields(EvalOptions& o, TaskKind task) {
  config::Fields data = config_fields(o.data, task);
  switch (task) {
    case TaskKind::classify:
      return config::select(data, {"format", "text_column", "label_column"});
    case TaskKind::tag:
      return config::select(data, {"unknown_tags"});
    case TaskKind::translate:
      return config::join(
          config::join(
              config::select(data, {"format", "source_column", "target_column"}),
              {field("target", o.target)
                   .describe("translation: the target file, aligned line by line with --data")}),
          decode::config_fields(o.search));
    case TaskKind::embed:
      break;
  }
  return {};
}

}  // namespace gaze::tasks
