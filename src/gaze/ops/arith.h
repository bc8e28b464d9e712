// Arithmetic ops with autograd: add/sub/mul/div with NumPy broadcasting, their scalar forms, and
// elementwise math (neg, pow, sqrt, abs, reciprocal). Operators +, -, *, / call these.
#pragma once

#include "gaze/core/tensor.h"

namespace gaze {

Tensor add(const Tensor& input, const Tensor& other, double alpha = 1.0);  // input + alpha * other
Tensor sub(const Tensor& input, const Tensor& other, double alpha = 1.0);  // input - alpha * other
Tensor mul(const Tensor& input, const Tensor& other);
Tensor div(const Tensor& input, const Tensor& other);

Tensor add(const Tensor& input, double other);
Tensor sub(const Tensor& input, double other);
Tensor rsub(const Tensor& input, double other);  // other - input
Tensor mul(const Tensor& input, double other);
Tensor div(const Tensor& input, double other);
Tensor rdiv(const Tensor& input, double other);  // other / input

Tensor neg(const Tensor& input);
Tensor pow(const Tensor& input, double exponent);
Tensor sqrt(const Tensor& input);
Tensor abs(const Tensor& input);
Tensor reciprocal(const Tensor& input);

// The broadcast of `input` to `shape` (a copy; gradient is summed back).
Tensor expand(const Tensor& input, const Shape& shape);

inline Tensor operator+(const Tensor& a, const Tensor& b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, const Tensor& b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, const Tensor& b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, const Tensor& b) {
  return div(a, b);
}
inline Tensor operator+(const Tensor& a, double b) {
  return add(a, b);
}
inline Tensor operator-(const Tensor& a, double b) {
  return sub(a, b);
}
inline Tensor operator*(const Tensor& a, double b) {
  return mul(a, b);
}
inline Tensor operator/(const Tensor& a, double b) {
  return div(a, b);
}
inline Tensor operator+(double a, const Tensor& b) {
  return add(b, a);
}
inline Tensor operator-(double a, const Tensor& b) {
  return rsub(b, a);
}
inline Tensor operator*(double a, const Tensor& b) {
  return mul(b, a);
}
inline Tensor operator/(double a, const Tensor& b) {
  return rdiv(b, a);
}
inline Tensor operator-(const Tensor& a) {
  return neg(a);
}

}  // namespace gaze
