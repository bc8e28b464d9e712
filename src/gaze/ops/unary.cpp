#include "gaze/ops/unary.h"

#include "gaze/autograd/node.h"
#include "gaze/core/enums.h"
#include "gaze/core/error.h"
#include "gaze/ops/checks.h"

namespace gaze {

using autograd::BackwardContext;
using autograd::SavedTensor;
using kernels::UnaryOp;

namespace detail {

Tensor unary(UnaryOp op, const Tensor& x, const char* name) {
  ops_detail::check_floating(x, name);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), name,
                    [&]<typename T>() { kernels::unary(op, x.data<T>(), y.data<T>(), x.numel()); });
  if (autograd::any_requires_grad({&x})) {
    // Save the input or the output, whichever this op's derivative is computed from.
    const bool from_output = op == UnaryOp::relu || op == UnaryOp::tanh || op == UnaryOp::sigmoid ||
                             op == UnaryOp::exp || op == UnaryOp::sqrt || op == UnaryOp::reciprocal;
    const bool from_input =
        op == UnaryOp::gelu || op == UnaryOp::gelu_tanh || op == UnaryOp::log || op == UnaryOp::abs;
    SavedTensor xs(from_input ? x : Tensor());
    SavedTensor ys(from_output ? y : Tensor());
    autograd::record(name, {x}, {y}, [op, xs, ys, name](BackwardContext& ctx) {
      const Tensor& g = ctx.grad();
      const Tensor& xv = xs.get(name);
      const Tensor& yv = ys.get(name);
      Tensor gx = Tensor::empty(g.shape(), g.dtype());
      dispatch_floating(g.dtype(), name, [&]<typename T>() {
        kernels::unary_backward(op, xv.defined() ? xv.data<T>() : nullptr,
                                yv.defined() ? yv.data<T>() : nullptr, g.data<T>(), gx.data<T>(),
                                g.numel());
      });
      ctx.set(0, gx);
    });
  }
  return y;
}

}  // namespace detail

Tensor relu(const Tensor& x) {
  return detail::unary(UnaryOp::relu, x, "relu");
}
Tensor tanh(const Tensor& x) {
  return detail::unary(UnaryOp::tanh, x, "tanh");
}
Tensor sigmoid(const Tensor& x) {
  return detail::unary(UnaryOp::sigmoid, x, "sigmoid");
}
Tensor exp(const Tensor& x) {
  return detail::unary(UnaryOp::exp, x, "exp");
}
Tensor log(const Tensor& x) {
  return detail::unary(UnaryOp::log, x, "log");
}

namespace {
enum class GeluApproximation { none, tanh };
GAZE_ENUM_NAMES(GeluApproximation, {GeluApproximation::none, "none"},
                {GeluApproximation::tanh, "tanh"})
}  // namespace

Tensor gelu(const Tensor& x, std::string_view approximate) {
  const bool tanh =
      parse_enum<GeluApproximation>(approximate, "gelu: approximate") == GeluApproximation::tanh;
  return detail::unary(tanh ? UnaryOp::gelu_tanh : UnaryOp::gelu, x, "gelu");
}

}  // namespace gaze
