#include "gaze/ops/rnn.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/rnn.h"
#include "gaze/ops/checks.h"

namespace gaze {
namespace {

void check_cell(const Tensor& xg, const Tensor& hg, const Tensor& h, const Tensor* c,
                const Tensor& valid, int64_t gates, const char* op) {
  for (const Tensor* t : {&xg, &hg, &h}) ops_detail::check_floating(*t, op);
  GAZE_CHECK(h.dim() == 2, ValueError, "{}: state must be [B, H], got {}", op, h.shape_str());
  const int64_t B = h.size(0), H = h.size(1);
  GAZE_CHECK(xg.shape() == (Shape{B, gates * H}) && hg.shape() == (Shape{B, gates * H}), ValueError,
             "{}: gate pre-activations must be [B, {}*H] = [{}, {}], got {} and {}", op, gates, B,
             gates * H, xg.shape_str(), hg.shape_str());
  if (c)
    GAZE_CHECK(c->shape() == h.shape(), ValueError, "{}: cell state {} must match h {}", op,
               c->shape_str(), h.shape_str());
  if (valid.defined())
    GAZE_CHECK(valid.dtype() == DType::b8 && valid.shape() == Shape{B}, ValueError,
               "{}: valid must be bool [{}], got {}", op, B, valid.shape_str());
}

}  // namespace

LstmState lstm_cell(const Tensor& xg, const Tensor& hg, const Tensor& h_prev, const Tensor& c_prev,
                    const Tensor& valid) {
  check_cell(xg, hg, h_prev, &c_prev, valid, 4, "lstm_cell");
  const int64_t B = h_prev.size(0), H = h_prev.size(1);
  LstmState s{Tensor::empty(h_prev.shape(), h_prev.dtype()),
              Tensor::empty(h_prev.shape(), h_prev.dtype())};
  Tensor act = Tensor::empty(xg.shape(), xg.dtype());
  const bool* vp = valid.defined() ? valid.data<bool>() : nullptr;
  dispatch_floating(xg.dtype(), "lstm_cell", [&]<typename T>() {
    kernels::lstm_cell(xg.data<T>(), hg.data<T>(), h_prev.data<T>(), c_prev.data<T>(), vp, B, H,
                       act.data<T>(), s.h.data<T>(), s.c.data<T>());
  });
  if (autograd::any_requires_grad({&xg, &hg, &h_prev, &c_prev})) {
    autograd::record("lstm_cell", {xg, hg, h_prev, c_prev}, {s.h, s.c},
                     [act, cp = autograd::SavedTensor(c_prev), cn = autograd::SavedTensor(s.c),
                      valid, B, H](autograd::BackwardContext& ctx) {
                       const Tensor& c_prev = cp.get("lstm_cell");
                       Tensor dg = Tensor::empty(act.shape(), act.dtype()),
                              dcp = Tensor::empty(c_prev.shape(), act.dtype()),
                              dhp = Tensor::empty(c_prev.shape(), act.dtype());
                       dispatch_floating(act.dtype(), "lstm_cell", [&]<typename T>() {
                         kernels::lstm_cell_backward(
                             act.data<T>(), c_prev.data<T>(), cn.get("lstm_cell").data<T>(),
                             valid.defined() ? valid.data<bool>() : nullptr, ctx.grad(0).data<T>(),
                             ctx.grad(1).data<T>(), B, H, dg.data<T>(), dcp.data<T>(),
                             dhp.data<T>());
                       });
                       ctx.set(0, dg);
                       ctx.set(1, dg);
                       ctx.set(2, dhp);
                       ctx.set(3, dcp);
                     });
  }
  return s;
}

Tensor gru_cell(const Tensor& xg, const Tensor& hg, const Tensor& h_prev, const Tensor& valid) {
  check_cell(xg, hg, h_prev, nullptr, valid, 3, "gru_cell");
  const int64_t B = h_prev.size(0), H = h_prev.size(1);
  Tensor h = Tensor::empty(h_prev.shape(), h_prev.dtype()),
         act = Tensor::empty(xg.shape(), xg.dtype());
  const bool* vp = valid.defined() ? valid.data<bool>() : nullptr;
  dispatch_floating(xg.dtype(), "gru_cell", [&]<typename T>() {
    kernels::gru_cell(xg.data<T>(), hg.data<T>(), h_prev.data<T>(), vp, B, H, act.data<T>(),
                      h.data<T>());
  });
  if (autograd::any_requires_grad({&xg, &hg, &h_prev})) {
    autograd::record("gru_cell", {xg, hg, h_prev}, {h},
                     [act, hgs = autograd::SavedTensor(hg), hps = autograd::SavedTensor(h_prev),
                      valid, B, H](autograd::BackwardContext& ctx) {
                       Tensor dxg = Tensor::empty(act.shape(), act.dtype()),
                              dhg = Tensor::empty(act.shape(), act.dtype()),
                              dhp = Tensor::empty(Shape{B, H}, act.dtype());
                       dispatch_floating(act.dtype(), "gru_cell", [&]<typename T>() {
                         kernels::gru_cell_backward(act.data<T>(), hgs.get("gru_cell").data<T>(),
                                                    hps.get("gru_cell").data<T>(),
                                                    valid.defined() ? valid.data<bool>() : nullptr,
                                                    ctx.grad().data<T>(), B, H, dxg.data<T>(),
                                                    dhg.data<T>(), dhp.data<T>());
                       });
                       ctx.set(0, dxg);
                       ctx.set(1, dhg);
                       ctx.set(2, dhp);
                     });
  }
  return h;
}

}  // namespace gaze
