// How a classifier's or tagger's model starts: the tokenizer it reads with and the weights its
// backbone starts from — learnt from the training data (backbone transformer), or pretrained
// (glove: the word vectors' vocabulary and table).
#pragma once

#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gaze/models/transformer_models.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

struct EncoderStart {
  std::shared_ptr<text::Tokenizer> tokenizer;
  // Of a pretrained sentence encoder: how it pools (a classifier started from it pools alike).
  std::optional<models::Pooling> pooling;
  std::optional<models::Pooler> pooler;
  // Puts the pretrained weights into a freshly built model (nothing for a model from scratch).
  std::function<void(models::EncoderModel&)> init = [](models::EncoderModel&) {};
};

// Fills in what the start decides of `config` (vocab_size, pad_id, word_dim; with
// config.pretrained, the pretrained backbone's whole configuration but for the dropout); `texts`
// are the training texts (or words) the tokenizer learns from.
EncoderStart start_encoder(models::EncoderConfig& config, const text::TokenizerOptions& tokenizer,
                           const std::vector<std::string>& texts, std::FILE* log);

}  // namespace gaze::tasks
