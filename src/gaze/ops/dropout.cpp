#include "gaze/ops/dropout.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/dropout.h"
#include "gaze/ops/checks.h"

namespace gaze {

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  ops_detail::check_floating(x, "dropout");
  GAZE_CHECK(p >= 0.0 && p <= 1.0, ValueError,
             "dropout: probability has to be between 0 and 1, but got {}", p);
  if (!training || p == 0.0) return x;
  Generator& g = gen ? *gen : default_generator(RngPurpose::dropout);
  // Claim this call's counters now; the backward regenerates the same mask from them.
  const kernels::DropoutStream rs{g.seed(), g.stream(),
                                  g.reserve(static_cast<uint64_t>((x.numel() + 3) / 4))};
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  dispatch_floating(x.dtype(), "dropout", [&]<typename T>() {
    kernels::dropout(x.data<T>(), y.data<T>(), x.numel(), p, rs);
  });
  if (autograd::any_requires_grad({&x})) {
    autograd::record("dropout", {x}, {y}, [p, rs](autograd::BackwardContext& ctx) {
      const Tensor& gy = ctx.grad();
      Tensor gx = Tensor::empty(gy.shape(), gy.dtype());
      dispatch_floating(gy.dtype(), "dropout", [&]<typename T>() {
        kernels::dropout(gy.data<T>(), gx.data<T>(), gy.numel(), p, rs);
      });
      ctx.set(0, gx);
    });
  }
  return y;
}

}  // namespace gaze
