// Length-bucketed batches: examples of similar length go together so little of a batch is
// padding, each batch holds at most max_tokens (batch size x longest length) and max_examples,
// and the order (of examples within a length and of batches) is shuffled from the data generator.
#pragma once

#include <cstdint>
#include <vector>

#include "gaze/core/rng.h"

namespace gaze::data {

struct BatchOptions {
  int64_t max_tokens = 4096;  // padded tokens per batch
  int64_t max_examples = 0;   // 0: no limit besides max_tokens
  bool shuffle = true;
};

// Indices into the examples, one vector per batch. Without shuffling, batches follow the sorted
// lengths (deterministic order for evaluation).
std::vector<std::vector<int64_t>> make_batches(const std::vector<int64_t>& lengths,
                                               const BatchOptions& options, Generator* gen);

}  // namespace gaze::data
