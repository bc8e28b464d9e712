// Generic gradient checker for the C++ tests: compares the autograd gradients of any function of
// tensors with central finite differences, in float64.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "gaze/core/tensor.h"

namespace gaze::testing {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-7;  // |analytic - numeric| <= atol + rtol * |numeric|
  double rtol = 1e-5;
};

using TensorFn = std::function<Tensor(const std::vector<Tensor>&)>;

// A float32 leaf of the given values that requires grad.
inline Tensor leaf(std::vector<float> v, const Shape& s) {
  Tensor t = Tensor::from_vector(v, s);
  t.set_requires_grad();
  return t;
}

// Checks d<v, f(inputs)>/d input for every input with requires_grad, where v is a fixed random
// projection of the output. Inputs must be float64 (or int64 for index arguments, not checked).
//
// Why finite differences in float64 rather than complex-step: gaze's kernels are templates
// instantiated for float and double, so the float64 run exercises the same code as float32 (same
// loops, same SIMD structure), and central differences with h = 1e-6 agree with exact derivatives
// to ~1e-9 on smooth functions. Complex-step would need a second, complex-valued implementation of
// every op -- a reference that could drift from the real kernels, which are what must be right.
// Non-smooth points (relu at 0, ties in max) are avoided by the tests' choice of inputs.
::testing::AssertionResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                                     const GradcheckOptions& opt = {});

// A float64 tensor of `shape` with values uniform in [lo, hi), from a fixed seed, requiring grad.
Tensor rand_input(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                  bool requires_grad = true);

}  // namespace gaze::testing
