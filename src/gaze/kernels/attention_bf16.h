// Attention forward for inference with bfloat16 products: Q K^T and P V take bf16 operands
// (AVX512-BF16 dot products) and accumulate in fp32; the online softmax stays fp32.
#pragma once

#include "gaze/kernels/attention.h"

namespace gaze::kernels {

// Whether attention_forward_bf16 runs `a` on this CPU: it has AVX512-BF16 (as oneDNN sees it,
// ONEDNN_MAX_CPU_ISA included), and `a` asks only for what the kernel does (key lengths, key
// padding, causal; no score mask, ALiBi, window, dropout or transposed keys; D and Dv <= 256).
bool attention_bf16_handles(const AttentionArgs<float>& a);

// attention_forward<float>'s result with q (times scale), k, v and the probabilities rounded to
// bf16 (nearest even) for the two products: what a bf16 or int8 model's attention runs. Call only
// when attention_bf16_handles(a).
// Whether the bf16 kernel is the faster attention on this CPU, for callers that choose it for
// speed (a bf16 or int8 model): vdpbf16ps does twice an fp32 FMA's multiply-adds per instruction,
// but on Intel's AMX cores (Sapphire Rapids) it issues at half the FMA's rate, so there it only
// matches fp32 attention's products and loses the conversions (measured: 43 against 88 GMAC/s per
// core; the classifier bench's int8 inference 92 against 75 ms with fp32 attention).
bool attention_bf16_pays();

void attention_forward_bf16(const AttentionArgs<float>& a, float* out, const HeadLayout& out_layout,
                            float* lse);

}  // namespace gaze::kernels
