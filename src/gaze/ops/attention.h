// scaled_dot_product_attention with autograd: PyTorch 2.x's semantics on gaze's fused,
// memory-efficient kernel (O(T) memory; the Tq x Tk weights are built only when need_weights asks
// for them).
#pragma once

#include <optional>
#include <vector>

#include "gaze/core/rng.h"
#include "gaze/core/tensor.h"

namespace gaze {

// How q, k, v (and the output) are laid out: [B, H, T, D] as in PyTorch's SDPA, [B, T, H, D] as
// they come out of a batch-first projection, or [T, B, H, D] out of a sequence-first one (torch's
// MultiheadAttention default). The kernel reads each directly: no transpose.
enum class HeadsLayout { bhtd, bthd, tbhd };

// Which keys a causal query sees when Tq != Tk: top_left (PyTorch's is_causal: query i sees keys
// j <= i) or bottom_right (query i sees j <= i + Tk - Tq: the last query sees every key, as when
// decoding with a KV cache).
enum class CausalAlignment { top_left, bottom_right };

inline constexpr int64_t kMaxQueriesWithKvRows = 4;

struct SdpaOptions {
  // bool: true = may attend; float: added to the scores. Broadcastable to [B, H, Tq, Tk].
  Tensor attn_mask;
  double dropout_p = 0.0;  // on the attention probabilities (training)
  bool is_causal = false;
  std::optional<double> scale;  // default 1/sqrt(D)
  // Key padding, as lengths (int64 [B]: keys j >= length are ignored) or booleans (bool [B, Tk],
  // true = padding, ignored, as nn.MultiheadAttention's key_padding_mask).
  Tensor key_lengths;
  Tensor key_padding_mask;
  HeadsLayout layout = HeadsLayout::bhtd;  // of query and output
  std::optional<HeadsLayout> kv_layout;    // of key and value, if different from the query's
  CausalAlignment causal_alignment = CausalAlignment::top_left;
  // Sliding-window (local) attention: a query sees only the keys within `window` positions of its
  // own (with is_causal, only those before or at it), so the cost grows as T * window instead of
  // T^2. Query i's position is i, or i + Tk - Tq with bottom_right alignment. Mistral's
  // sliding_window = W is window = W - 1 with is_causal.
  std::optional<int64_t> window;
  Tensor alibi_slopes;  // [H]: adds -slope_h * |query position - key position| inside the kernel
  // Return the attention probabilities [B, len(weight_heads), Tq, Tk] (all heads if empty). Only
  // then is a Tq x Tk matrix built, for the requested heads. They are a detached copy (no
  // gradient).
  bool need_weights = false;
  std::vector<int64_t> weight_heads;
  Generator* generator = nullptr;  // dropout generator (default: the dropout generator)
  // Decoding from a KV cache whose rows were reordered without moving (nn::KVCache): int64
  // [Tk, B], key and value j of query batch b are batch entry kv_rows[j, b] of key and value, whose
  // batch may then be larger than the query's. Inference only (nothing recorded, no weights), for
  // at most kMaxQueriesWithKvRows queries, with lengths, causal and window but no mask, key
  // padding mask, ALiBi or dropout.
  Tensor kv_rows;
  // Keys and values kept as bfloat16 (nn::KVCache's bf16 store): float32 tensors whose elements
  // each hold two bf16 bit patterns, so their last dims are D/2 and Dv/2. The same calls as
  // kv_rows serve (inference, at most kMaxQueriesWithKvRows float32 queries, no mask, key padding
  // mask, ALiBi, dropout or weights); products and softmax run in float32 on the widened values.
  bool kv_bf16 = false;
  // Inference in bf16: both products (scores and probabilities times values) take bf16 operands
  // and accumulate in fp32; the softmax stays fp32 (kernels/attention_bf16.h). What a bf16 or int8
  // model's attention runs. Applies only when nothing is recorded for autograd, no weights are
  // asked for and the CPU and the options allow it (no score mask, ALiBi, window or dropout);
  // otherwise float32 runs.
  bool bf16_products = false;
};

// Whether bf16_products makes attention faster on this CPU (kernels/attention_bf16.h): what a bf16
// or int8 model asks before choosing it for speed.
bool bf16_attention_pays();

struct SdpaResult {
  Tensor output;   // [B, H, Tq, Dv] or [B, Tq, H, Dv], like the query
  Tensor weights;  // undefined unless need_weights
};

// q [B, H, Tq, D], k [B, Hkv, Tk, D], v [B, Hkv, Tk, Dv] (or the bthd layout); Hkv divides H
// (grouped-query / multi-query attention). 3-D inputs [B, T, D] are one head. A row whose keys are
// all masked gives output 0 and gradient 0 (PyTorch would give NaN).
// Whether a call of `num_queries` queries with options `o` may read its keys through kv_rows:
// what the operator requires of it, for callers (nn::KVCache) that choose before calling.
bool kv_rows_allowed(const SdpaOptions& o, int64_t num_queries);

SdpaResult scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                        const SdpaOptions& options);

// PyTorch's signature: torch.nn.functional.scaled_dot_product_attention.
Tensor scaled_dot_product_attention(const Tensor& query, const Tensor& key, const Tensor& value,
                                    const Tensor& attn_mask = Tensor(), double dropout_p = 0.0,
                                    bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

// ALiBi slopes for num_heads heads (Press et al. 2022), as a float32 tensor [num_heads].
Tensor alibi_slopes(int64_t num_heads, DType dtype = DType::f32);

}  // namespace gaze
