#include "gaze/kernels/gemm.h"

#include <cmath>
#include <memory>
#include <unordered_map>
#include <vector>

#include "gaze/core/error.h"
#include "gaze/core/threads.h"
#include "gaze/kernels/onednn_matmul.h"

namespace gaze::kernels {
namespace {

// ---- float32: oneDNN matmul ---------------------------------------------------------------------

dnnl::memory::desc matrix_desc(int64_t batch, int64_t rows, int64_t cols, int64_t stride,
                               int64_t ld, bool trans,
                               dnnl::memory::data_type type = dnnl::memory::data_type::f32) {
  // Logical dims [batch, rows, cols]; stored transposed means element (r, c) lives at c * ld + r.
  // A batch of one gets the dense stride: oneDNN reads stride 0 as an exotic layout and falls back
  // to its slow reference kernel.
  if (batch == 1) stride = trans ? cols * ld : rows * ld;
  const dnnl::memory::dims dims{batch, rows, cols};
  const dnnl::memory::dims strides =
      trans ? dnnl::memory::dims{stride, 1, ld} : dnnl::memory::dims{stride, ld, 1};
  return dnnl::memory::desc(dims, type, strides);
}

using Cache = onednn::MatmulCache<18>;

// bf16: A and B are bfloat16 bit patterns, C (and the bias) float32.
std::shared_ptr<const onednn::Matmul> lookup(const GemmArgs& g, bool bf16 = false) {
  static Cache cache;
  // oneDNN wants broadcast batch dims as size 1, not stride 0.
  const int64_t ba = g.stride_a == 0 ? 1 : g.batch, bb = g.stride_b == 0 ? 1 : g.batch;
  const Cache::Key key{ba,
                       bb,
                       g.batch,
                       g.M,
                       g.N,
                       g.K,
                       g.trans_a,
                       g.trans_b,
                       g.lda,
                       g.ldb,
                       g.ldc,
                       g.stride_a,
                       g.stride_b,
                       g.stride_c,
                       static_cast<int64_t>(g.beta != 0.0) | (g.alpha != 1.0 ? 2 : 0),
                       g.bias,
                       static_cast<int64_t>(g.act),
                       bf16};
  // beta is baked into the post-op and the key only records zero/non-zero, hence gemm() accepts
  // beta in {0, 1} only.
  return cache.get(key, [&] {
    dnnl::primitive_attr attr;
    if (g.alpha != 1.0) attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
    dnnl::post_ops po;
    if (g.beta != 0.0) po.append_sum(static_cast<float>(g.beta));
    onednn::append_activation(po, g.act);
    attr.set_post_ops(po);
    const dnnl::memory::desc bias =
        g.bias ? dnnl::memory::desc({1, 1, g.N}, dnnl::memory::data_type::f32,
                                    dnnl::memory::format_tag::abc)
               : dnnl::memory::desc();
    const auto in = bf16 ? dnnl::memory::data_type::bf16 : dnnl::memory::data_type::f32;
    return onednn::make_matmul(
        matrix_desc(ba, g.M, g.K, g.stride_a, g.lda, g.trans_a, in),
        matrix_desc(bb, g.K, g.N, g.stride_b, g.ldb, g.trans_b, in), bias,
        matrix_desc(g.batch, g.M, g.N, g.stride_c, g.ldc, false), attr,
        fmt::format("matmul: oneDNN could not create a kernel for batch={} M={} N={} K={}", g.batch,
                    g.M, g.N, g.K));
  });
}

void onednn_gemm(const GemmArgs& g, const void* A, const void* B, float* C, const float* bias,
                 bool bf16 = false) {
  const std::shared_ptr<const onednn::Matmul> m = lookup(g, bf16);
  std::unordered_map<int, dnnl::memory> extra;
  float alpha = static_cast<float>(g.alpha);  // runtime output scale (DNNL_RUNTIME_F32_VAL)
  if (g.alpha != 1.0) {
    const dnnl::memory::desc sd({1}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::x);
    extra.emplace(DNNL_ARG_ATTR_OUTPUT_SCALES, dnnl::memory(sd, onednn::engine(), &alpha));
  }
  onednn::execute(*m, A, B, C, g.bias ? bias : nullptr, std::move(extra));
}

// ---- float64: reference loops (gradient checks) ------------------------------------------------

double apply_act(GemmAct act, double x) {
  switch (act) {
    case GemmAct::none:
      return x;
    case GemmAct::relu:
      return x < 0 ? 0.0 : x;
    case GemmAct::gelu:
      return x * 0.5 * std::erfc(-x * M_SQRT1_2);
    case GemmAct::gelu_tanh: {
      const double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
      return x / (1.0 + std::exp(-2.0 * u));  // 0.5 x (1 + tanh u), as kernels/elementwise
    }
  }
  return x;
}

void gemm_reference(const GemmArgs& g, const double* A, const double* B, double* C,
                    const double* bias) {
  parallel_for(0, g.batch * g.M, 16, [&](int64_t lo, int64_t hi) {
    std::vector<double> row(g.N);
    for (int64_t it = lo; it < hi; ++it) {
      const int64_t b = it / g.M, i = it % g.M;
      const double* a = A + b * g.stride_a;
      const double* bm = B + b * g.stride_b;
      std::fill(row.begin(), row.end(), 0.0);
      for (int64_t k = 0; k < g.K; ++k) {
        const double av = g.trans_a ? a[k * g.lda + i] : a[i * g.lda + k];
        if (g.trans_b) {
          for (int64_t j = 0; j < g.N; ++j) row[j] += av * bm[j * g.ldb + k];
        } else {
          const double* br = bm + k * g.ldb;
          for (int64_t j = 0; j < g.N; ++j) row[j] += av * br[j];
        }
      }
      double* c = C + b * g.stride_c + i * g.ldc;
      for (int64_t j = 0; j < g.N; ++j)
        c[j] = apply_act(g.act, g.alpha * row[j] + (g.beta == 0.0 ? 0.0 : g.beta * c[j]) +
                                    (g.bias ? bias[j] : 0.0));
    }
  });
}

}  // namespace

template <typename T>
void gemm(const GemmArgs& g, const T* A, const T* B, T* C, const T* bias) {
  if (g.batch == 0 || g.M == 0 || g.N == 0) return;
  if (g.K == 0) {  // empty sum: C = act(beta * C + bias)
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t i = 0; i < g.M; ++i) {
        T* c = C + b * g.stride_c + i * g.ldc;
        for (int64_t j = 0; j < g.N; ++j)
          c[j] = static_cast<T>(
              apply_act(g.act, (g.beta == 0.0 ? 0.0 : g.beta * c[j]) + (g.bias ? bias[j] : 0.0)));
      }
    return;
  }
  if constexpr (sizeof(T) == 4) {
    GAZE_CHECK(g.beta == 0.0 || g.beta == 1.0, ValueError, "gemm: beta must be 0 or 1, got {}",
               g.beta);
    onednn_gemm(g, A, B, C, bias);
  } else {
    gemm_reference(g, A, B, C, bias);
  }
}

std::string gemm_implementation(const GemmArgs& g, bool bf16) {
  return lookup(g, bf16)->impl;
}

void gemm_bf16(const GemmArgs& g, const uint16_t* A, const uint16_t* B, float* C,
               const float* bias) {
  if (g.batch == 0 || g.M == 0 || g.N == 0) return;
  GAZE_CHECK(g.K > 0 && (g.beta == 0.0 || g.beta == 1.0), ValueError,
             "gemm_bf16: K must be positive and beta 0 or 1, got K={} beta={}", g.K, g.beta);
  onednn_gemm(g, A, B, C, bias, true);
}

template void gemm<float>(const GemmArgs&, const float*, const float*, float*, const float*);
template void gemm<double>(const GemmArgs&, const double*, const double*, double*, const double*);

}  // namespace gaze::kernels
