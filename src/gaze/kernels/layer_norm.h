// Layer normalisation over the last n elements of each row: y = (x - mean) * rstd * w + b, with
// rstd = 1 / sqrt(var + eps) (biased variance, as PyTorch). Forward saves mean and rstd per row.
#pragma once

#include <cstdint>

namespace gaze::kernels {

// w and b may be null (no affine part). mean and rstd receive `rows` values each.
template <typename T>
void layer_norm(const T* x, const T* w, const T* b, T* y, T* mean, T* rstd, int64_t rows, int64_t n,
                double eps);

// The same on s = x + residual, which is also written to `sum` (one pass instead of add, then
// norm).
template <typename T>
void add_layer_norm(const T* x, const T* residual, const T* w, const T* b, T* sum, T* y, T* mean,
                    T* rstd, int64_t rows, int64_t n, double eps);

// gx (may be null) = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = gy * w;
// gw += sum_rows gy * xhat and gb += sum_rows gy (each may be null).
template <typename T>
void layer_norm_backward(const T* x, const T* w, const T* mean, const T* rstd, const T* gy, T* gx,
                         T* gw, T* gb, int64_t rows, int64_t n);

}  // namespace gaze::kernels
