#include "gradcheck.h"

#include <cmath>

#include "gaze/ops/ops.h"

namespace gaze::testing {

namespace {
double dot(const Tensor& a, const Tensor& b) {
  const double* pa = a.data<double>();
  const double* pb = b.data<double>();
  double s = 0;
  for (int64_t i = 0; i < a.numel(); ++i) s += pa[i] * pb[i];
  return s;
}
}  // namespace

Tensor rand_input(const Shape& shape, uint64_t seed, double lo, double hi, bool requires_grad) {
  Generator g(seed, 99);
  Tensor t = uniform(shape, lo, hi, DType::f64, &g);
  t.set_requires_grad(requires_grad);
  return t;
}

::testing::AssertionResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs,
                                     const GradcheckOptions& opt) {
  for (const Tensor& t : inputs) {
    if (t.requires_grad() && t.dtype() != DType::f64)
      return ::testing::AssertionFailure()
             << "gradcheck needs float64 inputs, got " << dtype_name(t.dtype());
    if (t.requires_grad()) t.zero_grad();
  }
  Tensor y = f(inputs);
  if (y.dtype() != DType::f64) return ::testing::AssertionFailure() << "output is not float64";
  Generator g(1234, 7);
  const Tensor v = uniform(y.shape(), -1.0, 1.0, DType::f64, &g);
  if (!y.requires_grad()) return ::testing::AssertionFailure() << "output does not require grad";
  y.backward(v);

  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    const Tensor analytic = x.grad();
    if (!analytic.defined())
      return ::testing::AssertionFailure() << "input " << k << " received no gradient";
    if (analytic.shape() != x.shape())
      return ::testing::AssertionFailure()
             << "input " << k << " gradient shape " << analytic.shape_str() << " != input shape "
             << x.shape_str();
    double* px = x.data<double>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      NoGradGuard no_grad;
      const double orig = px[i];
      px[i] = orig + opt.eps;
      const double lp = dot(v, f(inputs));
      px[i] = orig - opt.eps;
      const double lm = dot(v, f(inputs));
      px[i] = orig;
      const double numeric = (lp - lm) / (2 * opt.eps);
      const double a = analytic.data<double>()[i];
      if (!(std::abs(a - numeric) <= opt.atol + opt.rtol * std::abs(numeric)))
        return ::testing::AssertionFailure()
               << "input " << k << " " << x.shape_str() << " element " << i << ": analytic " << a
               << " vs numeric " << numeric;
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace gaze::testing
