// nn::MultiheadAttention, as torch.nn.MultiheadAttention: same constructor, forward, mask
// polarities and state-dict keys, so a torch module's weights load unchanged; attention runs on the
// fused kernel.
#pragma once

#include <memory>
#include <optional>

#include "gaze/nn/linear.h"
#include "gaze/nn/module.h"

namespace gaze::nn {

struct MultiheadAttentionOutput {
  Tensor output;   // [Tq, B, E] (or [B, Tq, E] with batch_first; [Tq, E] for unbatched input)
  Tensor weights;  // [B, Tq, Tk] averaged over heads, [B, H, Tq, Tk] per head, or undefined
  // With AttentionArgs::weight_gradients: a zero leaf added to the heads' outputs (so after a
  // backward its grad is dL/d(head outputs)) and the value heads it was computed from (detached).
  Tensor probe, values;
  bool batch_first = true;  // the layout of probe and values: [B, T, H, D] or [T, B, H, D]
};

// dL/dA [B, H, Tq, Tk] of the attention probabilities A of a forward with weight_gradients, after
// a backward reached its probe: as O = A V per head (dropout off), dL/dA = dL/dO V^T. The fused
// kernel never materialises A in the graph; this recovers its gradient exactly.
Tensor attention_weight_gradient(const MultiheadAttentionOutput& r);

// torch.nn.MultiheadAttention.forward's keyword arguments after query, key and value. Masks follow
// torch: key_padding_mask [B, Tk] and a boolean attn_mask ([Tq, Tk] or [B*H, Tq, Tk]) mark
// positions that may NOT be attended (true = ignore); float masks are added to the scores.
// is_causal applies a causal mask (attn_mask may be omitted). need_weights builds the Tq x Tk
// weights (as torch, true by default); pass false for the memory-efficient path.
struct AttentionArgs {
  Tensor key_padding_mask{};  // {}: designated initialisers may leave any member out
  bool need_weights = true;
  Tensor attn_mask{};
  bool average_attn_weights = true;
  bool is_causal = false;
  // gaze: sliding-window attention, keys within this many positions of each query (SdpaOptions).
  std::optional<int64_t> window{};
  // gaze: the per-head weights (average_attn_weights false) of only these heads, in this order:
  // only their Tq x Tk matrices are built.
  std::vector<int64_t> weight_heads{};
  // gaze: fill MultiheadAttentionOutput::probe and values (attention x gradient explanations).
  bool weight_gradients = false;
};

class MultiheadAttention : public Module {
 public:
  MultiheadAttention(int64_t embed_dim, int64_t num_heads, double dropout = 0.0, bool bias = true,
                     std::optional<int64_t> kdim = std::nullopt,
                     std::optional<int64_t> vdim = std::nullopt, bool batch_first = false);

  // Queries that can see no key give 0 (torch gives NaN).
  MultiheadAttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                                   const AttentionArgs& args = {}) const;

  int64_t embed_dim, num_heads, head_dim, kdim, vdim;
  double dropout;
  bool batch_first;
  // Either in_proj_weight [3E, E] (kdim == vdim == E) or q/k/v_proj_weight [E, E], [E, kdim], [E,
  // vdim].
  Tensor in_proj_weight, q_proj_weight, k_proj_weight, v_proj_weight;
  Tensor in_proj_bias;  // [3E] or undefined
  std::shared_ptr<Linear> out_proj;
};

}  // namespace gaze::nn
