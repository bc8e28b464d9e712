// Matrix products with autograd: matmul with torch.matmul's semantics (1-D promotion, broadcast
// batch dims) plus transpose flags that avoid copying a transposed operand, and linear (x W^T + b).
#pragma once

#include "gaze/core/tensor.h"

namespace gaze {

// torch.matmul(input, other). transpose_a / transpose_b use the transpose of the last two dims of a
// >= 2-D operand without materialising it.
Tensor matmul(const Tensor& input, const Tensor& other, bool transpose_a = false,
              bool transpose_b = false);
// torch.bmm: [B, n, m] @ [B, m, p] -> [B, n, p], no broadcasting.
Tensor bmm(const Tensor& input, const Tensor& mat2);
// torch.nn.functional.linear: input [..., in] @ weight[out, in]^T + bias[out] (bias may be
// undefined).
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());

namespace detail {
// Checks linear's arguments (naming `op` in errors); returns {rows, in_features, out_features}.
struct LinearDims {
  int64_t rows, in_features, out_features;
};
LinearDims check_linear(const Tensor& input, const Tensor& weight, const Tensor& bias,
                        const char* op);
// Whether float32 linear layers multiply in bf16 now: autocast asks for it (core/autocast.h) and
// the CPU has the instructions (without them autocast is a no-op).
bool autocast_bf16_active();
}  // namespace detail

}  // namespace gaze
