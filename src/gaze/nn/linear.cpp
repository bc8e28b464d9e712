#include "gaze/nn/linear.h"

#include <cmath>

#include "gaze/core/error.h"
#include "gaze/nn/init.h"
#include "gaze/ops/linalg.h"

namespace gaze::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias)
    : Module("Linear"), in_features(in), out_features(out) {
  GAZE_CHECK(in > 0 && out > 0, ValueError,
             "Linear: in_features and out_features must be positive, got {} and {}", in, out);
  // torch.nn.Linear.reset_parameters: kaiming_uniform_(a=sqrt(5)) and a bias U(-1/sqrt(in),
  // 1/sqrt(in)).
  weight = register_parameter(
      "weight", init::kaiming_uniform_(Tensor::empty(Shape{out, in}), std::sqrt(5.0)));
  mark_matmul_weight(weight);
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    bias = register_parameter("bias", init::uniform_(Tensor::empty(Shape{out}), -bound, bound));
  }
}

Tensor Linear::forward(const Tensor& x) const {
  return linear(x, weight, bias);
}

}  // namespace gaze::nn
