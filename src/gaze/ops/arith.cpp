#include "gaze/ops/arith.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/elementwise.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/unary.h"

namespace gaze {

using autograd::any_requires_grad;
using autograd::BackwardContext;
using autograd::record;
using autograd::SavedTensor;
using kernels::BinaryOp;

namespace {

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  ops_detail::check_floating(a, name, "input");
  ops_detail::check_floating(b, name, "other");
  ops_detail::check_same_dtype(a, b, name);
  const Shape out = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor y = Tensor::empty(out, a.dtype());
  dispatch_floating(a.dtype(), name, [&]<typename T>() {
    kernels::binary(op, a.data<T>(), a.shape(), b.data<T>(), b.shape(), y.data<T>(), out);
  });
  return y;
}

// y = x * scale + shift, differentiable in x.
Tensor affine(const Tensor& x, double scale, double shift, const char* name) {
  ops_detail::check_floating(x, name);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), name, [&]<typename T>() {
    kernels::affine(x.data<T>(), y.data<T>(), x.numel(), static_cast<T>(scale),
                    static_cast<T>(shift));
  });
  if (any_requires_grad({&x})) {
    record(name, {x}, {y}, [scale](BackwardContext& ctx) {
      ctx.set(0, scale == 1.0 ? ctx.grad() : mul(ctx.grad(), scale));
    });
  }
  return y;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return add(a, mul(b, alpha));
  Tensor y = binary_forward(BinaryOp::add, a, b, "add");
  if (any_requires_grad({&a, &b})) {
    record("add", {a, b}, {y}, [sa = a.shape(), sb = b.shape()](BackwardContext& ctx) {
      if (ctx.needs(0)) ctx.set(0, sum_to(ctx.grad(), sa));
      if (ctx.needs(1)) ctx.set(1, sum_to(ctx.grad(), sb));
    });
  }
  return y;
}

Tensor sub(const Tensor& a, const Tensor& b, double alpha) {
  if (alpha != 1.0) return sub(a, mul(b, alpha));
  Tensor y = binary_forward(BinaryOp::sub, a, b, "sub");
  if (any_requires_grad({&a, &b})) {
    record("sub", {a, b}, {y}, [sa = a.shape(), sb = b.shape()](BackwardContext& ctx) {
      if (ctx.needs(0)) ctx.set(0, sum_to(ctx.grad(), sa));
      if (ctx.needs(1)) ctx.set(1, sum_to(neg(ctx.grad()), sb));
    });
  }
  return y;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::mul, a, b, "mul");
  if (any_requires_grad({&a, &b})) {
    // d(a*b)/da = b, d(a*b)/db = a; each input is saved only if the other needs a gradient.
    SavedTensor a_saved(b.requires_grad() ? a : Tensor()),
        b_saved(a.requires_grad() ? b : Tensor());
    record("mul", {a, b}, {y},
           [a_saved, b_saved, sa = a.shape(), sb = b.shape()](BackwardContext& ctx) {
             if (ctx.needs(0)) ctx.set(0, sum_to(mul(ctx.grad(), b_saved.get("mul")), sa));
             if (ctx.needs(1)) ctx.set(1, sum_to(mul(ctx.grad(), a_saved.get("mul")), sb));
           });
  }
  return y;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::div, a, b, "div");
  if (any_requires_grad({&a, &b})) {
    // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2.
    SavedTensor a_saved(b.requires_grad() ? a : Tensor()), b_saved(b);
    record("div", {a, b}, {y},
           [a_saved, b_saved, sa = a.shape(), sb = b.shape()](BackwardContext& ctx) {
             const Tensor& bv = b_saved.get("div");
             if (ctx.needs(0)) ctx.set(0, sum_to(div(ctx.grad(), bv), sa));
             if (ctx.needs(1))
               ctx.set(1, sum_to(neg(div(mul(ctx.grad(), a_saved.get("div")), mul(bv, bv))), sb));
           });
  }
  return y;
}

Tensor add(const Tensor& x, double s) {
  return affine(x, 1.0, s, "add");
}
Tensor sub(const Tensor& x, double s) {
  return affine(x, 1.0, -s, "sub");
}
Tensor rsub(const Tensor& x, double s) {
  return affine(x, -1.0, s, "rsub");
}
Tensor mul(const Tensor& x, double s) {
  return affine(x, s, 0.0, "mul");
}
Tensor div(const Tensor& x, double s) {
  return affine(x, 1.0 / s, 0.0, "div");
}
Tensor rdiv(const Tensor& x, double s) {
  return mul(reciprocal(x), s);
}

Tensor neg(const Tensor& x) {
  return detail::unary(kernels::UnaryOp::neg, x, "neg");
}
Tensor sqrt(const Tensor& x) {
  return detail::unary(kernels::UnaryOp::sqrt, x, "sqrt");
}
Tensor abs(const Tensor& x) {
  return detail::unary(kernels::UnaryOp::abs, x, "abs");
}
Tensor reciprocal(const Tensor& x) {
  return detail::unary(kernels::UnaryOp::reciprocal, x, "reciprocal");
}

Tensor pow(const Tensor& x, double p) {
  ops_detail::check_floating(x, "pow");
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), "pow", [&]<typename T>() {
    kernels::pow_scalar(x.data<T>(), y.data<T>(), x.numel(), p);
  });
  if (any_requires_grad({&x})) {
    record("pow", {x}, {y}, [xs = SavedTensor(x), p](BackwardContext& ctx) {
      const Tensor& xv = xs.get("pow");
      Tensor gx = Tensor::empty(xv.shape(), xv.dtype());
      dispatch_floating(xv.dtype(), "pow", [&]<typename T>() {
        kernels::pow_scalar_backward(xv.data<T>(), ctx.grad().data<T>(), gx.data<T>(), xv.numel(),
                                     p);
      });
      ctx.set(0, gx);
    });
  }
  return y;
}

Tensor expand(const Tensor& x, const Shape& shape) {
  ops_detail::check_floating(x, "expand");
  const Shape out = broadcast_shapes(x.shape(), shape, "expand");
  GAZE_CHECK(out == shape, ValueError,
             "expand: a tensor of shape {} cannot be expanded to {} (only size-1 dims can grow)",
             x.shape_str(), shape.str());
  if (out == x.shape()) return x;
  Tensor y = Tensor::empty(out, x.dtype());
  dispatch_floating(x.dtype(), "expand", [&]<typename T>() {
    kernels::binary(BinaryOp::first, x.data<T>(), x.shape(), x.data<T>(), x.shape(), y.data<T>(),
                    out);
  });
  if (any_requires_grad({&x})) {
    record("expand", {x}, {y},
           [sx = x.shape()](BackwardContext& ctx) { ctx.set(0, sum_to(ctx.grad(), sx)); });
  }
  return y;
}

}  // namespace gaze
