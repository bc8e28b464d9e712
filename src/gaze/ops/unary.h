// Elementwise activations and math with autograd: relu, gelu (exact or tanh approximation), tanh,
// sigmoid, exp, log.
#pragma once

#include <string_view>

#include "gaze/core/tensor.h"
#include "gaze/kernels/elementwise.h"

namespace gaze {

Tensor relu(const Tensor& input);
// approximate: "none" (exact, with erf) or "tanh", as torch.nn.functional.gelu.
Tensor gelu(const Tensor& input, std::string_view approximate = "none");
Tensor tanh(const Tensor& input);
Tensor sigmoid(const Tensor& input);
Tensor exp(const Tensor& input);
Tensor log(const Tensor& input);

namespace detail {
// y = op(x) with the backward from kernels::unary_backward; used by every op above.
Tensor unary(kernels::UnaryOp op, const Tensor& x, const char* name);
}  // namespace detail

}  // namespace gaze
