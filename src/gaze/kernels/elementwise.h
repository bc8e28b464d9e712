// Elementwise kernels over raw buffers: unary math (forward and backward), binary arithmetic with
// NumPy broadcasting, and scalar affine maps. SIMD through Highway; parallel over large buffers.
#pragma once

#include <cstdint>

#include "gaze/core/shape.h"

namespace gaze::kernels {

enum class UnaryOp : int {
  relu,
  gelu,
  gelu_tanh,
  tanh,
  sigmoid,
  exp,
  log,
  neg,
  sqrt,
  abs,
  reciprocal
};

// y = op(x).
template <typename T>
void unary(UnaryOp op, const T* x, T* y, int64_t n);
// gx = gy * op'(x); each op reads whichever of x and y = op(x) its derivative is cheapest from.
template <typename T>
void unary_backward(UnaryOp op, const T* x, const T* y, const T* gy, T* gx, int64_t n);

// `first` copies a (broadcast), ignoring b.
enum class BinaryOp : int { add, sub, mul, div, first };

// out = a op b, where a has shape `sa`, b has shape `sb` and out has their broadcast shape `so`.
template <typename T>
void binary(BinaryOp op, const T* a, const Shape& sa, const T* b, const Shape& sb, T* out,
            const Shape& so);

// y = x * scale + shift.
template <typename T>
void affine(const T* x, T* y, int64_t n, T scale, T shift);
// y += x.
template <typename T>
void add_inplace(T* y, const T* x, int64_t n);
// y += a * x.
template <typename T>
void axpy(T* y, T a, const T* x, int64_t n);
// y = x^p and its backward gx = gy * p * x^(p-1) (0 where p == 0, as in PyTorch).
template <typename T>
void pow_scalar(const T* x, T* y, int64_t n, double p);
template <typename T>
void pow_scalar_backward(const T* x, const T* gy, T* gx, int64_t n, double p);

}  // namespace gaze::kernels
