// Position information for attention: sinusoidal tables (Vaswani et al.), rotary embeddings (RoPE)
// on queries and keys with autograd, and ALiBi slopes (see ops/attention.h for the bias itself).
#pragma once

#include "gaze/core/tensor.h"
#include "gaze/ops/attention.h"

namespace gaze {

// [n, dim]: row p holds sin(p * w_i) at 2i and cos(p * w_i) at 2i + 1, w_i = 10000^(-2i/dim), for
// positions p = offset .. offset + n - 1.
Tensor sinusoidal_positions(int64_t n, int64_t dim, int64_t offset = 0, DType dtype = DType::f32);
// [n, dim]: tensor2tensor's timing signal (get_timing_signal_1d, as the Universal Sentence Encoder
// uses it): sin(p * w_i) in channels i < dim/2, cos(p * w_i) in dim/2 + i, w_i = 10000^(-i/(dim/2 -
// 1)); computed in float32 as TensorFlow does (w_i rounded, then the product), so imported models
// see the same inputs.
Tensor timing_signal(int64_t n, int64_t dim, int64_t offset = 0, DType dtype = DType::f32);

struct RotaryOptions {
  double base = 10000.0;
  bool interleaved =
      false;  // pairs (2i, 2i+1) as GPT-J/RoFormer; false: halves (i, i+d/2) as NeoX/LLaMA
  int64_t rotary_dim = -1;  // rotate only the first rotary_dim features of each head (-1: all)
  int64_t offset = 0;       // position of the first time step (decoding with a KV cache)
  Tensor positions;         // int64 [T] or [B, T]: explicit positions (overrides offset)
  HeadsLayout layout = HeadsLayout::bhtd;
};

// Rotates the features of each head of x ([B, H, T, D], [B, T, H, D] or [T, B, H, D]) by its
// position.
Tensor rotary_embedding(const Tensor& x, const RotaryOptions& options = {});

}  // namespace gaze
