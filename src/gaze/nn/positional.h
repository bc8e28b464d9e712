// Positional modules: sinusoidal encodings (no parameters), learned absolute position embeddings,
// and rotary embeddings applied to queries and keys.
#pragma once

#include "gaze/nn/module.h"
#include "gaze/ops/positional.h"

namespace gaze::nn {

// x + PE[offset : offset + T] for x [B, T, E] (batch_first) or [T, B, E]. The first max_len rows
// are computed once (float32, not part of the state dict); later positions on demand. The table is
// Vaswani et al.'s (sin/cos interleaved) or, with timing_signal, tensor2tensor's (sin | cos).
class SinusoidalPositionalEncoding : public Module {
 public:
  explicit SinusoidalPositionalEncoding(int64_t d_model, bool batch_first = true,
                                        int64_t max_len = 512, bool timing_signal = false);
  Tensor forward(const Tensor& x, int64_t offset = 0) const;
  // PE[offset : offset + n] as [n, d_model] of `dtype`.
  Tensor table(int64_t n, int64_t offset, DType dtype) const;
  int64_t d_model;
  bool batch_first, timing_signal;

 private:
  Tensor cache_;
};

// x + weight[offset : offset + T]; weight [num_positions, dim] (state-dict key "weight").
class LearnedPositionalEmbedding : public Module {
 public:
  LearnedPositionalEmbedding(int64_t num_positions, int64_t dim, bool batch_first = true);
  Tensor forward(const Tensor& x, int64_t offset = 0) const;
  int64_t num_positions, dim;
  bool batch_first;
  Tensor weight;
};

// Rotary embeddings (Su et al. 2021) for queries and keys; no parameters.
class RotaryEmbedding : public Module {
 public:
  explicit RotaryEmbedding(int64_t rotary_dim, double base = 10000.0, bool interleaved = false);
  Tensor forward(const Tensor& x, int64_t offset = 0, HeadsLayout layout = HeadsLayout::bhtd) const;
  RotaryOptions options;
};

}  // namespace gaze::nn
