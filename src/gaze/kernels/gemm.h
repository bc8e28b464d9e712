// Matrix multiplication: batched, strided, with optional transposes. float32 runs on oneDNN (chosen
// by measurement, see README); float64 runs a plain reference loop that serves the gradient checks.
#pragma once

#include <cstdint>
#include <string>

namespace gaze::kernels {

// Row-major operands. For b < batch:
//   C[b] = alpha * op(A[b]) @ op(B[b]) + beta * C[b],  op(X) = X^T if the trans flag is set, else
//   X,
// with op(A[b]) of M x K, op(B[b]) of K x N and C[b] of M x N. A[b] starts at A + b * stride_a and
// its stored rows are lda apart (likewise B, C). A stride of 0 broadcasts one matrix over the
// batch. beta == 0 ignores the previous contents of C (NaN included).
// Applied to each output element after the product and the bias, while it is still in registers.
enum class GemmAct : int { none, relu, gelu, gelu_tanh };

struct GemmArgs {
  int64_t batch = 1, M = 0, N = 0, K = 0;
  bool trans_a = false, trans_b = false;
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  double alpha = 1.0, beta = 0.0;
  // Epilogue: C = act(alpha * op(A) op(B) + beta * C + bias), bias [N] broadcast over rows.
  bool bias = false;
  GemmAct act = GemmAct::none;

  // One product of dense row-major operands: op(A) M x K, op(B) K x N, C M x N.
  static GemmArgs dense(int64_t M, int64_t N, int64_t K, bool trans_a = false,
                        bool trans_b = false) {
    GemmArgs g;
    g.M = M, g.N = N, g.K = K;
    g.trans_a = trans_a, g.trans_b = trans_b;
    g.lda = trans_a ? M : K, g.ldb = trans_b ? K : N, g.ldc = N;
    return g;
  }
};

// `bias` is read when g.bias is set (N values).
template <typename T>
void gemm(const GemmArgs& g, const T* A, const T* B, T* C, const T* bias = nullptr);

// The oneDNN implementation a float32 GEMM of this layout runs on (e.g. "brg:avx512_core"); tests
// use it to catch layouts that fall back to oneDNN's slow reference kernel ("ref:...").
std::string gemm_implementation(const GemmArgs& g, bool bf16 = false);

// The same product of bfloat16 operands (bit patterns, e.g. from float_to_bf16) with float32
// accumulation, C and bias: mixed-precision training's products (core/autocast.h). Needs a CPU
// with bf16 matrix instructions (kernels::precision_supported); K > 0.
void gemm_bf16(const GemmArgs& g, const uint16_t* A, const uint16_t* B, float* C,
               const float* bias = nullptr);

}  // namespace gaze::kernels
