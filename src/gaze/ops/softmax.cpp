#include "gaze/ops/softmax.h"

#include "gaze/autograd/node.h"
#include "gaze/kernels/softmax.h"
#include "gaze/ops/checks.h"

namespace gaze {
namespace {

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const char* name) {
  ops_detail::check_floating(x, name);
  const int d = wrap_dim(dim, x.dim(), name);
  const auto ax = x.dim() == 0 ? ops_detail::Axis{} : ops_detail::split_at(x.shape(), d);
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), name, [&]<typename T>() {
    kernels::softmax(x.data<T>(), y.data<T>(), ax.outer, ax.n, ax.inner, log);
  });
  if (autograd::any_requires_grad({&x})) {
    autograd::record(
        name, {x}, {y},
        [ys = autograd::SavedTensor(y), ax, log, name](autograd::BackwardContext& ctx) {
          const Tensor& yv = ys.get(name);
          const Tensor& g = ctx.grad();
          Tensor gx = Tensor::empty(g.shape(), g.dtype());
          dispatch_floating(g.dtype(), name, [&]<typename T>() {
            kernels::softmax_backward(yv.data<T>(), g.data<T>(), gx.data<T>(), ax.outer, ax.n,
                                      ax.inner, log);
          });
          ctx.set(0, gx);
        });
  }
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, false, "softmax");
}
Tensor log_softmax(const Tensor& x, int64_t dim) {
  return softmax_impl(x, dim, true, "log_softmax");
}

}  // namespace gaze
