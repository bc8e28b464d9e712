// nn::Embedding, as torch.nn.Embedding: a [num_embeddings, embedding_dim] table ("weight") looked
// up by int64 indices; the padding_idx row starts at zero and gets no gradient.
#pragma once

#include <optional>

#include "gaze/nn/module.h"

namespace gaze::nn {

class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim,
            std::optional<int64_t> padding_idx = std::nullopt);
  // torch.nn.Embedding.from_pretrained: the table is `embeddings` [N, D] itself (shared, not
  // copied; the padding row is kept as given, only excluded from gradients) and, with freeze,
  // requires no gradient, so training leaves it unchanged.
  static std::shared_ptr<Embedding> from_pretrained(
      const Tensor& embeddings, bool freeze = true,
      std::optional<int64_t> padding_idx = std::nullopt);
  Tensor forward(const Tensor& input) const;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;
  Tensor weight;

 private:
  struct Pretrained {};
  Embedding(Pretrained, const Tensor& weight, bool freeze, std::optional<int64_t> padding_idx);
  void check_padding(std::optional<int64_t> pad);
};

}  // namespace gaze::nn
