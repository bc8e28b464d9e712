#include "gaze/ops/softmax.h"

#include <limits>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/softmax.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/reduce.h"

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

Tensor masked_softmax(const Tensor& x, const Tensor& mask, int64_t dim) {
  ops_detail::check_floating(x, "masked_softmax");
  ops_detail::check_dtype(mask, DType::b8, "masked_softmax", "mask");
  const Shape full = broadcast_shapes(x.shape(), mask.shape(), "masked_softmax");
  GAZE_CHECK(full == x.shape(), ValueError,
             "masked_softmax: mask of shape {} does not broadcast to the input {}",
             mask.shape_str(), x.shape_str());
  const int d = wrap_dim(dim, x.dim(), "masked_softmax");
  if (x.numel() == 0) return softmax(x, d);  // nothing to normalise
  // A finite bias (lowest/2, the fp-safe masking constant) instead of -inf: a fully masked slice
  // then softmaxes to a uniform row instead of NaN, and `valid` zeroes it.
  Tensor m, valid;
  {
    NoGradGuard no_grad;
    m = expand(mask.to_dtype(x.dtype()), x.shape());  // 1 keep, 0 drop
    valid = max(m, d, true).values;                   // 1 where the slice keeps something
  }
  Tensor bias = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), "masked_softmax", [&]<typename T>() {
    const T low = std::numeric_limits<T>::lowest() / 2;
    const T* mp = m.data<T>();
    T* bp = bias.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) bp[i] = mp[i] != T(0) ? T(0) : low;
  });
  return mul(softmax(add(x, bias), d), valid);
}

}  // namespace gaze
