// Random tensors: normal, uniform and Bernoulli draws from a gaze Generator (default: the init
// generator, see manual_seed), reproducible and independent of the thread count.
#pragma once

#include "gaze/core/rng.h"
#include "gaze/core/tensor.h"

namespace gaze {

Tensor randn(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr);
Tensor rand(const Shape& shape, DType dtype = DType::f32, Generator* gen = nullptr);  // U[0, 1)
Tensor uniform(const Shape& shape, double low, double high, DType dtype = DType::f32,
               Generator* gen = nullptr);
Tensor normal(const Shape& shape, double mean, double std, DType dtype = DType::f32,
              Generator* gen = nullptr);
Tensor bernoulli(const Shape& shape, double p, DType dtype = DType::f32, Generator* gen = nullptr);

}  // namespace gaze
