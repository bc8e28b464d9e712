#include "gaze/ops/linalg.h"

#include <memory>

#include "gaze/autograd/node.h"
#include "gaze/core/autocast.h"
#include "gaze/core/error.h"
#include "gaze/kernels/elementwise.h"
#include "gaze/kernels/gemm.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/kernels/scratch.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/checks.h"
#include "gaze/ops/lowp.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"

namespace gaze {

using autograd::any_requires_grad;
using autograd::BackwardContext;
using autograd::record;
using autograd::SavedTensor;

namespace {

struct MatDims {
  Shape batch;
  int64_t rows = 0, cols = 0;  // as stored
};

MatDims mat_dims(const Tensor& t) {
  MatDims m;
  for (int i = 0; i < t.dim() - 2; ++i) m.batch.push_back(t.shape()[i]);
  m.rows = t.shape()[t.dim() - 2];
  m.cols = t.shape()[t.dim() - 1];
  return m;
}

// op(a) @ op(b) for operands of >= 2 dims, without autograd.
Tensor mm_forward(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  const MatDims da = mat_dims(a), db = mat_dims(b);
  const int64_t M = ta ? da.cols : da.rows, K = ta ? da.rows : da.cols;
  const int64_t Kb = tb ? db.cols : db.rows, N = tb ? db.rows : db.cols;
  GAZE_CHECK(K == Kb, ValueError,
             "matmul: shapes {}{} and {}{} cannot be multiplied ({}x{} and {}x{}): the inner sizes "
             "must match",
             a.shape_str(), ta ? "^T" : "", b.shape_str(), tb ? "^T" : "", M, K, Kb, N);
  const Shape batch = broadcast_shapes(da.batch, db.batch, "matmul");
  Shape out = batch;
  out.push_back(M);
  out.push_back(N);
  Tensor y = Tensor::empty(out, a.dtype());
  const int64_t nb = batch.numel(), na = da.batch.numel(), nbb = db.batch.numel();
  kernels::GemmArgs g = kernels::GemmArgs::dense(M, N, K, ta, tb);
  Tensor A = a, B = b;
  if (nbb == 1 && !ta) {
    // The right side is one matrix: fold a's batch into its rows, one GEMM.
    g.M = na * M;
    g.batch = 1;
  } else {
    g.batch = nb;
    if (na != nb && na != 1) {  // general broadcast: materialise the expanded batch
      Shape s = batch;
      s.push_back(da.rows);
      s.push_back(da.cols);
      A = expand(a.alias(a.shape()), s);
    }
    if (nbb != nb && nbb != 1) {
      Shape s = batch;
      s.push_back(db.rows);
      s.push_back(db.cols);
      B = expand(b.alias(b.shape()), s);
    }
    g.stride_a = (na == 1 && nb != 1) ? 0 : da.rows * da.cols;
    g.stride_b = (nbb == 1 && nb != 1) ? 0 : db.rows * db.cols;
    g.stride_c = M * N;
  }
  dispatch_floating(a.dtype(), "matmul",
                    [&]<typename T>() { kernels::gemm(g, A.data<T>(), B.data<T>(), y.data<T>()); });
  return y;
}

// op(a) @ op(b) for >= 2-D operands, recorded for autograd.
Tensor mm_nd(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  Tensor y = mm_forward(a, b, ta, tb);
  if (any_requires_grad({&a, &b})) {
    SavedTensor as(b.requires_grad() ? a : Tensor()), bs(a.requires_grad() ? b : Tensor());
    record("matmul", {a, b}, {y},
           [as, bs, ta, tb, sa = a.shape(), sb = b.shape()](BackwardContext& ctx) {
             const Tensor& g = ctx.grad();
             if (ctx.needs(0)) {
               const Tensor& bv = bs.get("matmul");
               Tensor ga = ta ? mm_forward(bv, g, tb, true) : mm_forward(g, bv, false, !tb);
               ctx.set(0, sum_to(ga, sa));
             }
             if (ctx.needs(1)) {
               const Tensor& av = as.get("matmul");
               Tensor gb;
               if (sb.ndim() == 2 && !ta) {
                 // b was one matrix shared by every batch: a single GEMM over the flattened rows.
                 const int64_t k = av.shape()[av.dim() - 1], n = g.shape()[g.dim() - 1];
                 const Tensor af = av.alias(Shape{av.numel() / k, k}),
                              gf = g.alias(Shape{g.numel() / n, n});
                 gb = tb ? mm_forward(gf, af, true, false) : mm_forward(af, gf, true, false);
               } else {
                 gb = tb ? mm_forward(g, av, true, ta) : mm_forward(av, g, !ta, false);
               }
               ctx.set(1, sum_to(gb, sb));
             }
           });
  }
  return y;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  ops_detail::check_floating(a, "matmul", "input");
  ops_detail::check_floating(b, "matmul", "other");
  ops_detail::check_same_dtype(a, b, "matmul");
  GAZE_CHECK(a.dim() >= 1 && b.dim() >= 1, ValueError,
             "matmul: both arguments need at least 1 dimension, got {} and {}", a.shape_str(),
             b.shape_str());
  GAZE_CHECK((!ta || a.dim() >= 2) && (!tb || b.dim() >= 2), ValueError,
             "matmul: transpose flags need operands of at least 2 dims, got {} and {}",
             a.shape_str(), b.shape_str());
  if (a.dim() == 1 && b.dim() == 1) {
    GAZE_CHECK(a.numel() == b.numel(), ValueError,
               "matmul: 1-D tensors of different sizes {} and {} have no dot product", a.numel(),
               b.numel());
    return reshape(mm_nd(unsqueeze(a, 0), unsqueeze(b, 1), false, false), Shape{});
  }
  if (a.dim() == 1) return squeeze(mm_nd(unsqueeze(a, 0), b, false, tb), -2);
  if (b.dim() == 1) return squeeze(mm_nd(a, unsqueeze(b, 1), ta, false), -1);
  return mm_nd(a, b, ta, tb);
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  GAZE_CHECK(
      a.defined() && b.defined() && a.dim() == 3 && b.dim() == 3 && a.shape()[0] == b.shape()[0],
      ValueError, "bmm: expected two 3-D tensors with the same batch size, got {} and {}",
      a.defined() ? a.shape_str() : "undefined", b.defined() ? b.shape_str() : "undefined");
  return matmul(a, b);
}

namespace detail {
LinearDims check_linear(const Tensor& x, const Tensor& w, const Tensor& bias, const char* op) {
  ops_detail::check_floating(x, op, "input");
  ops_detail::check_floating(w, op, "weight");
  ops_detail::check_same_dtype(x, w, op);
  GAZE_CHECK(
      w.dim() == 2 && x.dim() >= 1 && x.shape()[x.dim() - 1] == w.shape()[1], ValueError,
      "{}: input {} and weight {} do not fit: expected weight [out_features, in_features] with "
      "in_features == input.size(-1)",
      op, x.shape_str(), w.shape_str());
  const int64_t out_f = w.shape()[0], in_f = w.shape()[1];
  if (bias.defined()) {
    ops_detail::check_same_dtype(x, bias, op);
    GAZE_CHECK(bias.dim() == 1 && bias.shape()[0] == out_f, ValueError,
               "{}: bias has shape {}, expected [{}] (out_features)", op, bias.shape_str(), out_f);
  }
  return {x.numel() / in_f, in_f, out_f};
}
}  // namespace detail

namespace {

using Bf16Buffer = kernels::Scratch<uint16_t>;

std::shared_ptr<Bf16Buffer> to_bf16(const float* x, int64_t n) {
  auto out = std::make_shared<Bf16Buffer>(static_cast<size_t>(n));
  kernels::float_to_bf16(x, out->data(), n);
  return out;
}

// Whether linear() takes the bf16 path (empty products stay float32).
bool autocast_bf16(const Tensor& x, const detail::LinearDims& d) {
  return detail::autocast_bf16_active() && x.dtype() == DType::f32 && d.rows > 0 &&
         d.in_features > 0 && d.out_features > 0;
}

// y = bf16(x) bf16(w)^T + b in float32; the backward multiplies bf16(dy) by the same bf16 copies
// (torch.autocast saves the casted operands likewise), its gradients float32.
Tensor linear_bf16(const Tensor& x, const Tensor& w, const Tensor& bias,
                   const detail::LinearDims& dims) {
  const int64_t rows = dims.rows, in_f = dims.in_features, out_f = dims.out_features;
  std::shared_ptr<Bf16Buffer> xb = to_bf16(x.data<float>(), rows * in_f),
                              wb = to_bf16(w.data<float>(), out_f * in_f);
  Shape out = x.shape();
  out[out.ndim() - 1] = out_f;
  Tensor y = Tensor::empty(out, DType::f32);
  auto g = kernels::GemmArgs::dense(rows, out_f, in_f, false, true);
  g.bias = bias.defined();
  kernels::gemm_bf16(g, xb->data(), wb->data(), y.data<float>(),
                     bias.defined() ? bias.data<float>() : nullptr);
  if (any_requires_grad({&x, &w, &bias})) {
    std::vector<Tensor> inputs{x, w};
    if (bias.defined()) inputs.push_back(bias);
    if (!w.requires_grad()) xb.reset();  // x's copy serves dW only, w's serves dX only
    if (!x.requires_grad()) wb.reset();
    record("linear", inputs, {y},
           [xb, wb, sx = x.shape(), rows, in_f, out_f,
            has_bias = bias.defined()](BackwardContext& ctx) {
             const Tensor g2 = ctx.grad().alias(Shape{rows, out_f});
             const std::shared_ptr<Bf16Buffer> gb = to_bf16(g2.data<float>(), rows * out_f);
             if (ctx.needs(0)) {
               Tensor dx = Tensor::empty(Shape{rows, in_f}, DType::f32);
               kernels::gemm_bf16(kernels::GemmArgs::dense(rows, in_f, out_f), gb->data(),
                                  wb->data(), dx.data<float>());
               ctx.set(0, reshape(dx, sx));
             }
             if (ctx.needs(1)) {
               Tensor dw = Tensor::empty(Shape{out_f, in_f}, DType::f32);
               kernels::gemm_bf16(kernels::GemmArgs::dense(out_f, in_f, rows, true, false),
                                  gb->data(), xb->data(), dw.data<float>());
               ctx.set(1, dw);
             }
             if (has_bias && ctx.needs(2)) ctx.set(2, sum(g2, {0}));
           });
  }
  return y;
}

}  // namespace

bool detail::autocast_bf16_active() {
  static const bool supported = kernels::precision_supported(Precision::bf16);
  return supported && autocast_precision() == Precision::bf16;
}

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias) {
  // Plain variables, not a structured binding: lambdas below capture them (clang 15 cannot).
  const detail::LinearDims dims = detail::check_linear(x, w, bias, "linear");
  if (auto y = lowp_linear(x, w, bias, kernels::GemmAct::none, dims)) return *y;
  if (autocast_bf16(x, dims)) return linear_bf16(x, w, bias, dims);
  const int64_t rows = dims.rows, in_f = dims.in_features, out_f = dims.out_features;
  Shape out = x.shape();
  out[out.ndim() - 1] = out_f;
  Tensor y = Tensor::empty(out, x.dtype());
  dispatch_floating(x.dtype(), "linear", [&]<typename T>() {
    auto g = kernels::GemmArgs::dense(rows, out_f, in_f, false, true);
    g.bias = bias.defined();  // added in the GEMM's epilogue: no second pass over the output
    kernels::gemm(g, x.data<T>(), w.data<T>(), y.data<T>(),
                  bias.defined() ? bias.data<T>() : nullptr);
  });
  if (any_requires_grad({&x, &w, &bias})) {
    std::vector<Tensor> inputs{x, w};
    if (bias.defined()) inputs.push_back(bias);
    record("linear", inputs, {y},
           [xs = SavedTensor(w.requires_grad() ? x : Tensor()),
            ws = SavedTensor(x.requires_grad() ? w : Tensor()), sx = x.shape(), rows, in_f, out_f,
            has_bias = bias.defined()](BackwardContext& ctx) {
             const Tensor g2 = ctx.grad().alias(Shape{rows, out_f});
             if (ctx.needs(0))
               ctx.set(0, reshape(mm_forward(g2, ws.get("linear"), false, false), sx));
             if (ctx.needs(1))
               ctx.set(1, mm_forward(g2, xs.get("linear").alias(Shape{rows, in_f}), true, false));
             if (has_bias && ctx.needs(2)) ctx.set(2, sum(g2, {0}));
           });
  }
  return y;
}

}  // namespace gaze
