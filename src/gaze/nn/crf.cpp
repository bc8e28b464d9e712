#include "gaze/nn/crf.h"

#include "gaze/core/error.h"
#include "gaze/nn/init.h"
#include "gaze/ops/arith.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

CRF::CRF(int64_t k, bool bf) : Module("CRF"), num_tags(k), batch_first(bf) {
  GAZE_CHECK(k > 0, ValueError, "CRF: invalid number of tags: {}", k);
  start_transitions =
      register_parameter("start_transitions", init::uniform_(Tensor::empty(Shape{k}), -0.1, 0.1));
  end_transitions =
      register_parameter("end_transitions", init::uniform_(Tensor::empty(Shape{k}), -0.1, 0.1));
  transitions =
      register_parameter("transitions", init::uniform_(Tensor::empty(Shape{k, k}), -0.1, 0.1));
}

void CRF::constrain(std::vector<std::vector<bool>> allowed, std::vector<bool> allowed_start,
                    std::vector<bool> allowed_end) {
  const auto K = static_cast<size_t>(num_tags);
  bool ok = allowed.size() == K && allowed_start.size() == K && allowed_end.size() == K;
  for (const auto& row : allowed) ok = ok && row.size() == K;
  GAZE_CHECK(ok, ValueError, "CRF.constrain: expected [{}, {}] transitions and {} start/end flags",
             K, K, K);
  allowed_ = std::move(allowed), allowed_start_ = std::move(allowed_start);
  allowed_end_ = std::move(allowed_end);
}

CrfScores CRF::scores() const {
  if (allowed_.empty()) return {start_transitions, end_transitions, transitions};
  constexpr double kPenalty = -10000.0;
  const DType dt = transitions.dtype();
  Tensor ps = Tensor::zeros(Shape{num_tags}, dt), pe = Tensor::zeros(Shape{num_tags}, dt),
         pt = Tensor::zeros(Shape{num_tags, num_tags}, dt);
  dispatch_floating(dt, "CRF", [&]<typename T>() {
    for (int64_t i = 0; i < num_tags; ++i) {
      const auto u = static_cast<size_t>(i);
      if (!allowed_start_[u]) ps.data<T>()[i] = T(kPenalty);
      if (!allowed_end_[u]) pe.data<T>()[i] = T(kPenalty);
      for (int64_t j = 0; j < num_tags; ++j)
        if (!allowed_[u][static_cast<size_t>(j)]) pt.data<T>()[i * num_tags + j] = T(kPenalty);
    }
  });
  return {add(start_transitions, ps), add(end_transitions, pe), add(transitions, pt)};
}

std::pair<Tensor, Tensor> CRF::batch_first_inputs(const Tensor& emissions,
                                                  const Tensor& mask) const {
  GAZE_CHECK(emissions.defined() && emissions.dim() == 3 && emissions.size(2) == num_tags,
             ValueError, "CRF: emissions must be [{}, K = {}], got {}",
             batch_first ? "B, T" : "T, B", num_tags,
             emissions.defined() ? emissions.shape_str() : "undefined");
  const Tensor e = batch_first ? emissions : transpose(emissions, 0, 1);
  const int64_t B = e.size(0), T = e.size(1);
  if (!mask.defined()) return {e, Tensor()};
  const Tensor m = batch_first ? mask : transpose(mask, 0, 1);
  GAZE_CHECK(m.dtype() == DType::b8 && m.shape() == (Shape{B, T}), ValueError,
             "CRF: mask must be bool {}, got {} {}",
             (batch_first ? Shape{B, T} : Shape{T, B}).str(), dtype_name(m.dtype()),
             mask.shape_str());
  Tensor lengths = Tensor::empty(Shape{B}, DType::i64);
  for (int64_t b = 0; b < B; ++b) {
    const bool* row = m.data<bool>() + b * T;
    int64_t len = 0;
    while (len < T && row[len]) ++len;
    for (int64_t t = len; t < T; ++t)
      GAZE_CHECK(!row[t], ValueError,
                 "CRF: the mask of sequence {} is not a prefix (step {} is on after step {} is "
                 "off)",
                 b, t, len);
    GAZE_CHECK(len >= 1, ValueError, "CRF: the mask of the first timestep must all be on");
    lengths.data<int64_t>()[b] = len;
  }
  return {e, lengths};
}

Tensor CRF::forward(const Tensor& emissions, const Tensor& tags, const Tensor& mask,
                    CrfReduction reduction) const {
  const auto [e, lengths] = batch_first_inputs(emissions, mask);
  const Shape want{emissions.size(0), emissions.size(1)};
  GAZE_CHECK(tags.defined() && tags.shape() == want, ValueError,
             "CRF: tags must have the emissions' first two dims {}, got {}", want.str(),
             tags.defined() ? tags.shape_str() : "undefined");
  const Tensor y = batch_first ? tags : transpose(tags, 0, 1);
  const Tensor llh = neg(crf_nll(e, y, lengths, scores()));
  switch (reduction) {
    case CrfReduction::none:
      return llh;
    case CrfReduction::sum:
      return sum(llh);
    case CrfReduction::mean:
      return mean(llh);
    case CrfReduction::token_mean: {
      double tokens = static_cast<double>(e.size(0) * e.size(1));
      if (lengths.defined()) {
        tokens = 0;
        for (int64_t b = 0; b < lengths.numel(); ++b) tokens += lengths.data<int64_t>()[b];
      }
      return div(sum(llh), tokens);
    }
  }
  throw StateError("CRF: unhandled reduction");
}

std::vector<std::vector<int64_t>> CRF::decode(const Tensor& emissions, const Tensor& mask) const {
  const auto [e, lengths] = batch_first_inputs(emissions, mask);
  return crf_decode(e, lengths, scores());
}

}  // namespace gaze::nn
