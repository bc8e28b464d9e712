// Rotary position embedding (RoPE) over raw buffers: rotates pairs of features of each row by an
// angle proportional to the row's position, and the inverse rotation for the backward.
#pragma once

#include <cstdint>

namespace gaze::kernels {

struct RotaryArgs {
  int64_t rows = 0;        // rows of `dim` features each
  int64_t dim = 0;         // features per row; the first rotary_dim are rotated
  int64_t rotary_dim = 0;  // even, <= dim
  bool interleaved =
      false;  // pairs (2i, 2i+1) (GPT-J); else (i, i + rotary_dim/2) (GPT-NeoX, LLaMA)
  const int64_t* position = nullptr;  // position of each row
  const double* inv_freq = nullptr;   // rotary_dim/2 frequencies: base^(-2i/rotary_dim)
};

// y = rotate(x, +angle); with inverse, the backward rotation (-angle). x and y may alias.
template <typename T>
void rotary(const RotaryArgs& a, const T* x, T* y, bool inverse);

}  // namespace gaze::kernels
