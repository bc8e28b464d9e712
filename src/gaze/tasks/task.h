// A task = reader + tokenizer(s) + model + predictor + reporter. What the command line needs from
// one beyond training: its predictor, reports on the run's test data or on a labelled file.
// create/load/resume pick the task from the run configuration or the model folder's task.json.
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "gaze/core/precision.h"
#include "gaze/data/split.h"
#include "gaze/io/config.h"
#include "gaze/tasks/options.h"
#include "gaze/tasks/predictor.h"
#include "gaze/tasks/run_config.h"
#include "gaze/train/trainable.h"

namespace gaze::tasks {

struct Report {
  std::string text, json;  // for people (the reference tools' layouts) and for programs
  int64_t examples = 0;
  // The run's test report also keeps each example: "input" (the text `gaze predict` takes), the
  // gold answer, the prediction and how sure or good it was (RUN/test_predictions.jsonl, and the
  // run report's most confused examples).
  std::vector<nlohmann::json> predictions{};
};

class Task : public train::TrainableTask {
 public:
  virtual TaskKind kind() const = 0;
  std::string name() const { return enum_name(kind()); }
  virtual Predictor& predictor() = 0;
  // The run's test data scored with the current weights; nullopt when the run has none.
  virtual std::optional<Report> test_report() = 0;
  // How evaluate_file reads a file unless told otherwise: as the run read its data.
  virtual EvalOptions eval_defaults() const = 0;
  // Scores a labelled file.
  virtual Report evaluate_file(const std::string& path, const EvalOptions& options) = 0;
  // Scores the dev or test data of the run `c` (gaze eval --split): its data.dev/data.test file,
  // or its part of a fixed split. DataError when the run has none.
  virtual Report evaluate_split(const RunConfig& c, data::Split split, const EvalOptions& options);
  // The inputs the run `c` trained on, as Report::predictions' "input" writes them (gaze eval
  // warns when evaluation rows are among them).
  virtual std::vector<std::string> training_inputs(const RunConfig& c) = 0;
  // Replaces the model's weights by those of a checkpoint folder of the same run (e.g. best/).
  void load_weights(const std::string& dir);
  // train.init_from: copies every weight of another model folder (or run folder: its best/) whose
  // name and shape match this model's (e.g. the encoder of a model trained on another task with
  // the same tokenizer); the others keep their fresh initialisation. Notes go to `log`.
  void init_from(const std::string& dir, std::FILE* log);
};

// A model folder: DIR itself if it holds config.json, else DIR/best (a run folder); DataError
// otherwise.
std::string resolve_model_dir(const std::string& dir);
// A new run for c.task (reads data, builds tokenizers and a fresh model; notes go to `log`).
std::unique_ptr<Task> create_task(const RunConfig& c, std::FILE* log);
// How a model folder is loaded for inference.
struct LoadOptions {
  // The precision its matrices multiply in; unset: the folder's own (fp32, or what gaze quantize
  // wrote). On a CPU without the instructions, fp32 with a one-line notice on `notice`.
  std::optional<Precision> precision;
  std::FILE* notice = stderr;
};
// A trained model folder (task.json names the task); DataError for a sentence encoder (it has no
// data to train or evaluate on: load_predictor).
std::unique_ptr<Task> load_task(const std::string& dir, const LoadOptions& options = {});
// The predictor of any model folder, sentence encoders included (predict, explain, embed).
std::unique_ptr<Predictor> load_predictor(const std::string& dir, const LoadOptions& options = {});
// Sets the precision of a loaded predictor's model as `options` say (see LoadOptions).
void apply_precision(Predictor& predictor, const LoadOptions& options);
// --resume: the run's data with the model and tokenizers of the checkpoint in `dir`.
std::unique_ptr<Task> resume_task(const RunConfig& c, const std::string& dir, std::FILE* log);

// task.json of a model folder: {"task": ..., fields...}. Reading checks the task and reads every
// other key through `fields` (missing keys keep their values, unknown keys are errors).
void write_task_file(const std::string& dir, TaskKind task, const config::Fields& fields);
void read_task_file(const std::string& dir, TaskKind task, const config::Fields& fields);
// A JSON file of a model folder, with a DataError naming it if invalid.
nlohmann::json read_json_file(const std::string& path);
// labels.json, tags.json: a list of at least two names (`what`: "labels").
std::vector<std::string> read_names(const std::string& dir, const std::string& file,
                                    const std::string& what);
void write_json_file(const std::string& path, const nlohmann::json& value);

// Copies into `model` every tensor of `source` with its name, shape and dtype, but those `skip`
// (optional) names; what stays fresh is listed with both shapes when they differ.
struct CopiedWeights {
  std::vector<std::string> copied, fresh;
  int64_t values = 0;  // copied
};
CopiedWeights copy_matching_weights(nn::Module& model, const NamedTensors& source,
                                    const std::function<bool(const std::string&)>& skip = {});

// Loss weights [K] from per-class training counts (train.class_weights: none -> undefined, sqrt,
// balanced). Classes absent from training get weight 0 (they never occur as targets).
Tensor class_weights(const std::vector<int64_t>& counts, train::ClassWeights mode);
// text::train_tokenizer, with progress on `log` when it takes a while (training SentencePiece on a
// corpus: "tokenizer: training sentencepiece (8000 pieces) on 29840 texts ... done in 12.3 s").
std::unique_ptr<text::Tokenizer> train_tokenizer(const text::TokenizerOptions& options,
                                                 const std::vector<std::string>& texts,
                                                 std::FILE* log);
// The number of parameters of a model, for the run's log.
int64_t parameter_count(nn::Module& model);

}  // namespace gaze::tasks
