#include "gaze/ops/reduce.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/kernels/reduce.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/shape_ops.h"

namespace gaze {

using autograd::any_requires_grad;
using autograd::BackwardContext;
using autograd::record;

namespace {

// Which dims of `s` are reduced; an empty list means all (as torch.sum(x, dim=[]) does).
std::vector<bool> reduced_dims(const Shape& s, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> red(s.ndim(), dims.empty());
  for (int64_t d : dims) {
    const int w = wrap_dim(d, s.ndim(), op);
    if (s.ndim() == 0) continue;
    GAZE_CHECK(!red[w], ValueError, "{}: dim {} appears more than once in the reduction dims", op,
               d);
    red[w] = true;
  }
  return red;
}

Shape keepdim_shape(const Shape& s, const std::vector<bool>& red) {
  Shape k = s;
  for (int i = 0; i < s.ndim(); ++i)
    if (red[i]) k[i] = 1;
  return k;
}

Shape squeeze_reduced(const Shape& s, const std::vector<bool>& red) {
  Shape out;
  for (int i = 0; i < s.ndim(); ++i)
    if (!red[i]) out.push_back(s[i]);
  return out;
}

// Sum over the marked dims, keeping them as size 1. Runs of adjacent reduced dims are one pass.
Tensor sum_kernel(const Tensor& x, const std::vector<bool>& red) {
  Tensor cur = x;
  Shape shape = x.shape();
  int i = shape.ndim() - 1;
  while (i >= 0) {
    if (!red[i]) {
      --i;
      continue;
    }
    int j = i;
    while (j - 1 >= 0 && red[j - 1]) --j;  // run [j, i]
    int64_t outer = 1, r = 1, inner = 1;
    for (int k = 0; k < shape.ndim(); ++k) {
      if (k < j)
        outer *= shape[k];
      else if (k <= i)
        r *= shape[k];
      else
        inner *= shape[k];
    }
    Shape next = shape;
    for (int k = j; k <= i; ++k) next[k] = 1;
    Tensor out = Tensor::empty(next, x.dtype());
    dispatch_floating(x.dtype(), "sum", [&]<typename T>() {
      kernels::sum_axis(cur.data<T>(), out.data<T>(), outer, r, inner);
    });
    cur = out;
    shape = next;
    i = j - 1;
  }
  if (cur.is_same(x)) cur = x.clone_data();  // nothing reduced: still return a new tensor
  return cur;
}

Tensor sum_impl(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, bool mean,
                const char* op) {
  ops_detail::check_floating(x, op);
  const std::vector<bool> red = reduced_dims(x.shape(), dims, op);
  int64_t count = 1;
  for (int i = 0; i < x.dim(); ++i)
    if (red[i]) count *= x.shape()[i];
  Tensor y;
  {
    NoGradGuard no_grad;
    y = sum_kernel(x, red);
    if (mean) y = mul(y, 1.0 / static_cast<double>(count));  // 0/0 = NaN for empty input, as torch
    const Shape out = keepdim ? keepdim_shape(x.shape(), red) : squeeze_reduced(x.shape(), red);
    y = y.alias(out);
  }
  if (any_requires_grad({&x})) {
    const double scale = mean ? 1.0 / static_cast<double>(count) : 1.0;
    record(op, {x}, {y},
           [sx = x.shape(), kd = keepdim_shape(x.shape(), red), scale](BackwardContext& ctx) {
             Tensor g = reshape(ctx.grad(), kd);
             if (scale != 1.0) g = mul(g, scale);
             ctx.set(0, expand(g, sx));
           });
  }
  return y;
}

}  // namespace

Tensor sum(const Tensor& x) {
  return sum_impl(x, {}, false, false, "sum");
}
Tensor sum(const Tensor& x, const std::vector<int64_t>& dim, bool keepdim) {
  return sum_impl(x, dim, keepdim, false, "sum");
}
Tensor mean(const Tensor& x) {
  return sum_impl(x, {}, false, true, "mean");
}
Tensor mean(const Tensor& x, const std::vector<int64_t>& dim, bool keepdim) {
  return sum_impl(x, dim, keepdim, true, "mean");
}

MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
  ops_detail::check_floating(x, "max");
  const int d = wrap_dim(dim, x.dim(), "max");
  const Shape xs = x.dim() == 0 ? Shape{1} : x.shape();
  GAZE_CHECK(
      xs[d] > 0, ValueError,
      "max: cannot reduce over dimension {} of size 0 (input shape {}); there is no maximum of "
      "nothing",
      dim, x.shape_str());
  const auto ax = ops_detail::split_at(xs, d);
  Shape kd = xs;
  kd[d] = 1;
  Shape out = keepdim ? kd : squeeze_reduced(xs, [&] {
    std::vector<bool> r(xs.ndim(), false);
    r[d] = true;
    return r;
  }());
  if (x.dim() == 0) out = Shape{};
  MaxResult res{Tensor::empty(out, x.dtype()), Tensor::empty(out, DType::i64)};
  dispatch_floating(x.dtype(), "max", [&]<typename T>() {
    kernels::max_axis(x.data<T>(), res.values.data<T>(), res.indices.data<int64_t>(), ax.outer,
                      ax.n, ax.inner);
  });
  if (any_requires_grad({&x})) {
    record("max", {x}, {res.values},
           [sx = x.shape(), ax, idx = autograd::SavedTensor(res.indices)](BackwardContext& ctx) {
             const Tensor& g = ctx.grad();
             Tensor gx = Tensor::empty(sx, g.dtype());
             dispatch_floating(g.dtype(), "max", [&]<typename T>() {
               kernels::scatter_axis(g.data<T>(), idx.get("max").data<int64_t>(), gx.data<T>(),
                                     ax.outer, ax.n, ax.inner);
             });
             ctx.set(0, gx);
           });
  }
  return res;
}

Tensor max(const Tensor& x) {
  ops_detail::check_floating(x, "max");
  GAZE_CHECK(x.numel() > 0, ValueError,
             "max: input of shape {} has no elements; there is no maximum", x.shape_str());
  Tensor flat = x.alias(Shape{x.numel()});
  Tensor y = Tensor::empty(Shape{}, x.dtype());
  Tensor idx = Tensor::empty(Shape{}, DType::i64);
  dispatch_floating(x.dtype(), "max", [&]<typename T>() {
    kernels::max_axis(flat.data<T>(), y.data<T>(), idx.data<int64_t>(), 1, x.numel(), 1);
  });
  if (any_requires_grad({&x})) {
    record("max", {x}, {y},
           [xs = autograd::SavedTensor(x), ys = autograd::SavedTensor(y)](BackwardContext& ctx) {
             // Ties share the gradient: g / count at every position equal to the maximum.
             const Tensor& xv = xs.get("max");
             Tensor gx = Tensor::zeros(xv.shape(), xv.dtype());
             dispatch_floating(xv.dtype(), "max", [&]<typename T>() {
               const T m = ys.get("max").template data<T>()[0];
               const T* p = xv.data<T>();
               int64_t count = 0;
               for (int64_t i = 0; i < xv.numel(); ++i)
                 count += (p[i] == m || (std::isnan(m) && std::isnan(p[i])));
               const T share = ctx.grad().data<T>()[0] / static_cast<T>(count);
               for (int64_t i = 0; i < xv.numel(); ++i)
                 if (p[i] == m || (std::isnan(m) && std::isnan(p[i]))) gx.data<T>()[i] = share;
             });
             ctx.set(0, gx);
           });
  }
  return y;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  const int lead = x.dim() - shape.ndim();
  GAZE_CHECK(lead >= 0, ValueError,
             "sum_to: cannot sum a tensor of shape {} to the larger shape {}", x.shape_str(),
             shape.str());
  std::vector<int64_t> dims;
  for (int i = 0; i < x.dim(); ++i) {
    if (i < lead) {
      dims.push_back(i);
    } else if (shape[i - lead] == 1 && x.shape()[i] != 1) {
      dims.push_back(i);
    } else {
      GAZE_CHECK(shape[i - lead] == x.shape()[i], ValueError,
                 "sum_to: shape {} does not broadcast to {} (dim {}: {} vs {})", shape.str(),
                 x.shape_str(), i, shape[i - lead], x.shape()[i]);
    }
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, true), shape);
}

}  // namespace gaze
