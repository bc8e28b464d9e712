// A model built and trained outside `gaze train` (in Python, or C++) saved as a model folder the
// command line, the server and gaze.load accept: weights, config.json, tokenizer(s), labels or
// tags and task.json.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gaze/models/model.h"
#include "gaze/tasks/options.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

struct ModelFolderOptions {
  // classify: the class names, in the model's output order; tag: the tags, likewise.
  std::vector<std::string> labels;
  // translate: the target side's tokenizer (null: the source's, shared).
  std::shared_ptr<text::Tokenizer> target_tokenizer;
  int64_t max_length = 256;     // tokens the model reads of a text (translate: of a source)
  int64_t batch_tokens = 4096;  // padded tokens per inference batch
  bool overwrite = false;       // replace a model folder already at `dir`
};

// Writes `model` (a TransformerClassifier, TransformerTagger or sequence-to-sequence model) with
// `tokenizer` as a model folder at `dir`; the task follows from the model. DataError when the
// labels, tags or tokenizer do not fit the model, or `dir` holds something else.
void save_model_folder(const std::shared_ptr<models::Model>& model,
                       const std::shared_ptr<text::Tokenizer>& tokenizer, const std::string& dir,
                       const ModelFolderOptions& options);

}  // namespace gaze::tasks
