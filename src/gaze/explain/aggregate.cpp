#include "gaze/explain/aggregate.h"

#include "gaze/core/error.h"

namespace gaze::explain {

Tensor mean_heads(const Tensor& w) {
  GAZE_CHECK(w.defined() && w.dim() == 3 && w.size(0) > 0, ValueError,
             "mean_heads: expected weights [heads, Tq, Tk], got {}",
             w.defined() ? w.shape_str() : "undefined");
  const int64_t H = w.size(0), n = w.size(1) * w.size(2);
  Tensor out = Tensor::zeros(Shape{w.size(1), w.size(2)});
  const float* src = w.data<float>();
  float* dst = out.data<float>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < n; ++i) dst[i] += src[h * n + i];
  for (int64_t i = 0; i < n; ++i) dst[i] /= static_cast<float>(H);
  return out;
}

Tensor rollout(const std::vector<Tensor>& layers) {
  GAZE_CHECK(!layers.empty(), ValueError, "rollout: no layers");
  const int64_t T = layers[0].size(0);
  // Accumulate in double: dozens of layers of products of small numbers.
  std::vector<double> joint, adjusted(static_cast<size_t>(T * T));
  for (const Tensor& a : layers) {
    GAZE_CHECK(a.dim() == 2 && a.size(0) == T && a.size(1) == T, ValueError,
               "rollout: every layer must be [{}, {}], got {}", T, T, a.shape_str());
    const float* p = a.data<float>();
    for (int64_t i = 0; i < T; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) {
        const double v = 0.5 * p[i * T + j] + (i == j ? 0.5 : 0.0);
        adjusted[static_cast<size_t>(i * T + j)] = v;
        sum += v;
      }
      for (int64_t j = 0; j < T; ++j) adjusted[static_cast<size_t>(i * T + j)] /= sum;
    }
    if (joint.empty()) {
      joint = adjusted;
      continue;
    }
    std::vector<double> next(static_cast<size_t>(T * T), 0.0);  // adjusted x joint
    for (int64_t i = 0; i < T; ++i)
      for (int64_t k = 0; k < T; ++k) {
        const double a_ik = adjusted[static_cast<size_t>(i * T + k)];
        if (a_ik == 0) continue;
        const double* row = &joint[static_cast<size_t>(k * T)];
        double* out = &next[static_cast<size_t>(i * T)];
        for (int64_t j = 0; j < T; ++j) out[j] += a_ik * row[j];
      }
    joint = std::move(next);
  }
  Tensor out = Tensor::empty(Shape{T, T});
  for (int64_t i = 0; i < T * T; ++i) out.data<float>()[i] = static_cast<float>(joint[size_t(i)]);
  return out;
}

std::vector<int64_t> argmax_rows(const Tensor& m) {
  GAZE_CHECK(m.dim() == 2, ValueError, "argmax_rows: expected a matrix, got {}", m.shape_str());
  const int64_t R = m.size(0), C = m.size(1);
  std::vector<int64_t> best(static_cast<size_t>(R), 0);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 1; j < C; ++j)
      if (m.data<float>()[i * C + j] > m.data<float>()[i * C + best[size_t(i)]])
        best[size_t(i)] = j;
  return best;
}

std::vector<float> token_importance(const Tensor& r, models::Pooling pooling,
                                    const std::vector<float>& query_weights) {
  const int64_t T = r.size(0);
  const bool weighted = pooling == models::Pooling::attention;
  GAZE_CHECK(!weighted || static_cast<int64_t>(query_weights.size()) == T, ValueError,
             "token_importance: attention pooling needs {} weights, got {}", T,
             query_weights.size());
  std::vector<double> acc(static_cast<size_t>(T), 0.0);
  const int64_t rows = pooling == models::Pooling::cls ? 1 : T;
  for (int64_t i = 0; i < rows; ++i) {
    const double w = weighted ? query_weights[size_t(i)] : 1.0;
    for (int64_t j = 0; j < T; ++j) acc[size_t(j)] += w * r.data<float>()[i * T + j];
  }
  double total = 0;
  for (double v : acc) total += v;
  std::vector<float> out;
  for (double v : acc) out.push_back(static_cast<float>(total > 0 ? v / total : 0.0));
  return out;
}

}  // namespace gaze::explain
