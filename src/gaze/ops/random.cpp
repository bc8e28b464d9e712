#include "gaze/ops/random.h"

#include "gaze/core/error.h"

namespace gaze {
namespace {
Generator& pick(Generator* gen) {
  return gen ? *gen : default_generator(RngPurpose::init);
}
}  // namespace

Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator* gen) {
  GAZE_CHECK(std >= 0, ValueError, "normal: std must be >= 0, got {}", std);
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_floating(dtype, "normal",
                    [&]<typename T>() { pick(gen).normal(t.data<T>(), t.numel(), mean, std); });
  return t;
}

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* gen) {
  GAZE_CHECK(low <= high, ValueError, "uniform: expected low <= high, got [{}, {})", low, high);
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_floating(dtype, "uniform",
                    [&]<typename T>() { pick(gen).uniform(t.data<T>(), t.numel(), low, high); });
  return t;
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* gen) {
  GAZE_CHECK(p >= 0 && p <= 1, ValueError, "bernoulli: p must be in [0, 1], got {}", p);
  Tensor t = Tensor::empty(shape, dtype);
  dispatch_floating(dtype, "bernoulli",
                    [&]<typename T>() { pick(gen).bernoulli(t.data<T>(), t.numel(), p); });
  return t;
}

Tensor randn(const Shape& shape, DType dtype, Generator* gen) {
  return normal(shape, 0.0, 1.0, dtype, gen);
}
Tensor rand(const Shape& shape, DType dtype, Generator* gen) {
  return uniform(shape, 0.0, 1.0, dtype, gen);
}

}  // namespace gaze
