#include "gaze/nn/embedding.h"

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/nn/init.h"
#include "gaze/ops/embedding.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

Embedding::Embedding(int64_t n, int64_t d, std::optional<int64_t> pad)
    : Module("Embedding"), num_embeddings(n), embedding_dim(d), padding_idx(pad) {
  GAZE_CHECK(n > 0 && d > 0, ValueError,
             "Embedding: num_embeddings and embedding_dim must be positive, got {}, {}", n, d);
  if (pad) {
    GAZE_CHECK(*pad >= -n && *pad < n, IndexError,
               "Embedding: padding_idx {} must be within [{}, {})", *pad, -n, n);
    padding_idx = *pad < 0 ? *pad + n : *pad;
  }
  weight = register_parameter("weight", init::normal_(Tensor::empty(Shape{n, d}), 0.0, 1.0));
  if (padding_idx) {
    NoGradGuard no_grad;
    Tensor row = select(weight, 0, *padding_idx);
    row.fill_(0.0);
  }
}

Tensor Embedding::forward(const Tensor& input) const {
  return embedding(input, weight, padding_idx);
}

}  // namespace gaze::nn
