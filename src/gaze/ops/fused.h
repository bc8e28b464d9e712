// Fused ops that save passes over memory without changing results: a linear layer with its
// activation in the GEMM's epilogue, and residual addition with layer normalisation in one kernel.
#pragma once

#include <string_view>
#include <vector>

#include "gaze/core/enums.h"
#include "gaze/core/tensor.h"
#include "gaze/kernels/gemm.h"

namespace gaze {

enum class Activation { none, relu, gelu, gelu_tanh };
GAZE_ENUM_NAMES(Activation, {Activation::none, "none"}, {Activation::relu, "relu"},
                {Activation::gelu, "gelu"}, {Activation::gelu_tanh, "gelu_tanh"})
// "none" | "relu" | "gelu" | "gelu_tanh" (torch's activation names; "gelu_tanh" =
// gelu(approximate="tanh"))
Activation parse_activation(std::string_view name);
// The same activation as a GEMM epilogue.
kernels::GemmAct gemm_act(Activation act);

// act(x W^T + b). Without autograd the bias and the activation run inside the GEMM; with autograd
// the pre-activation is kept for the backward (the bias still rides in the GEMM).
Tensor linear_activation(const Tensor& input, const Tensor& weight, const Tensor& bias,
                         Activation act);

struct AddNorm {
  Tensor sum;  // x + residual (the residual stream of a pre-norm Transformer)
  Tensor out;  // layer_norm(x + residual)
};
// Both results from one pass; gradients flow into x and residual through either output.
AddNorm add_layer_norm(const Tensor& x, const Tensor& residual,
                       const std::vector<int64_t>& normalized_shape, const Tensor& weight,
                       const Tensor& bias, double eps = 1e-5);

}  // namespace gaze
