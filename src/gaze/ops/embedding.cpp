#include "gaze/ops/embedding.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/embedding.h"
#include "gaze/ops/checks.h"

namespace gaze {

Tensor embedding(const Tensor& input, const Tensor& weight, std::optional<int64_t> padding_idx) {
  ops_detail::check_dtype(input, DType::i64, "embedding", "input");
  ops_detail::check_floating(weight, "embedding", "weight");
  GAZE_CHECK(weight.dim() == 2, ValueError,
             "embedding: weight must be 2-D [num_embeddings, embedding_dim], got {}",
             weight.shape_str());
  const int64_t V = weight.shape()[0], D = weight.shape()[1];
  int64_t pad = -1;
  if (padding_idx) {
    GAZE_CHECK(*padding_idx >= -V && *padding_idx < V, IndexError,
               "embedding: padding_idx {} must be within [{}, {}) for {} embeddings", *padding_idx,
               -V, V, V);
    pad = *padding_idx < 0 ? *padding_idx + V : *padding_idx;
  }
  const int64_t* idx = input.data<int64_t>();
  for (int64_t i = 0; i < input.numel(); ++i)
    GAZE_CHECK(
        idx[i] >= 0 && idx[i] < V, IndexError,
        "embedding: index {} at position {} of input {} is out of range for a table of {} rows "
        "(expected 0 <= index < {})",
        idx[i], i, input.shape_str(), V, V);
  Shape out = input.shape();
  out.push_back(D);
  Tensor y = Tensor::empty(out, weight.dtype());
  dispatch_floating(weight.dtype(), "embedding", [&]<typename T>() {
    kernels::embedding(idx, input.numel(), weight.data<T>(), D, y.data<T>());
  });
  if (autograd::any_requires_grad({&weight})) {
    autograd::record(
        "embedding", {weight}, {y},
        [in = autograd::SavedTensor(input), V, D, pad](autograd::BackwardContext& ctx) {
          const Tensor& g = ctx.grad();
          const Tensor& iv = in.get("embedding");
          Tensor gw = Tensor::zeros(Shape{V, D}, g.dtype());
          dispatch_floating(g.dtype(), "embedding", [&]<typename T>() {
            kernels::embedding_backward(iv.data<int64_t>(), iv.numel(), g.data<T>(), D,
                                        gw.data<T>(), pad);
          });
          ctx.set(0, gw);
        });
  }
  return y;
}

}  // namespace gaze
