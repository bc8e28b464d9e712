// The bf16 attention forward on AMX tiles (Intel Sapphire Rapids and later), where vdpbf16ps is
// slower than fp32 attention: the same rounding as attention_forward_bf16, other hardware.
#pragma once

#include "gaze/kernels/attention.h"

namespace gaze::kernels {

// Whether the CPU has AMX-BF16 tiles (CPUID), whether or not the OS lets this process use them.
bool cpu_has_amx_bf16();

// Whether this CPU has AMX-BF16 and Linux granted this process the tile state (once, on first
// call); false otherwise, and then callers fall back.
bool amx_attention_usable();

// attention_forward_bf16's contract (attention_bf16.h): q (times scale), k, v and the
// probabilities rounded to bf16, fp32 accumulation and softmax. Call only when
// amx_attention_usable() and attention_bf16_handles(a).
void attention_forward_amx(const AttentionArgs<float>& a, float* out, const HeadLayout& out_layout);

}  // namespace gaze::kernels
