// Inference matrix products in reduced precision: y = act(x W^T + b) with W pre-packed once in
// bfloat16 (fp32 accumulation) or int8 (per output channel, symmetric; s32 accumulation).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gaze/core/precision.h"
#include "gaze/kernels/gemm.h"

namespace gaze::kernels {

// Whether this CPU multiplies in `p` in hardware (bf16: AVX512-BF16 or AMX; int8: VNNI), as oneDNN
// sees it (ONEDNN_MAX_CPU_ISA included). When not, `why` (if given) names what is missing.
bool precision_supported(Precision p, std::string* why = nullptr);
// Whether int8 products have VNNI only in its AVX2 form (AVX-VNNI without AVX-512, as on Alder
// Lake), as oneDNN sees it. oneDNN 2.6's matmul then runs them through its jit GEMM ("gemm:jit"),
// which uses vpdpbusd there.
bool int8_on_avx2_vnni();

// A weight matrix [rows, cols] (rows = output channels) in reduced precision, as a quantized model
// folder stores it.
struct LowpWeight {
  Precision precision = Precision::bf16;
  int64_t rows = 0, cols = 0;
  std::vector<uint16_t> bf16;  // bf16: rows * cols bit patterns, row-major
  std::vector<int8_t> q;       // int8: rows * cols values in [-127, 127], row-major
  std::vector<float> scale;    // int8: one per row, W[r][c] ~ q[r][c] * scale[r]
};

// bf16: each value rounded to the nearest bfloat16 (ties to even). int8: per row, scale = max |w| /
// 127 (1 for an all-zero row) and q = round(w / scale).
LowpWeight quantize_weight(const float* w, int64_t rows, int64_t cols, Precision p);
// The float values the packed products multiply by (rows * cols floats).
void dequantize_weight(const LowpWeight& w, float* out);

// x [M, K] -> bfloat16 bit patterns, rounded to nearest even (NaN stays NaN).
void float_to_bf16(const float* x, uint16_t* out, int64_t n);
// n bfloat16 bit patterns at `bits` (any alignment: file buffers) -> their float values, exactly.
void bf16_to_float(const void* bits, float* out, int64_t n);
// Each row of x [M, K] to int8: scale[m] = max |x[m]| / 127 (1 for a zero row), q = round(x /
// scale); the dynamic activation quantization of the int8 products.
// offset: store q + 128 as uint8 bytes instead (activations for oneDNN's u8 x s8 kernels).
void quantize_rows(const float* x, int64_t M, int64_t K, int8_t* q, float* scale,
                   bool offset = false);

// Rows [row0, row0 + rows) of a LowpWeight laid out once in the layout oneDNN's kernels read.
class PackedWeight {
 public:
  PackedWeight(const LowpWeight& w, int64_t row0, int64_t rows);
  ~PackedWeight();
  PackedWeight(const PackedWeight&) = delete;
  PackedWeight& operator=(const PackedWeight&) = delete;

  Precision precision() const { return precision_; }
  int64_t out_features() const { return n_; }
  int64_t in_features() const { return k_; }
  // y [M, out] = act(x [M, in] W^T + bias) (bias: out floats or null). Rows are dense.
  void run(const float* x, int64_t M, float* y, const float* bias, GemmAct act) const;
  // bf16: run() of inputs already rounded to bfloat16 (float_to_bf16), so that products of one
  // input (a self-attention's query, key and value) convert it once.
  void run_bf16(const uint16_t* a, int64_t M, float* y, const float* bias, GemmAct act) const;
  // int8: run() with the outputs split into ys.size() equal groups of columns, group p written to
  // ys[p] ([M, out / ys.size()], dense): a self-attention's query, key and value from one packed
  // in-projection, with one quantization of x and one product in place of three.
  void run_parts(const float* x, int64_t M, std::span<float* const> ys, const float* bias,
                 GemmAct act) const;
  // A Transformer's feed-forward, y [M, second.out] = act(x W^T + bias) W2^T + bias2. In bf16 the
  // first product's epilogue writes the hidden layer as bf16 for the second to read: no float
  // hidden layer and no conversion pass, and equal bit for bit to run() then second.run() on finite
  // inputs (tested). int8 runs the two products as run() does.
  // residual (if not null, [M, second.out] like y) is added to y in the second product's epilogue:
  // a pre-norm Transformer layer's x + feed_forward(x) without a pass of its own, and equal bit for
  // bit to adding it after (tested).
  void run_feed_forward(const float* x, int64_t M, const float* bias, GemmAct act,
                        const PackedWeight& second, const float* bias2, float* y,
                        const float* residual = nullptr) const;
  // oneDNN's kernel for M rows (e.g. "brg:avx512_core_bf16"), to check what runs.
  std::string implementation(int64_t M) const;

 private:
  // run_parts() of int8 for rows [row0, row0 + M) of the outputs (x: those rows' inputs), on this
  // thread when called in a parallel region.
  // residual: rows like ys[0]'s (one output only), added in the epilogue.
  void run_int8_rows(const float* x, int64_t row0, int64_t M, std::span<float* const> ys,
                     const float* bias, GemmAct act, const float* residual) const;

  Precision precision_;
  int64_t n_, k_;
  std::vector<float> scale_;   // int8: per output channel
  std::vector<int32_t> comp_;  // int8: 128 * the row sums of the weights (see run)
  void* data_ = nullptr;       // the packed weights (from gaze's allocator)
  // Their layout: a dnnl::memory::desc kept for the process (lowp_gemm.cpp's weights_desc).
  const void* layout_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace gaze::kernels
