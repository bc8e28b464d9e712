// What the command line needs from a task beyond training: reports on the run's test data or on a
// labelled file, and predictions as JSON, one per input line. create/load/resume pick the task
// from the run configuration or from the model folder's task.json.
#pragma once

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gaze/decode/search.h"
#include "gaze/explain/explanation.h"
#include "gaze/tasks/run_config.h"
#include "gaze/train/trainable.h"

namespace gaze::tasks {

struct Report {
  std::string text, json;  // for people (the seeds' report layouts) and for programs
  int64_t examples = 0;
};

// Options of `gaze eval` that override how the model folder reads data.
struct EvalOptions {
  std::string format, text_column, label_column;  // classify
  std::string target_file;                        // translate: the aligned target file
  std::string
      unknown_tags;  // tag: gold tags the model does not know: error | wrong (default: as run)
  std::optional<decode::SearchOptions> search;  // translate
};

struct PredictOptions {
  int64_t top_k = 0;                   // classify: 0 -> the best label as an object, else a list
  std::string aggregation = "simple";  // tag: simple | first | average | max
  std::optional<decode::SearchOptions> search;  // translate (default: the run's decode section)
  bool scores = false, alignment = false;       // translate: add scores / the alignment
  int64_t alignment_layer =
      -1;  // translate, Transformer: the decoder layer (negative: from the end)
};

struct ExplainOptions {
  explain::CaptureOptions capture;              // layers and heads (empty = all)
  std::optional<decode::SearchOptions> search;  // translate (default: the run's decode section)
  // translate, Transformer: the cross-attention layer of the alignment (negative: from the end;
  // -1 with a layer filter: the last layer captured). Its captured heads are averaged.
  int64_t alignment_layer = -1;
};

class Task : public train::TrainableTask {
 public:
  virtual std::string name() const = 0;
  // The run's test data scored with the current weights; nullopt when the run has none.
  virtual std::optional<Report> test_report() = 0;
  // Scores a labelled file (as the run's data, or as `options` say).
  virtual Report evaluate_file(const std::string& path, const EvalOptions& options) = 0;
  // The inputs of a file for prediction (one text per line, or the text column of a table).
  virtual std::vector<std::string> read_inputs(const std::string& path) const;
  // One JSON value per input text.
  virtual std::vector<nlohmann::json> predict(const std::vector<std::string>& inputs,
                                              const PredictOptions& options) = 0;
  // The attention the model pays on one input, with its prediction (see gaze/explain).
  virtual explain::Explanation explain(const std::string& text, const ExplainOptions& options) = 0;
  // The decoding options of a sequence-to-sequence model (as trained); nullopt for other tasks.
  virtual std::optional<decode::SearchOptions> default_search() const { return std::nullopt; }
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
// A trained model folder (task.json names the task).
std::unique_ptr<Task> load_task(const std::string& dir);
// --resume: the run's data with the model and tokenizers of the checkpoint in `dir`.
std::unique_ptr<Task> resume_task(const RunConfig& c, const std::string& dir, std::FILE* log);

// Shared by the tasks: task.json of a model folder, checked to be for `task`.
nlohmann::json read_task_file(const std::string& dir, const std::string& task);
void write_task_file(const std::string& dir, const nlohmann::json& task);
nlohmann::json read_json_file(const std::string& path);

// Switches a module to eval mode for the scope, restoring the previous mode.
class EvalScope {
 public:
  explicit EvalScope(nn::Module& m) : m_(m), was_(m.is_training()) { m_.eval(); }
  ~EvalScope() { m_.train(was_); }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;

 private:
  nn::Module& m_;
  bool was_;
};

// Loss weights [K] from per-class training counts (train.class_weights: none -> undefined, sqrt,
// balanced). Classes absent from training get weight 0 (they never occur as targets).
Tensor class_weights(const std::vector<int64_t>& counts, const std::string& mode);

// Padded token ids [B, T] (pad_id past each length) and lengths [B] of the given sequences.
std::pair<Tensor, Tensor> pad_batch(const std::vector<const std::vector<int64_t>*>& seqs,
                                    int64_t pad_id);

}  // namespace gaze::tasks
