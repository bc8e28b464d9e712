// Batched inference of a trained model: the one place where inputs become batches and batches
// become outputs, for `gaze predict`, `eval`, `translate` and `explain`, Python and the server.
// Each task has one (ClassifyPredictor, TagPredictor, TranslatePredictor).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "gaze/core/precision.h"
#include "gaze/explain/attribution.h"
#include "gaze/explain/explanation.h"
#include "gaze/models/inputs.h"
#include "gaze/nn/module.h"
#include "gaze/tasks/options.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

// What a model reads of one text: its tokens (the tokenizer's frame included, after any cut to the
// model's maximum length) and whether the text had to be cut to fit.
struct InputSize {
  int64_t tokens = 0;
  bool cut = false;
};

class Predictor {
 public:
  virtual ~Predictor() = default;
  virtual TaskKind kind() const = 0;
  // The options the model predicts with unless told otherwise (translate: its decode section).
  virtual PredictOptions predict_defaults() const { return {}; }
  ExplainOptions explain_defaults() const;
  // The inputs of a file for prediction (one text per line, or the text column of a table).
  virtual std::vector<std::string> read_inputs(const std::string& path) const;
  // One JSON value per input text, in order, shaped like Hugging Face's pipeline outputs. A blank
  // text gets the task's answer for nothing where there is one (tagging: no words; translation: an
  // empty text) and {"error": "empty input"} where there is none (classification): never a
  // confident guess, and never a missing line that shifts outputs against inputs.
  std::vector<nlohmann::json> predict(const std::vector<std::string>& inputs,
                                      const PredictOptions& options);
  // The attention the model pays on one input, with its prediction (see gaze/explain) and its
  // provenance (model folder, checkpoint and step, gaze version and commit, date, options).
  explain::Explanation explain(const std::string& text, const ExplainOptions& options);
  // The folder the model was loaded from (load_predictor sets it; provenance reads it).
  std::string model_dir;
  // One vector per text: a sentence encoder's embedding, a classifier's pooled features. DataError
  // for models without one.
  virtual std::vector<std::vector<float>> embed(const std::vector<std::string>& texts);

  // The size of each text as the model reads it (the server batches by it, and refuses or on
  // request truncates texts that do not fit).
  std::vector<InputSize> measure(const std::vector<std::string>& texts) const;
  // The size of one text as the model reads it.
  virtual InputSize input_size(const std::string& text) const = 0;
  // The most tokens the model reads of one input (translation: of one source).
  virtual int64_t max_length() const = 0;
  // What a client needs to know of the model: {"task", "max_length"} and the task's own facts
  // (labels, tags, decoding defaults, embedding width).
  nlohmann::json describe() const;

  // The network (for its precision, nn/precision.h).
  virtual nn::Module& module() = 0;
  virtual const nn::Module& module() const = 0;
  // The precision the model's matrices multiply in (describe() reports it too).
  Precision precision() const;

 protected:
  // explain's task-specific part.
  virtual explain::Explanation explain_input(const std::string& text,
                                             const ExplainOptions& options) = 0;
  // The tokenizer of the encoder's input (target: of the decoder's; null when there is none), for
  // word-level explanations.
  virtual const text::Tokenizer* explain_tokenizer(bool target) const = 0;
  // predict() for texts that are not blank.
  virtual std::vector<nlohmann::json> predict_texts(const std::vector<std::string>& texts,
                                                    const PredictOptions& options) = 0;
  // What predict() gives a blank text.
  virtual nlohmann::json blank_prediction(const PredictOptions& options) const;
  // The task's facts for describe().
  virtual nlohmann::json describe_task() const { return nlohmann::json::object(); }
};

// Padded token ids [B, T] (pad_id past each length) and lengths [B] of the given sequences.
std::pair<Tensor, Tensor> pad_batch(const std::vector<const std::vector<int64_t>*>& seqs,
                                    int64_t pad_id);
// The model inputs of the sequences `batch` of `ids`: padded tokens and lengths and, when the model
// reads characters (max_chars > 0), the characters of `surfaces` (each sequence's tokens as
// written); `fill` (optional) stands in for an empty sequence.
models::Inputs make_inputs(const std::vector<std::vector<int64_t>>& ids,
                           const std::vector<std::vector<std::string>>& surfaces,
                           const std::vector<int64_t>& batch, int64_t pad_id, int64_t max_chars,
                           const std::vector<int64_t>* fill = nullptr);
// A sequence as the model reads it: cut so that, with the tokenizer's prefix and suffix ids
// (BERT's [CLS] and [SEP]) around it, it holds at most max_length ids; `cut` (optional) tells
// whether it was cut. `surfaces` (optional) is cut and framed alike (the pieces' own strings).
std::vector<int64_t> frame(const text::Tokenizer& tokenizer, std::vector<int64_t> ids,
                           int64_t max_length, bool* cut = nullptr,
                           std::vector<std::string>* surfaces = nullptr);
// Groups of indices into `lengths` holding at most `batch_tokens` padded tokens each.
std::vector<std::vector<int64_t>> token_batches(const std::vector<int64_t>& lengths,
                                                int64_t batch_tokens);

// An explanation of `text` for a task, after checking the text (non-empty, UTF-8).
explain::Explanation begin_explanation(TaskKind task, const std::string& text,
                                       const ExplainOptions& options);
// The pieces of token ids, for display.
std::vector<std::string> pieces(const text::Tokenizer& tok, const std::vector<int64_t>& ids);
// Appends the gradient methods `options` asks for (gradient x input, Integrated Gradients) to
// e.attributions, for any task's objective; `lookup` embeds token ids ([1, 1] -> [1, 1, E]), for
// the unknown token's row of the `unknown` baseline.
void add_gradient_attributions(explain::Explanation& e, const explain::Objective& f,
                               const ExplainOptions& options, int64_t unk_id,
                               const std::function<Tensor(const Tensor&)>& lookup);
// Which ids frame the text (begin, end, padding: [CLS], [SEP], <s>, </s>), for explanations.
bool is_framing(const text::Tokenizer& tok, int64_t id);
std::vector<bool> framing(const text::Tokenizer& tok, const std::vector<int64_t>& ids);

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

}  // namespace gaze::tasks
