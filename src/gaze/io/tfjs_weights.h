// TensorFlow.js weights: a model.json's "weightsManifest" (groups of shard files holding their
// entries' little-endian data back to back, in manifest order) read into named tensors, without
// interpreting the graph. float32 stays float32; int32 (graph constants) widens to int64.
#pragma once

#include <string>

#include "gaze/core/named_tensors.h"

namespace gaze::io {

// Reads every manifest entry of `model_json` (shards beside it). DataError naming the file and the
// entry on: invalid JSON, a dtype or quantization gaze does not read, a shard path that leaves the
// folder, a missing or short shard, shards larger than their entries, or sizes that overflow.
NamedTensors read_tfjs_weights(const std::string& model_json);

}  // namespace gaze::io
