#include "gaze/nn/embedding.h"

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/nn/init.h"
#include "gaze/ops/embedding.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

void Embedding::check_padding(std::optional<int64_t> pad) {
  const int64_t n = num_embeddings;
  if (!pad) return;
  GAZE_CHECK(*pad >= -n && *pad < n, IndexError,
             "Embedding: padding_idx {} must be within [{}, {})", *pad, -n, n);
  padding_idx = *pad < 0 ? *pad + n : *pad;
}

Embedding::Embedding(int64_t n, int64_t d, std::optional<int64_t> pad)
    : Module("Embedding"), num_embeddings(n), embedding_dim(d), padding_idx(pad) {
  GAZE_CHECK(n > 0 && d > 0, ValueError,
             "Embedding: num_embeddings and embedding_dim must be positive, got {}, {}", n, d);
  check_padding(pad);
  weight = register_parameter("weight", init::normal_(Tensor::empty(Shape{n, d}), 0.0, 1.0));
  if (padding_idx) {
    NoGradGuard no_grad;
    Tensor row = select(weight, 0, *padding_idx);
    row.fill_(0.0);
  }
}

Embedding::Embedding(Pretrained, const Tensor& w, bool freeze, std::optional<int64_t> pad)
    : Module("Embedding") {
  GAZE_CHECK(w.defined() && w.dim() == 2 && w.size(0) > 0 && w.size(1) > 0 &&
                 (w.dtype() == DType::f32 || w.dtype() == DType::f64),
             ValueError,
             "Embedding.from_pretrained: embeddings must be a float [N, D] table, got {}",
             w.defined() ? w.shape_str() : "undefined");
  num_embeddings = w.size(0), embedding_dim = w.size(1);
  check_padding(pad);
  weight = register_parameter("weight", w.detach());  // its own autograd state, w's storage
  weight.set_requires_grad(!freeze);
}

std::shared_ptr<Embedding> Embedding::from_pretrained(const Tensor& embeddings, bool freeze,
                                                      std::optional<int64_t> padding_idx) {
  return std::shared_ptr<Embedding>(new Embedding(Pretrained{}, embeddings, freeze, padding_idx));
}

Tensor Embedding::forward(const Tensor& input) const {
  return embedding(input, weight, padding_idx);
}

}  // namespace gaze::nn
