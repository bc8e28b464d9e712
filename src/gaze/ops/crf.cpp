#include "gaze/ops/crf.h"

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/kernels/crf.h"
#include "gaze/ops/checks.h"

namespace gaze {
namespace {

// Checks the inputs and returns the lengths as a tensor (all T when undefined).
Tensor checked_lengths(const Tensor& e, const Tensor& lengths, const CrfScores& s, const char* op) {
  ops_detail::check_floating(e, op, "emissions");
  GAZE_CHECK(e.dim() == 3 && e.size(1) >= 1 && e.size(2) >= 1, ValueError,
             "{}: emissions must be [B, T, K] with T, K >= 1, got {}", op, e.shape_str());
  const int64_t B = e.size(0), T = e.size(1), K = e.size(2);
  for (const auto& [t, name, shape] :
       {std::tuple{&s.start, "start", Shape{K}}, std::tuple{&s.end, "end", Shape{K}},
        std::tuple{&s.transitions, "transitions", Shape{K, K}}}) {
    GAZE_CHECK(t->defined() && t->shape() == shape, ValueError, "{}: {} must be {}, got {}", op,
               name, shape.str(), t->defined() ? t->shape_str() : "undefined");
    ops_detail::check_same_dtype(e, *t, op);
  }
  if (!lengths.defined()) return Tensor::full(Shape{B}, static_cast<double>(T), DType::i64);
  ops_detail::check_dtype(lengths, DType::i64, op, "lengths");
  GAZE_CHECK(lengths.shape() == Shape{B}, ValueError, "{}: lengths must be [{}], got {}", op, B,
             lengths.shape_str());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t l = lengths.data<int64_t>()[b];
    GAZE_CHECK(l >= 1 && l <= T, ValueError,
               "{}: lengths[{}] = {} must be in [1, {}] (every sequence needs its first step)", op,
               b, l, T);
  }
  return lengths;
}

}  // namespace

Tensor crf_nll(const Tensor& e, const Tensor& tags, const Tensor& lengths_in, const CrfScores& s) {
  const Tensor lengths = checked_lengths(e, lengths_in, s, "crf_nll");
  const int64_t B = e.size(0), T = e.size(1), K = e.size(2);
  ops_detail::check_dtype(tags, DType::i64, "crf_nll", "tags");
  GAZE_CHECK(tags.shape() == (Shape{B, T}), ValueError, "crf_nll: tags must be [{}, {}], got {}", B,
             T, tags.shape_str());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < lengths.data<int64_t>()[b]; ++t) {
      const int64_t y = tags.data<int64_t>()[b * T + t];
      GAZE_CHECK(y >= 0 && y < K, IndexError, "crf_nll: tags[{}, {}] = {} is not a tag in [0, {})",
                 b, t, y, K);
    }
  const kernels::CrfShape shape{B, T, K};
  Tensor out = Tensor::empty(Shape{B}, e.dtype());
  dispatch_floating(e.dtype(), "crf_nll", [&]<typename F>() {
    kernels::crf_nll(e.data<F>(), tags.data<int64_t>(), lengths.data<int64_t>(), s.start.data<F>(),
                     s.end.data<F>(), s.transitions.data<F>(), shape, out.data<F>());
  });
  if (autograd::any_requires_grad({&e, &s.start, &s.end, &s.transitions})) {
    autograd::record(
        "crf_nll", {e, s.start, s.end, s.transitions}, {out},
        [es = autograd::SavedTensor(e), starts = autograd::SavedTensor(s.start),
         ends = autograd::SavedTensor(s.end), ts = autograd::SavedTensor(s.transitions), tags,
         lengths, shape](autograd::BackwardContext& ctx) {
          const Tensor& ev = es.get("crf_nll");
          Tensor de = Tensor::zeros(ev.shape(), ev.dtype());
          Tensor dstart = Tensor::zeros(Shape{shape.tags}, ev.dtype());
          Tensor dend = Tensor::zeros(Shape{shape.tags}, ev.dtype());
          Tensor dtrans = Tensor::zeros(Shape{shape.tags, shape.tags}, ev.dtype());
          dispatch_floating(ev.dtype(), "crf_nll", [&]<typename F>() {
            kernels::crf_nll_backward(ev.data<F>(), tags.data<int64_t>(), lengths.data<int64_t>(),
                                      starts.get("crf_nll").data<F>(),
                                      ends.get("crf_nll").data<F>(), ts.get("crf_nll").data<F>(),
                                      shape, ctx.grad().data<F>(), de.data<F>(), dstart.data<F>(),
                                      dend.data<F>(), dtrans.data<F>());
          });
          ctx.set(0, de);
          ctx.set(1, dstart);
          ctx.set(2, dend);
          ctx.set(3, dtrans);
        });
  }
  return out;
}

std::vector<std::vector<int64_t>> crf_decode(const Tensor& e, const Tensor& lengths_in,
                                             const CrfScores& s) {
  const Tensor lengths = checked_lengths(e, lengths_in, s, "crf_decode");
  const int64_t B = e.size(0), T = e.size(1);
  std::vector<int64_t> best(static_cast<size_t>(B * T));
  Tensor score = Tensor::empty(Shape{B}, e.dtype());
  dispatch_floating(e.dtype(), "crf_decode", [&]<typename F>() {
    kernels::crf_viterbi(e.data<F>(), lengths.data<int64_t>(), s.start.data<F>(), s.end.data<F>(),
                         s.transitions.data<F>(), {B, T, e.size(2)}, best.data(), score.data<F>());
  });
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const auto first = best.begin() + b * T;
    out[static_cast<size_t>(b)].assign(first, first + lengths.data<int64_t>()[b]);
  }
  return out;
}

}  // namespace gaze
