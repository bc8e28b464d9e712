#include "gaze/ops/loss.h"

#include <numeric>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/cross_entropy.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"

namespace gaze {

Reduction parse_reduction(std::string_view s) {
  return parse_enum<Reduction>(s, "reduction");
}

namespace {

// The fused op on logits [N, C] and targets [N]; returns per-row losses [N] (reduction none) or a
// 0-d loss.
Tensor cross_entropy_2d(const Tensor& z, const Tensor& y, const CrossEntropyOptions& o) {
  const int64_t n = z.shape()[0], c = z.shape()[1];
  const Tensor& w = o.weight;
  Tensor loss = Tensor::empty(Shape{n}, z.dtype()), wrow = Tensor::empty(Shape{n}, z.dtype()),
         lse = Tensor::empty(Shape{n}, z.dtype());
  dispatch_floating(z.dtype(), "cross_entropy", [&]<typename T>() {
    kernels::cross_entropy(z.data<T>(), y.data<int64_t>(), w.defined() ? w.data<T>() : nullptr, n,
                           c, o.ignore_index, o.label_smoothing, loss.data<T>(), wrow.data<T>(),
                           lse.data<T>());
  });
  Tensor out;
  double denom = 1.0;
  {
    NoGradGuard no_grad;
    if (o.reduction == Reduction::none) {
      out = loss;
    } else {
      out = sum(loss);
      if (o.reduction == Reduction::mean) {
        denom = sum(wrow).to_dtype(DType::f64).item<double>();
        out = div(out, denom);  // 0 / 0 = NaN when every target is ignored, as torch
      }
    }
  }
  if (autograd::any_requires_grad({&z})) {
    autograd::record(
        "cross_entropy", {z}, {out},
        [zs = autograd::SavedTensor(z), ys = autograd::SavedTensor(y),
         ws = autograd::SavedTensor(w), lse, o, n, c, denom](autograd::BackwardContext& ctx) {
          const Tensor& zv = zs.get("cross_entropy");
          const Tensor& g = ctx.grad();
          // Per-row scale of the gradient: the incoming gradient, divided for "mean".
          Tensor scale =
              o.reduction == Reduction::none ? g : Tensor::full(Shape{n}, 0.0, zv.dtype());
          Tensor gz = Tensor::empty(zv.shape(), zv.dtype());
          dispatch_floating(zv.dtype(), "cross_entropy", [&]<typename T>() {
            if (o.reduction != Reduction::none) {
              const T s = g.data<T>()[0] / static_cast<T>(denom);
              for (int64_t i = 0; i < n; ++i) scale.data<T>()[i] = s;
            }
            const Tensor& wv = ws.get("cross_entropy");
            kernels::cross_entropy_backward(zv.data<T>(), ys.get("cross_entropy").data<int64_t>(),
                                            wv.defined() ? wv.data<T>() : nullptr, lse.data<T>(),
                                            scale.data<T>(), n, c, o.ignore_index,
                                            o.label_smoothing, gz.data<T>());
          });
          ctx.set(0, gz);
        });
  }
  return out;
}

}  // namespace

double cross_entropy_divisor(const Tensor& target, const CrossEntropyOptions& o) {
  ops_detail::check_dtype(target, DType::i64, "cross_entropy_divisor", "target");
  const Tensor w = o.weight.defined() ? o.weight.to_dtype(DType::f64) : Tensor();
  const int64_t* y = target.data<int64_t>();
  double total = 0;
  for (int64_t i = 0; i < target.numel(); ++i) {
    if (y[i] == o.ignore_index) continue;
    GAZE_CHECK(y[i] >= 0 && (!w.defined() || y[i] < w.numel()), ValueError,
               "cross_entropy_divisor: target {} is not a class", y[i]);
    total += w.defined() ? w.data<double>()[y[i]] : 1.0;
  }
  return total;
}

Tensor cross_entropy(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o) {
  ops_detail::check_floating(input, "cross_entropy", "input");
  ops_detail::check_dtype(target, DType::i64, "cross_entropy", "target");
  GAZE_CHECK(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0, ValueError,
             "cross_entropy: label_smoothing must be between 0.0 and 1.0, got {}",
             o.label_smoothing);
  GAZE_CHECK(input.dim() >= 1, ValueError,
             "cross_entropy: input must have at least 1 dim (the classes), got a 0-d tensor");
  // Expected target shape: input's shape without the class dim (dim 1, or dim 0 for 1-D input).
  const int cdim = input.dim() == 1 ? 0 : 1;
  Shape want = input.shape();
  want.erase(cdim);
  GAZE_CHECK(target.shape() == want, ValueError,
             "cross_entropy: target has shape {} but input {} needs target shape {} (input without "
             "its class dim {})",
             target.shape_str(), input.shape_str(), want.str(), cdim);
  const int64_t c = input.shape()[cdim];
  if (o.weight.defined()) {
    ops_detail::check_same_dtype(input, o.weight, "cross_entropy");
    GAZE_CHECK(o.weight.shape() == Shape{c}, ValueError,
               "cross_entropy: weight has shape {}, expected [{}] (one per class)",
               o.weight.shape_str(), c);
  }
  const int64_t* t = target.data<int64_t>();
  for (int64_t i = 0; i < target.numel(); ++i)
    GAZE_CHECK(t[i] == o.ignore_index || (t[i] >= 0 && t[i] < c), IndexError,
               "cross_entropy: target {} at position {} is out of bounds for {} classes (expected "
               "0 <= target < {} or "
               "ignore_index {})",
               t[i], i, c, c, o.ignore_index);
  // Bring the classes to the last dim and flatten to rows.
  Tensor z = input;
  if (input.dim() == 1) {
    z = unsqueeze(input, 0);
  } else if (input.dim() > 2) {
    std::vector<int64_t> perm{0};
    for (int i = 2; i < input.dim(); ++i) perm.push_back(i);
    perm.push_back(1);
    z = permute(input, perm);
  }
  z = reshape(z, std::vector<int64_t>{-1, c});
  const Tensor rows = target.alias(Shape{target.numel()});
  Tensor out = cross_entropy_2d(z, rows, o);
  if (o.reduction == Reduction::none) out = reshape(out, target.shape());
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  ops_detail::check_floating(input, "mse_loss", "input");
  ops_detail::check_floating(target, "mse_loss", "target");
  const Tensor d = sub(input, target);
  const Tensor sq = mul(d, d);
  switch (reduction) {
    case Reduction::none:
      return sq;
    case Reduction::sum:
      return sum(sq);
    case Reduction::mean:
      return mean(sq);
  }
  return sq;
}

}  // namespace gaze
