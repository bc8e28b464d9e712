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
  const kernels::DropoutStream rs{g.seed(), g.stream(),
                                  g.reserve(static_cast<uint64_t>((x.numel() + 3) / 4))};
  Tensor y = Tensor::empty(x.shape(), x.dtype());
  // For the backward, the mask as one bit per element (1/32 of a float32 activation): drawing it
  // again would cost as much Philox as the forward, a tenth of a Transformer's training step.
  const bool grad = autograd::any_requires_grad({&x});
  Tensor keep = grad ? Tensor::empty({(x.numel() + 7) / 8}, DType::b8) : Tensor();
  auto* bits = grad ? reinterpret_cast<uint8_t*>(keep.data<bool>()) : nullptr;
  dispatch_floating(x.dtype(), "dropout", [&]<typename T>() {
    kernels::dropout(x.data<T>(), y.data<T>(), x.numel(), p, rs, bits);
  });
  if (grad) {
    autograd::record("dropout", {x}, {y}, [p, keep](autograd::BackwardContext& ctx) {
      const Tensor& gy = ctx.grad();
      Tensor gx = Tensor::empty(gy.shape(), gy.dtype());
      dispatch_floating(gy.dtype(), "dropout", [&]<typename T>() {
        kernels::dropout_masked(gy.data<T>(), gx.data<T>(), gy.numel(), p,
                                reinterpret_cast<const uint8_t*>(keep.data<bool>()));
      });
      ctx.set(0, gx);
    });
  }
  return y;
}

}  // namespace gaze
