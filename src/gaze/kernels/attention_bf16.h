// Attention forward for inference with bfloat16 products: Q K^T and P V take bf16 operands
// (AVX512-BF16 dot products, or AMX tiles) and accumulate in fp32; the online softmax stays fp32.
#pragma once

#include "gaze/kernels/attention.h"

namespace gaze::kernels {

// Whether attention_forward_bf16 runs `a` on this CPU: it has AVX512-BF16 (as oneDNN sees it,
// ONEDNN_MAX_CPU_ISA included), and `a` asks only for what the kernel does (key lengths, key
// padding, causal; no score mask, ALiBi, window, dropout or transposed keys; D and Dv <= 256).
bool attention_bf16_handles(const AttentionArgs<float>& a);

// Whether the bf16 kernel is the faster attention on this CPU, for callers that choose it for
// speed (a bf16 or int8 model). vdpbf16ps does twice an fp32 FMA's multiply-adds per instruction,
// but Intel's AMX cores (Sapphire Rapids) issue it at half the FMA's rate, where it only matches
// fp32 attention's products and loses the conversions (measured: 43 against 88 GMAC/s per core;
// the classifier bench's int8 inference took 92 ms, against 75 with fp32 attention). There the
// tiles do the products (attention_amx.h); without them (the OS refused the tile state), fp32
// attention is the faster.
bool attention_bf16_pays();

// Which hardware runs the bf16 products: the tiles where the CPU has AMX and the OS grants them,
// else vdpbf16ps (automatic), or one of the two by name (tests; amx only where usable).
enum class Bf16Kernel { automatic, avx512, amx };

// attention_forward<float>'s result with q (times scale), k, v and the probabilities rounded to
// bf16 (nearest even) for the two products: what a bf16 or int8 model's attention runs. Call only
// when attention_bf16_handles(a). No log-sum-exp: it serves only the probabilities and the
// backward, and this kernel is for inference.
void attention_forward_bf16(const AttentionArgs<float>& a, float* out, const HeadLayout& out_layout,
                            Bf16Kernel kernel = Bf16Kernel::automatic);

}  // namespace gaze::kernels
