// The options of the task layer, each declared once as typed fields: the run's data section, and
// what predict, eval and explain take. The same declarations drive YAML, task.json, CLI flags
// (cli/field_flags.h) and Python keyword arguments.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "gaze/core/enums.h"
#include "gaze/data/classification.h"
#include "gaze/decode/search.h"
#include "gaze/explain/attribution.h"
#include "gaze/io/config.h"

namespace gaze::tasks {

// embed: a sentence encoder (an imported pretrained model); it predicts embeddings, and is not
// trained itself but fine-tuned as a classifier or tagger (model.pretrained).
enum class TaskKind { classify, tag, translate, embed };
GAZE_ENUM_NAMES(TaskKind, {TaskKind::classify, "classify"}, {TaskKind::tag, "tag"},
                {TaskKind::translate, "translate"}, {TaskKind::embed, "embed"})

// classify: split data.train by row (0 test, 1 dev, the rest train).
enum class DataSplit { none, modulo10 };
GAZE_ENUM_NAMES(DataSplit, {DataSplit::none, "none"}, {DataSplit::modulo10, "modulo10"})
// tag: how tags form entities (detect: from the training tags; none: no entities, token accuracy).
enum class TagScheme { detect, iob2, bioes, none };
GAZE_ENUM_NAMES(TagScheme, {TagScheme::detect, "auto"}, {TagScheme::iob2, "iob2"},
                {TagScheme::bioes, "bioes"}, {TagScheme::none, "none"})
// tag: gold tags of dev/test data that training never saw: an error, or scored as wrong.
enum class UnknownTags { error, wrong };
GAZE_ENUM_NAMES(UnknownTags, {UnknownTags::error, "error"}, {UnknownTags::wrong, "wrong"})
// tag: how the pieces of a word decide its tag (Hugging Face's aggregation strategies).
enum class Aggregation { simple, first, average, max };
GAZE_ENUM_NAMES(Aggregation, {Aggregation::simple, "simple"}, {Aggregation::first, "first"},
                {Aggregation::average, "average"}, {Aggregation::max, "max"})

struct DataConfig {
  data::FileFormat format = data::FileFormat::detect;        // classify, translate
  std::string train, dev, test;                              // files; dev and test may be empty
  DataSplit split = DataSplit::none;                         // classify
  std::string text_column = "text", label_column = "label";  // classify
  // classify: a name for labels as the data writes them ({"0": "negative"}); predictions, reports
  // and explanations use the names, and files scored later may use either.
  std::map<std::string, std::string> label_names;
  int64_t token_column = 0, tag_column = -1;                       // tag: CoNLL columns (0-based)
  TagScheme scheme = TagScheme::detect;                            // tag
  UnknownTags unknown_tags = UnknownTags::error;                   // tag
  std::string source_column = "source", target_column = "target";  // translate: TSV/JSONL
  std::string train_target, dev_target, test_target;  // translate: target files aligned by line
  int64_t max_length = 256;                           // tokens per text (translate: per source)
  int64_t max_target_length = 256;                    // translate: target tokens
};
// The `data` keys of `task`.
config::Fields config_fields(DataConfig& d, TaskKind task);

struct PredictOptions {
  int64_t top_k = 0;                              // classify: 0 -> the best label, else a list
  Aggregation aggregation = Aggregation::simple;  // tag
  bool scores = false, alignment = false;         // translate: add scores / the alignment
  int64_t alignment_layer = -1;  // translate, Transformer: the decoder layer (negative: from end)
  decode::SearchOptions search;  // translate (a model's defaults: its decode section)
};
config::Fields config_fields(PredictOptions& o);
// The predict options that mean something for a model of `task` (classify: top_k; tag:
// aggregation; translate: scores, alignment and the decoding options; embed: none).
config::Fields predict_fields(PredictOptions& o, TaskKind task);

struct ExplainOptions {
  std::vector<int64_t> layers, heads;  // to capture (empty = all; negative layers from the end)
  // translate, Transformer: the cross-attention layer of the alignment (negative: from the end;
  // -1 with a layer filter: the last layer captured). Its captured heads are averaged.
  int64_t alignment_layer = -1;
  decode::SearchOptions search;  // translate
  // classify: attribution beside the attention (explain/attribution.h).
  explain::Method method = explain::Method::attention;
  int64_t steps = 64;  // Integrated Gradients' intervals
  explain::Baseline baseline = explain::Baseline::zero;
  bool faithfulness = false;  // deletion/insertion curves of every method (implied by method all)
  std::string target;         // the class explained (default: the predicted one)
  bool words = false;         // aggregate subword pieces to words (explain/words.h)
};
config::Fields config_fields(ExplainOptions& o);
// The explain options that mean something for a model of `task` (the alignment and decoding
// options only for translation).
config::Fields explain_fields(ExplainOptions& o, TaskKind task);

// `gaze eval`: how to read a labelled file (the model folder's settings unless overridden).
struct EvalOptions {
  DataConfig data;               // format and columns (classify, translate), unknown_tags (tag)
  std::string target;            // translate: the target file, aligned by line with the data file
  decode::SearchOptions search;  // translate
};
// The keys of `gaze eval` for a model of `task`.
config::Fields config_fields(EvalOptions& o, TaskKind task);

}  // namespace gaze::tasks
