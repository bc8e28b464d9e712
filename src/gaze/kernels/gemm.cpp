#include "gaze/kernels/gemm.h"

#include <array>
#include <cmath>
#include <cstring>
#include <dnnl.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "gaze/core/allocator.h"
#include "gaze/core/error.h"
#include "gaze/core/threads.h"

namespace gaze::kernels {
namespace {

// ---- float32: oneDNN matmul ---------------------------------------------------------------------

using Key = std::array<int64_t, 17>;
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = 0xcbf29ce484222325ull;
    for (int64_t v : k) h = (h ^ static_cast<size_t>(v)) * 0x100000001b3ull;
    return h;
  }
};

struct Primitive {
  dnnl::matmul prim;
  std::string impl;
  dnnl::memory::desc a, b, c, bias, scratch;
  size_t scratch_bytes = 0;
};

dnnl::memory::desc matrix_desc(int64_t batch, int64_t rows, int64_t cols, int64_t stride,
                               int64_t ld, bool trans) {
  // Logical dims [batch, rows, cols]; stored transposed means element (r, c) lives at c * ld + r.
  // A batch of one gets the dense stride: oneDNN reads stride 0 as an exotic layout and falls back
  // to its slow reference kernel.
  if (batch == 1) stride = trans ? cols * ld : rows * ld;
  const dnnl::memory::dims dims{batch, rows, cols};
  const dnnl::memory::dims strides =
      trans ? dnnl::memory::dims{stride, 1, ld} : dnnl::memory::dims{stride, ld, 1};
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

class OneDnnGemm {
 public:
  static OneDnnGemm& instance() {
    static OneDnnGemm g;
    return g;
  }

  void run(const GemmArgs& g, const float* A, const float* B, float* C, const float* bias) {
    const std::shared_ptr<const Primitive> held = lookup(g);
    const Primitive& p = *held;
    thread_local dnnl::stream stream(engine_);
    dnnl::memory ma(p.a, engine_, const_cast<float*>(A)), mb(p.b, engine_, const_cast<float*>(B)),
        mc(p.c, engine_, C);
    std::unordered_map<int, dnnl::memory> args{
        {DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}};
    if (g.bias)
      args.emplace(DNNL_ARG_BIAS, dnnl::memory(p.bias, engine_, const_cast<float*>(bias)));
    // Scratch space comes from gaze's caching allocator, so repeated GEMMs do not call malloc.
    void* scratch = nullptr;
    if (p.scratch_bytes) {
      scratch = allocator::allocate(p.scratch_bytes);
      args.emplace(DNNL_ARG_SCRATCHPAD, dnnl::memory(p.scratch, engine_, scratch));
    }
    float alpha = static_cast<float>(g.alpha);  // runtime output scale (DNNL_RUNTIME_F32_VAL)
    if (g.alpha != 1.0) {
      const dnnl::memory::desc sd({1}, dnnl::memory::data_type::f32, dnnl::memory::format_tag::x);
      args.emplace(DNNL_ARG_ATTR_OUTPUT_SCALES, dnnl::memory(sd, engine_, &alpha));
    }
    p.prim.execute(stream, args);
    stream.wait();
    if (scratch) allocator::deallocate(scratch, p.scratch_bytes);
  }

  // Shared ownership: another thread may clear the cache while this primitive still runs.
  std::shared_ptr<const Primitive> lookup(const GemmArgs& g) {
    // oneDNN wants broadcast batch dims as size 1, not stride 0.
    const int64_t ba = g.stride_a == 0 ? 1 : g.batch, bb = g.stride_b == 0 ? 1 : g.batch;
    const Key key{ba,
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
                  static_cast<int64_t>(g.act)};
    return get(key, g, ba, bb);
  }

 private:
  OneDnnGemm() : engine_(dnnl::engine::kind::cpu, 0) {}

  std::shared_ptr<const Primitive> get(const Key& key, const GemmArgs& g, int64_t ba, int64_t bb) {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) return it->second;
    if (cache_.size() >= 4096) cache_.clear();  // shapes churn (e.g. varying lengths): start over
    Primitive p;
    const int64_t a_rows = g.M, a_cols = g.K, b_rows = g.K, b_cols = g.N;
    p.a = matrix_desc(ba, a_rows, a_cols, g.stride_a, g.lda, g.trans_a);
    p.b = matrix_desc(bb, b_rows, b_cols, g.stride_b, g.ldb, g.trans_b);
    p.c = matrix_desc(g.batch, g.M, g.N, g.stride_c, g.ldc, false);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    if (g.alpha != 1.0) attr.set_output_scales(0, {DNNL_RUNTIME_F32_VAL});
    dnnl::post_ops po;
    if (g.beta != 0.0) po.append_sum(static_cast<float>(g.beta));
    if (g.act != GemmAct::none) {
      const auto alg = g.act == GemmAct::relu   ? dnnl::algorithm::eltwise_relu
                       : g.act == GemmAct::gelu ? dnnl::algorithm::eltwise_gelu_erf
                                                : dnnl::algorithm::eltwise_gelu_tanh;
      po.append_eltwise(1.0f, alg, 0.0f, 0.0f);
    }
    attr.set_post_ops(po);
    if (g.bias)
      p.bias = dnnl::memory::desc({1, 1, g.N}, dnnl::memory::data_type::f32,
                                  dnnl::memory::format_tag::abc);
    try {
      dnnl::matmul::primitive_desc pd(
          g.bias ? dnnl::matmul::desc(p.a, p.b, p.bias, p.c) : dnnl::matmul::desc(p.a, p.b, p.c),
          attr, engine_);
      p.scratch = pd.scratchpad_desc();
      p.impl = pd.impl_info_str();
      p.scratch_bytes = p.scratch.get_size();
      p.prim = dnnl::matmul(pd);
    } catch (const dnnl::error& e) {
      throw Error(
          fmt::format("matmul: oneDNN could not create a kernel for batch={} M={} N={} K={}: {}",
                      g.batch, g.M, g.N, g.K, e.what()));
    }
    // beta is baked into the post-op and the key only records zero/non-zero, hence gemm() accepts
    // beta in {0, 1} only.
    return cache_.emplace(key, std::make_shared<const Primitive>(std::move(p))).first->second;
  }

  dnnl::engine engine_;
  std::mutex mu_;
  std::unordered_map<Key, std::shared_ptr<const Primitive>, KeyHash> cache_;
};

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
    OneDnnGemm::instance().run(g, A, B, C, bias);
  } else {
    gemm_reference(g, A, B, C, bias);
  }
}

std::string gemm_implementation(const GemmArgs& g) {
  return OneDnnGemm::instance().lookup(g)->impl;
}

template void gemm<float>(const GemmArgs&, const float*, const float*, float*, const float*);
template void gemm<double>(const GemmArgs&, const double*, const double*, double*, const double*);

}  // namespace gaze::kernels
