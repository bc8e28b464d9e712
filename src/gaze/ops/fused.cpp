#include "gaze/ops/fused.h"

#include "gaze/autograd/node.h"
#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/kernels/gemm.h"
#include "gaze/kernels/layer_norm.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/linalg.h"
#include "gaze/ops/lowp.h"
#include "gaze/ops/norm.h"
#include "gaze/ops/unary.h"

namespace gaze {

Activation parse_activation(std::string_view name) {
  return parse_enum<Activation>(name, "activation");
}

kernels::GemmAct gemm_act(Activation act) {
  switch (act) {
    case Activation::none:
      return kernels::GemmAct::none;
    case Activation::relu:
      return kernels::GemmAct::relu;
    case Activation::gelu:
      return kernels::GemmAct::gelu;
    case Activation::gelu_tanh:
      return kernels::GemmAct::gelu_tanh;
  }
  return kernels::GemmAct::none;
}

Tensor linear_activation(const Tensor& x, const Tensor& w, const Tensor& b, Activation act) {
  if (act == Activation::none) return linear(x, w, b);
  if (autograd::any_requires_grad({&x, &w, &b}) || detail::autocast_bf16_active()) {
    // Training: keep the pre-activation for the backward (the bias is still added inside the GEMM).
    // Autocast: linear() owns the bf16 product.
    const Tensor u = linear(x, w, b);
    switch (act) {
      case Activation::relu:
        return relu(u);
      case Activation::gelu:
        return gelu(u, "none");
      default:
        return gelu(u, "tanh");
    }
  }
  // Inference: bias and activation in the GEMM's epilogue, one pass over the output.
  // Plain variables, not a structured binding: lambdas below capture them (clang 15 cannot).
  const detail::LinearDims dims = detail::check_linear(x, w, b, "linear_activation");
  const int64_t rows = dims.rows, in_f = dims.in_features, out_f = dims.out_features;
  const kernels::GemmAct gact = gemm_act(act);
  if (auto y = lowp_linear(x, w, b, gact, dims)) return *y;
  Shape out = x.shape();
  out[out.ndim() - 1] = out_f;
  Tensor y = Tensor::empty(out, x.dtype());
  dispatch_floating(x.dtype(), "linear", [&]<typename T>() {
    auto g = kernels::GemmArgs::dense(rows, out_f, in_f, false, true);
    g.bias = b.defined();
    g.act = gact;
    kernels::gemm(g, x.data<T>(), w.data<T>(), y.data<T>(), b.defined() ? b.data<T>() : nullptr);
  });
  return y;
}

AddNorm add_layer_norm(const Tensor& x, const Tensor& r, const std::vector<int64_t>& ns,
                       const Tensor& w, const Tensor& b, double eps) {
  ops_detail::check_floating(x, "add_layer_norm", "input");
  ops_detail::check_floating(r, "add_layer_norm", "residual");
  ops_detail::check_same_dtype(x, r, "add_layer_norm");
  GAZE_CHECK(x.shape() == r.shape(), ValueError,
             "add_layer_norm: input {} and residual {} must have the same shape", x.shape_str(),
             r.shape_str());
  const Shape norm_shape(ns);
  const int64_t n = norm_shape.numel();
  bool fits = norm_shape.ndim() >= 1 && norm_shape.ndim() <= x.dim() && n > 0;
  for (int i = 0; fits && i < norm_shape.ndim(); ++i)
    fits = x.shape()[x.dim() - norm_shape.ndim() + i] == norm_shape[i];
  GAZE_CHECK(fits, ValueError,
             "add_layer_norm: normalized_shape {} must match the trailing dims of the input {}",
             norm_shape.str(), x.shape_str());
  for (const Tensor* t : {&w, &b})
    GAZE_CHECK(!t->defined() || (t->shape() == norm_shape && t->dtype() == x.dtype()), ValueError,
               "add_layer_norm: weight and bias must be {} of shape {}", dtype_name(x.dtype()),
               norm_shape.str());
  const int64_t rows = x.numel() / n;
  AddNorm res{Tensor::empty(x.shape(), x.dtype()), Tensor::empty(x.shape(), x.dtype())};
  Tensor mean = Tensor::empty(Shape{rows}, x.dtype()), rstd = Tensor::empty(Shape{rows}, x.dtype());
  dispatch_floating(x.dtype(), "add_layer_norm", [&]<typename T>() {
    kernels::add_layer_norm(x.data<T>(), r.data<T>(), w.defined() ? w.data<T>() : nullptr,
                            b.defined() ? b.data<T>() : nullptr, res.sum.data<T>(),
                            res.out.data<T>(), mean.data<T>(), rstd.data<T>(), rows, n, eps);
  });
  if (autograd::any_requires_grad({&x, &r, &w, &b})) {
    autograd::record("add_layer_norm", {x, r, w, b}, {res.sum, res.out},
                     [ss = autograd::SavedTensor(res.sum), ws = autograd::SavedTensor(w), mean,
                      rstd, rows, n, norm_shape](autograd::BackwardContext& ctx) {
                       const Tensor& s = ss.get("add_layer_norm");
                       const Tensor& wv = ws.get("add_layer_norm");
                       Tensor gs = Tensor::empty(s.shape(), s.dtype());
                       Tensor gw = ctx.needs(2) ? Tensor::zeros(norm_shape, s.dtype()) : Tensor();
                       Tensor gb = ctx.needs(3) ? Tensor::zeros(norm_shape, s.dtype()) : Tensor();
                       dispatch_floating(s.dtype(), "add_layer_norm", [&]<typename T>() {
                         if (ctx.has_grad(1)) {
                           kernels::layer_norm_backward(
                               s.data<T>(), wv.defined() ? wv.data<T>() : nullptr, mean.data<T>(),
                               rstd.data<T>(), ctx.grad(1).data<T>(), gs.data<T>(),
                               gw.defined() ? gw.data<T>() : nullptr,
                               gb.defined() ? gb.data<T>() : nullptr, rows, n);
                         } else {
                           std::fill(gs.data<T>(), gs.data<T>() + gs.numel(), T(0));
                         }
                         // The sum's own gradient (a pre-norm residual stream) adds to the norm's.
                         if (ctx.has_grad(0))
                           kernels::add_inplace(gs.data<T>(), ctx.grad(0).data<T>(), gs.numel());
                       });
                       if (ctx.needs(0)) ctx.set(0, gs);
                       if (ctx.needs(1))
                         ctx.set(1, gs);  // the engine copies where one gradient feeds two leaves
                       if (gw.defined()) ctx.set(2, gw);
                       if (gb.defined()) ctx.set(3, gb);
                     });
  }
  return res;
}

}  // namespace gaze
