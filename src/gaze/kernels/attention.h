// Fused, tiled scaled-dot-product attention (the FlashAttention-2 algorithm) over raw buffers:
// forward with an online softmax that never builds the Tq x Tk matrix, backward that recomputes the
// probabilities from the saved log-sum-exp, and the explicit probabilities for callers that ask.
#pragma once

#include <cstdint>

#include "gaze/kernels/dropout.h"

namespace gaze::kernels {

// Element strides of a [B, H, T, D] view of a buffer (D is contiguous). The same struct describes
// [B, H, T, D] storage (t = D, h = T*D, b = H*T*D) and [B, T, H, D] storage (t = H*D, h = D,
// b = T*H*D), so projections can be attended without a transpose.
struct HeadLayout {
  int64_t b = 0, h = 0, t = 0;
};

// An additive float mask or a boolean mask (true = may attend) broadcast to [B, H, Tq, Tk]: a
// stride of 0 repeats the element along that dim.
struct ScoreMask {
  const void* data = nullptr;
  bool is_bool = false;
  int64_t b = 0, h = 0, q = 0, k = 0;
};

template <typename T>
struct AttentionArgs {
  int64_t B = 0, H = 0, Hkv = 0, Tq = 0, Tk = 0, D = 0, Dv = 0;  // Hkv divides H (grouped-query)
  const T* q = nullptr;                                          // [B, H, Tq, D]
  const T* k = nullptr;                                          // [B, Hkv, Tk, D]
  const T* v = nullptr;                                          // [B, Hkv, Tk, Dv]
  HeadLayout q_layout, k_layout, v_layout;
  double scale = 1.0;
  // Query i sits at absolute position i + query_offset relative to key 0: causal attention lets it
  // see keys j <= i + query_offset (0 = PyTorch's top-left alignment; Tk - Tq = a KV cache's
  // bottom-right), and ALiBi penalises |i + query_offset - j|.
  bool causal = false;
  int64_t query_offset = 0;
  // Sliding window (local attention): query i sees only keys j with |i + query_offset - j| <=
  // window (and, if causal, j <= i + query_offset); key blocks outside the band are skipped, so the
  // work grows as Tq * window. Negative: no window.
  int64_t window = -1;
  const int64_t* key_lengths = nullptr;  // [B]: keys j >= key_lengths[b] are padding
  const bool* key_padding = nullptr;     // [B, Tk], true = padding (ignored)
  ScoreMask mask;
  const T* alibi_slopes = nullptr;  // [H]: adds -slope_h * |i + query_offset - j| to the scores
  double dropout_p = 0.0;           // on the probabilities; the mask comes from `dropout` counters
  DropoutStream dropout;  // element (b, h, i, j) uses counter index ((b*H + h)*Tk + j)*Tq + i
  // Optional [Tk, B] (forward of at most 4 queries, no mask, ALiBi, padding or dropout): key and
  // value j of batch b lie in batch entry kv_rows[j * B + b] of k and v, whose layouts then step
  // over entries of a batch of any size (a KV cache whose beams were reordered without moving).
  const int64_t* kv_rows = nullptr;
  // float only, on the path of at most 4 queries (as kv_rows): k and v hold bfloat16 values (bit
  // patterns), two in each float slot, and their layouts count bfloat16 elements. A KV cache kept
  // in bf16 (nn::KVCache) halves what a decoding step reads; products and softmax stay in float.
  bool kv_bf16 = false;
};

// out [B, H, Tq, Dv] in out_layout; lse [B, H, Tq] contiguous: log-sum-exp of each row's scores
// (-inf for a row that sees no key: its output is 0).
template <typename T>
void attention_forward(const AttentionArgs<T>& a, T* out, const HeadLayout& out_layout, T* lse);

// Gradients of the forward above. dout/out in out_layout; dq like q (q_layout); dk/dv like k/v.
// dk and dv are written, not accumulated. Rows that saw no key give zero gradients.
template <typename T>
void attention_backward(const AttentionArgs<T>& a, const T* out, const T* dout,
                        const HeadLayout& out_layout, const T* lse, T* dq, T* dk, T* dv);

// The probabilities (after dropout, as PyTorch returns them) of `n_heads` heads listed in `heads`:
// probs [B, n_heads, Tq, Tk] contiguous. Builds Tq x Tk values per head: only for callers that ask.
template <typename T>
void attention_probs(const AttentionArgs<T>& a, const T* lse, const int64_t* heads, int64_t n_heads,
                     T* probs);

// ALiBi slopes for n heads (Press et al. 2022): a geometric sequence starting at 2^(-8/n) for n a
// power of two; otherwise those of the nearest lower power of two followed by every other slope of
// the next power of two.
void alibi_slopes(int64_t n, double* out);

}  // namespace gaze::kernels
