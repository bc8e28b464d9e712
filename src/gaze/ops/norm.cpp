#include "gaze/ops/norm.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/layer_norm.h"
#include "gaze/ops/checks.h"

namespace gaze {

Tensor layer_norm(const Tensor& x, const std::vector<int64_t>& ns, const Tensor& w, const Tensor& b,
                  double eps) {
  ops_detail::check_floating(x, "layer_norm");
  const Shape norm_shape(ns);
  const int k = norm_shape.ndim();
  bool fits = k >= 1 && k <= x.dim();
  for (int i = 0; fits && i < k; ++i) fits = x.shape()[x.dim() - k + i] == norm_shape[i];
  GAZE_CHECK(fits, ValueError,
             "layer_norm: normalized_shape {} must be non-empty and match the trailing dims of the "
             "input {}",
             norm_shape.str(), x.shape_str());
  const int64_t n = norm_shape.numel();
  GAZE_CHECK(n > 0, ValueError, "layer_norm: normalized_shape {} has no elements",
             norm_shape.str());
  for (const auto& [t, name] : {std::pair{&w, "weight"}, std::pair{&b, "bias"}}) {
    if (!t->defined()) continue;
    ops_detail::check_same_dtype(x, *t, "layer_norm");
    GAZE_CHECK(t->shape() == norm_shape, ValueError,
               "layer_norm: {} has shape {}, expected normalized_shape {}", name, t->shape_str(),
               norm_shape.str());
  }
  GAZE_CHECK(eps >= 0, ValueError, "layer_norm: eps must be >= 0, got {}", eps);
  const int64_t rows = x.numel() / n;
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  Tensor mean = Tensor::empty(Shape{rows}, x.dtype()), rstd = Tensor::empty(Shape{rows}, x.dtype());
  dispatch_floating(x.dtype(), "layer_norm", [&]<typename T>() {
    kernels::layer_norm(x.data<T>(), w.defined() ? w.data<T>() : nullptr,
                        b.defined() ? b.data<T>() : nullptr, y.data<T>(), mean.data<T>(),
                        rstd.data<T>(), rows, n, eps);
  });
  if (autograd::any_requires_grad({&x, &w, &b})) {
    std::vector<Tensor> inputs{x, w, b};
    autograd::record("layer_norm", inputs, {y},
                     [xs = autograd::SavedTensor(x), ws = autograd::SavedTensor(w), mean, rstd,
                      rows, n, norm_shape](autograd::BackwardContext& ctx) {
                       const Tensor& xv = xs.get("layer_norm");
                       const Tensor& wv = ws.get("layer_norm");
                       const Tensor& g = ctx.grad();
                       Tensor gx = ctx.needs(0) ? Tensor::empty(xv.shape(), xv.dtype()) : Tensor();
                       Tensor gw = ctx.needs(1) ? Tensor::zeros(norm_shape, xv.dtype()) : Tensor();
                       Tensor gb = ctx.needs(2) ? Tensor::zeros(norm_shape, xv.dtype()) : Tensor();
                       dispatch_floating(xv.dtype(), "layer_norm", [&]<typename T>() {
                         kernels::layer_norm_backward(
                             xv.data<T>(), wv.defined() ? wv.data<T>() : nullptr, mean.data<T>(),
                             rstd.data<T>(), g.data<T>(), gx.defined() ? gx.data<T>() : nullptr,
                             gw.defined() ? gw.data<T>() : nullptr,
                             gb.defined() ? gb.data<T>() : nullptr, rows, n);
                       });
                       if (gx.defined()) ctx.set(0, gx);
                       if (gw.defined()) ctx.set(1, gw);
                       if (gb.defined()) ctx.set(2, gb);
                     });
  }
  return y;
}

}  // namespace gaze
