#include "gaze/ops/lowp.h"

#include <map>
#include <mutex>
#include <utility>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/scratch.h"

namespace gaze {

struct LowpState {
  std::mutex mu;
  std::shared_ptr<const kernels::LowpWeight> weight;
  uint64_t version = 0;  // of the storage when `weight` was made from it
  // Packed row ranges {first row, rows}: the whole matrix, or the parts of a stacked projection
  // (MultiheadAttention's in_proj_weight) that views of it multiply by.
  std::map<std::pair<int64_t, int64_t>, std::shared_ptr<const kernels::PackedWeight>> packs;
};

namespace {

void check_whole(const Tensor& w, const char* op) {
  GAZE_CHECK(is_whole_matrix(w), ValueError,
             "{}: expected a non-empty 2-D float32 weight that is a whole tensor (not a view of a "
             "larger one), got {}",
             op,
             w.defined() ? w.shape_str() + " " + std::string(dtype_name(w.dtype())) : "undefined");
}

void install(const Tensor& w, std::shared_ptr<const kernels::LowpWeight> q) {
  // The float values become exactly the reduced-precision ones, so a model set to a precision in
  // memory and one loaded from a quantized folder compute the same numbers. A quantized folder's
  // float values are deferred (Storage::deferred): they are made from q if anything reads them.
  auto fill = [q](void* dst) { kernels::dequantize_weight(*q, static_cast<float*>(dst)); };
  if (!w.storage()->refill(std::move(fill))) kernels::dequantize_weight(*q, w.data<float>());
  w.storage()->bump_version();
  auto s = std::make_shared<LowpState>();
  s->weight = std::move(q);
  s->version = w.storage()->version();
  w.storage()->set_lowp(std::move(s));
}

}  // namespace

bool is_whole_matrix(const Tensor& w) {
  return w.defined() && w.dim() == 2 && w.dtype() == DType::f32 && w.numel() > 0 &&
         w.is_whole_storage();
}

void set_weight_precision(const Tensor& w, Precision p) {
  check_whole(w, "set_weight_precision");
  if (p == Precision::fp32) {
    w.storage()->set_lowp(nullptr);
    return;
  }
  if (const auto cur = weight_lowp(w); cur && cur->precision == p) return;  // already
  install(w, std::make_shared<const kernels::LowpWeight>(
                 kernels::quantize_weight(w.data<float>(), w.size(0), w.size(1), p)));
}

void set_weight_lowp(const Tensor& w, std::shared_ptr<const kernels::LowpWeight> qp) {
  check_whole(w, "set_weight_lowp");
  GAZE_CHECK(qp, ValueError, "set_weight_lowp: no values");
  const kernels::LowpWeight& q = *qp;
  GAZE_CHECK(q.precision != Precision::fp32 && q.rows == w.size(0) && q.cols == w.size(1),
             ValueError, "set_weight_lowp: {} values [{}, {}] for a weight {}",
             enum_name(q.precision), q.rows, q.cols, w.shape_str());
  const size_t n = static_cast<size_t>(q.rows * q.cols);
  GAZE_CHECK(q.precision == Precision::bf16
                 ? q.bf16.size() == n
                 : q.q.size() == n && q.scale.size() == static_cast<size_t>(q.rows),
             ValueError, "set_weight_lowp: the values do not fill [{}, {}]", q.rows, q.cols);
  install(w, std::move(qp));
}

void set_weight_lowp(const Tensor& w, kernels::LowpWeight q) {
  set_weight_lowp(w, std::make_shared<const kernels::LowpWeight>(std::move(q)));
}

std::shared_ptr<const kernels::LowpWeight> weight_lowp(const Tensor& w) {
  if (!w.defined() || !w.storage()->lowp()) return nullptr;
  LowpState& s = *w.storage()->lowp();
  std::lock_guard lock(s.mu);
  return s.version == w.storage()->version() ? s.weight : nullptr;
}

namespace {

// The packed reduced-precision form of w (a matrix or rows of one) if it has a current one and
// the product can use it (float32 operands, no gradient wanted); null otherwise.
std::shared_ptr<const kernels::PackedWeight> current_pack(const Tensor& x, const Tensor& w,
                                                          const Tensor& b) {
  if (!w.defined() || !w.storage()->lowp() || x.dtype() != DType::f32 || w.dtype() != DType::f32 ||
      w.dim() != 2 || (b.defined() && b.dtype() != DType::f32) ||
      autograd::any_requires_grad({&x, &w, &b}))
    return nullptr;
  const std::shared_ptr<LowpState> state = w.storage()->lowp();
  {
    std::lock_guard lock(state->mu);
    const int64_t cols = w.size(1);
    const size_t elem = w.impl().offset / sizeof(float);
    if (cols != state->weight->cols || elem % static_cast<size_t>(cols) != 0) return nullptr;
    const int64_t row0 = static_cast<int64_t>(elem) / cols, rows = w.size(0);
    if (row0 + rows > state->weight->rows) return nullptr;
    if (state->version != w.storage()->version()) {
      // The float weights were written since (an optimizer step, a load): they are float32
      // weights again, and multiply as such. Nothing stale is ever multiplied by or saved. (The
      // state stays attached, unused: another thread may be reading the storage's pointer.)
      return nullptr;
    }
    auto& slot = state->packs[{row0, rows}];
    if (!slot) slot = std::make_shared<const kernels::PackedWeight>(*state->weight, row0, rows);
    return slot;
  }
}

}  // namespace

std::optional<Tensor> lowp_linear(const Tensor& x, const Tensor& w, const Tensor& b,
                                  kernels::GemmAct act, const detail::LinearDims& dims) {
  const std::shared_ptr<const kernels::PackedWeight> pack = current_pack(x, w, b);
  if (!pack) return std::nullopt;
  Shape out = x.shape();
  out[out.ndim() - 1] = dims.out_features;
  Tensor y = Tensor::empty(out, DType::f32);
  pack->run(x.data<float>(), dims.rows, y.data<float>(), b.defined() ? b.data<float>() : nullptr,
            act);
  return y;
}

std::optional<std::vector<Tensor>> lowp_linear_parts(const Tensor& x, const Tensor& w,
                                                     const Tensor& b, int64_t parts) {
  const std::shared_ptr<const kernels::LowpWeight> lowp = weight_lowp(w);
  // (The parts below are aliases, which carry no requires_grad: the check is on w itself.)
  if (!lowp || autograd::any_requires_grad({&x, &w, &b}) || parts < 1 || w.dim() != 2 ||
      w.size(0) % parts != 0 || x.dim() < 1 || x.size(x.dim() - 1) != w.size(1) ||
      (b.defined() && (b.dim() != 1 || b.numel() != w.size(0))))
    return std::nullopt;
  const int64_t np = w.size(0) / parts, K = w.size(1), M = x.numel() / std::max<int64_t>(K, 1);
  // int8: one product over all the rows of w, dequantized straight into the parts. bf16: the
  // input converted once, then a product per part (one over all rows, copied apart, was slower
  // for many rows than the conversions it saved).
  std::vector<std::shared_ptr<const kernels::PackedWeight>> packs;
  if (lowp->precision == Precision::int8) {
    packs.push_back(current_pack(x, w, b));
  } else {
    for (int64_t p = 0; p < parts; ++p)
      packs.push_back(current_pack(x, w.alias(Shape{np, K}, p * np * K),
                                   b.defined() ? b.alias(Shape{np}, p * np) : Tensor()));
  }
  for (const auto& pack : packs)
    if (!pack) return std::nullopt;
  Shape out = x.shape();
  out[out.ndim() - 1] = np;
  std::vector<Tensor> ys;
  std::vector<float*> ptrs;
  for (int64_t p = 0; p < parts; ++p) {
    ys.push_back(Tensor::empty(out, DType::f32));
    ptrs.push_back(ys.back().data<float>());
  }
  const float* bias = b.defined() ? b.data<float>() : nullptr;
  if (lowp->precision == Precision::int8) {
    packs[0]->run_parts(x.data<float>(), M, ptrs, bias, kernels::GemmAct::none);
    return ys;
  }
  kernels::Scratch<uint16_t> a(static_cast<size_t>(x.numel()));
  kernels::float_to_bf16(x.data<float>(), a.data(), x.numel());
  for (int64_t p = 0; p < parts; ++p)
    packs[static_cast<size_t>(p)]->run_bf16(a.data(), M, ptrs[static_cast<size_t>(p)],
                                            bias ? bias + p * np : nullptr, kernels::GemmAct::none);
  return ys;
}

std::optional<Tensor> lowp_feed_forward(const Tensor& x, const Tensor& w1, const Tensor& b1,
                                        Activation act, const Tensor& w2, const Tensor& b2,
                                        const Tensor& residual) {
  const std::shared_ptr<const kernels::PackedWeight> p1 = current_pack(x, w1, b1),
                                                     p2 = current_pack(x, w2, b2);
  if (!p1 || !p2 || p1->precision() != p2->precision() || x.dim() < 1 ||
      x.size(x.dim() - 1) != p1->in_features() || p1->out_features() != p2->in_features() ||
      (b1.defined() && b1.numel() != p1->out_features()) ||
      (b2.defined() && b2.numel() != p2->out_features()))
    return std::nullopt;
  const kernels::GemmAct gact = gemm_act(act);
  Shape out = x.shape();
  out[out.ndim() - 1] = p2->out_features();
  if (residual.defined() && (residual.dtype() != DType::f32 || residual.shape() != out ||
                             autograd::any_requires_grad({&residual})))
    return std::nullopt;
  Tensor y = Tensor::empty(out, DType::f32);
  p1->run_feed_forward(x.data<float>(), x.numel() / p1->in_features(),
                       b1.defined() ? b1.data<float>() : nullptr, gact, *p2,
                       b2.defined() ? b2.data<float>() : nullptr, y.data<float>(),
                       residual.defined() ? residual.data<float>() : nullptr);
  return y;
}

}  // namespace gaze
