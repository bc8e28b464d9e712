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
  Tensor forward(const Tensor& input) const;

  int64_t num_embeddings, embedding_dim;
  std::optional<int64_t> padding_idx;
  Tensor weight;
};

}  // namespace gaze::nn
