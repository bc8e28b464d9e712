#include "gaze/explain/explanation.h"

#include <fmt/ranges.h>

#include "gaze/core/error.h"
#include "gaze/explain/aggregate.h"

namespace gaze::explain {

const AttentionBlock* Explanation::block(Stack stack) const {
  for (const auto& b : blocks)
    if (b.stack == stack) return &b;
  return nullptr;
}

void finish(Explanation& e) {
  if (const AttentionBlock* enc = e.block(Stack::encoder); enc && !enc->weights.empty()) {
    std::vector<Tensor> means;
    for (const Tensor& w : enc->weights) means.push_back(mean_heads(w));
    e.rollout = rollout(means);
    if (e.pooling) {
      e.importance = token_importance(e.rollout, *e.pooling, e.pooling_attention);
      e.importance_rule = e.pooling_attention.empty()
                              ? "from the attention rollout"
                              : "the rollout's rows weighted by the pooling attention";
    }
  } else if (!e.pooling_attention.empty()) {
    // A recurrent backbone: the pooling attention is the only attention there is.
    e.importance = e.pooling_attention;
    e.importance_rule = "the pooling attention's weights (the backbone has no attention)";
  }
  if (const AttentionBlock* cross = e.block(Stack::cross)) {
    const int64_t L = cross->num_layers;
    const int64_t layer = e.alignment_layer < 0 ? e.alignment_layer + L : e.alignment_layer;
    GAZE_CHECK(layer >= 0 && layer < L, IndexError,
               "explain: alignment layer {} out of range for a decoder of {} layers",
               e.alignment_layer, L);
    size_t at = 0;
    while (at < cross->layers.size() && cross->layers[at] != layer) ++at;
    GAZE_CHECK(at < cross->layers.size(), ValueError,
               "explain: the alignment layer {} was not captured (captured layers: {})", layer,
               fmt::join(cross->layers, ", "));
    e.alignment_layer = layer;
    e.alignment = mean_heads(cross->weights[at]);
    e.hard_alignment = argmax_rows(e.alignment);
  }
}

}  // namespace gaze::explain
