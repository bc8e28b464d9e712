// gaze quantize: a model folder rewritten with its matrices in bf16 or int8, a smaller folder that
// predict, eval, translate, explain, serve and gaze.load run in that precision.
#pragma once

#include <cstdint>
#include <string>

#include "gaze/core/precision.h"

namespace gaze::tasks {

struct QuantizeOptions {
  Precision precision = Precision::int8;
  bool overwrite = false;  // replace an existing gaze model folder at `out`
};

struct QuantizeReport {
  int64_t matrices = 0;                       // converted
  int64_t bytes_before = 0, bytes_after = 0;  // model.safetensors
};

// Reads the model folder `dir` (a run folder: its best/) and writes `out`: the same tokenizer,
// labels and configuration, with every matrix the model multiplies by stored in `precision`
// (int8: symmetric per output channel with float32 scales; embeddings and norms stay float32).
// `out` is written atomically and may not be `dir`; DataError when it exists (unless overwrite) or
// is not a gaze model folder.
QuantizeReport quantize_model(const std::string& dir, const std::string& out,
                              const QuantizeOptions& options);

}  // namespace gaze::tasks
