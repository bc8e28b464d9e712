#include "gaze/explain/attribution.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/ops/reduce.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::explain {
namespace {

// Attribution needs gradients even when the caller turned them off (explain runs under
// NoGradGuard elsewhere).
class GradOn {
 public:
  GradOn() : prev_(autograd::grad_mode_enabled()) { autograd::set_grad_mode(true); }
  ~GradOn() { autograd::set_grad_mode(prev_); }
  GradOn(const GradOn&) = delete;
  GradOn& operator=(const GradOn&) = delete;

 private:
  bool prev_;
};

void check_objective(const Objective& f) {
  GAZE_CHECK(f.embeddings.defined() && f.embeddings.dim() == 3 && f.embeddings.size(0) == 1 &&
                 f.embeddings.dtype() == DType::f32 && f.output,
             ValueError, "attribution: expected one input's f32 embeddings [1, T, E], got {}",
             f.embeddings.defined() ? f.embeddings.shape_str() : "undefined");
}

// A leaf copy of x that records gradients.
Tensor leaf(const Tensor& x) {
  Tensor t = x.clone_data();
  t.set_requires_grad();
  return t;
}

// f's outputs for a batch, checked to be one per variant.
Tensor outputs(const Objective& f, const Tensor& x, nn::AttentionCapture* capture) {
  Tensor y = f.output(x, capture);
  GAZE_CHECK(y.defined() && y.numel() == x.size(0), ValueError,
             "attribution: the objective must give one value per input variant ({}), got {}",
             x.size(0), y.defined() ? y.shape_str() : "undefined");
  return y;
}

}  // namespace

TokenAttribution gradient_x_input(const Objective& f) {
  check_objective(f);
  GradOn on;
  const Tensor x = leaf(f.embeddings);
  sum(outputs(f, x, nullptr)).backward();
  const int64_t T = x.size(1), E = x.size(2);
  const float *g = x.grad().data<float>(), *v = x.data<float>();
  TokenAttribution a;
  a.method = "gradient_x_input";
  for (int64_t t = 0; t < T; ++t) {
    double s = 0;
    for (int64_t e = 0; e < E; ++e) s += double(g[t * E + e]) * v[t * E + e];
    a.scores.push_back(static_cast<float>(s));
  }
  return a;
}

TokenAttribution integrated_gradients(const Objective& f, const Tensor& baseline, int64_t steps,
                                      int64_t chunk) {
  check_objective(f);
  GAZE_CHECK(baseline.defined() && baseline.shape() == f.embeddings.shape() &&
                 baseline.dtype() == DType::f32,
             ValueError, "integrated_gradients: the baseline must be f32 {}, got {}",
             f.embeddings.shape_str(), baseline.defined() ? baseline.shape_str() : "undefined");
  GAZE_CHECK(steps >= 1 && steps <= 4096, ValueError,
             "integrated_gradients: steps must be in [1, 4096], got {}", steps);
  GAZE_CHECK(chunk >= 1, ValueError, "integrated_gradients: chunk must be >= 1, got {}", chunk);
  GradOn on;
  const int64_t T = f.embeddings.size(1), E = f.embeddings.size(2), n = T * E;
  const float *x = f.embeddings.data<float>(), *b = baseline.data<float>();
  std::vector<double> avg(static_cast<size_t>(n), 0.0);  // the mean gradient along the path
  TokenAttribution a;
  a.method = "integrated_gradients";
  for (int64_t k0 = 0; k0 < steps; k0 += chunk) {
    const int64_t m = std::min(chunk, steps - k0);
    Tensor points = Tensor::empty(Shape{m, T, E});
    float* p = points.data<float>();
    for (int64_t i = 0; i < m; ++i) {
      const double alpha = (double(k0 + i) + 0.5) / double(steps);
      for (int64_t j = 0; j < n; ++j) p[i * n + j] = float(b[j] + alpha * (double(x[j]) - b[j]));
    }
    points.set_requires_grad();
    sum(outputs(f, points, nullptr)).backward();
    const float* g = points.grad().data<float>();
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) avg[size_t(j)] += g[i * n + j] / double(steps);
  }
  {  // the two ends, for the completeness gap
    NoGradGuard no_grad;
    const std::vector<float> ends =
        outputs(f, cat({baseline, f.embeddings}, 0), nullptr).to_vector<float>();
    a.baseline_output = ends[0], a.output = ends[1];
  }
  double total = 0;
  for (int64_t t = 0; t < T; ++t) {
    double s = 0;
    for (int64_t e = 0; e < E; ++e) {
      const int64_t j = t * E + e;
      s += (double(x[j]) - b[j]) * avg[size_t(j)];
    }
    a.scores.push_back(static_cast<float>(s));
    total += s;
  }
  a.completeness_gap = total - (a.output - a.baseline_output);
  return a;
}

TokenAttribution attention_x_gradient(const Objective& f, const CaptureOptions& o) {
  check_objective(f);
  GradOn on;
  nn::AttentionCapture cap;
  cap.layers = o.layers, cap.heads = o.heads, cap.gradients = true;
  sum(outputs(f, f.embeddings.detach(), &cap)).backward();
  const int64_t T = f.embeddings.size(1);
  std::vector<double> acc(static_cast<size_t>(T), 0.0);
  TokenAttribution a;
  a.method = "attention_x_gradient";
  for (size_t l = 0; l < cap.self_attention.size(); ++l) {
    const Tensor& w = cap.self_attention[l];
    if (!w.defined()) continue;
    GAZE_CHECK(l < cap.self_probes.size() && cap.self_probes[l].probe.grad().defined(), ValueError,
               "attention_x_gradient: layer {} left no gradient", l);
    const Tensor grad = nn::attention_weight_gradient(cap.self_probes[l]);  // [1, H, T, T]
    const int64_t H = grad.size(1), Hc = w.size(1);
    Tensor prod = Tensor::empty(Shape{Hc, T, T});
    for (int64_t i = 0; i < Hc; ++i) {
      const int64_t h = o.heads.empty() ? i : o.heads[size_t(i)];
      GAZE_CHECK(h >= 0 && h < H, IndexError, "attention_x_gradient: head {} of {}", h, H);
      const float* gw = grad.data<float>() + h * T * T;
      const float* aw = w.data<float>() + i * T * T;
      float* out = prod.data<float>() + i * T * T;
      for (int64_t q = 0; q < T; ++q)
        for (int64_t k = 0; k < T; ++k) {
          out[q * T + k] = aw[q * T + k] * gw[q * T + k];
          acc[size_t(k)] += out[q * T + k];
        }
    }
    a.layers.push_back(static_cast<int64_t>(l));
    a.per_head.push_back(prod);
  }
  for (double v : acc) a.scores.push_back(static_cast<float>(v));
  return a;
}

namespace {

double area(const std::vector<double>& x, const std::vector<double>& y) {
  if (y.size() == 1) return y[0];
  double s = 0;
  for (size_t i = 1; i < y.size(); ++i) s += 0.5 * (y[i] + y[i - 1]) * (x[i] - x[i - 1]);
  return s;
}

}  // namespace

FaithfulnessCurve faithfulness(const std::string& method, const std::vector<float>& scores,
                               const std::vector<bool>& fixed, const KeepEvaluator& evaluate) {
  GAZE_CHECK(scores.size() == fixed.size() && !scores.empty(), ValueError,
             "faithfulness: {} scores for {} tokens", scores.size(), fixed.size());
  std::vector<size_t> order;
  for (size_t t = 0; t < scores.size(); ++t)
    if (!fixed[t]) order.push_back(t);
  // Highest first; ties (and NaN-free equal scores) by position, so runs repeat exactly.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  const auto n = static_cast<int64_t>(order.size());
  const int64_t points = std::min<int64_t>(n, 64);
  std::vector<int64_t> ks;
  for (int64_t i = 0; i <= points; ++i) {
    const int64_t k = points == 0 ? 0 : (i * n + points / 2) / points;
    if (ks.empty() || ks.back() != k) ks.push_back(k);
  }
  std::vector<std::vector<bool>> masks;
  for (int64_t k : ks) {  // deletion
    std::vector<bool> keep(scores.size(), true);
    for (int64_t j = 0; j < k; ++j) keep[order[size_t(j)]] = false;
    masks.push_back(std::move(keep));
  }
  for (int64_t k : ks) {  // insertion
    std::vector<bool> keep = fixed;
    for (int64_t j = 0; j < k; ++j) keep[order[size_t(j)]] = true;
    masks.push_back(std::move(keep));
  }
  const std::vector<double> y = evaluate(masks);
  GAZE_CHECK(y.size() == masks.size(), ValueError, "faithfulness: {} values for {} variants",
             y.size(), masks.size());
  FaithfulnessCurve c;
  c.method = method;
  for (int64_t k : ks) c.fraction.push_back(n == 0 ? 0.0 : double(k) / double(n));
  c.deletion.assign(y.begin(), y.begin() + static_cast<std::ptrdiff_t>(ks.size()));
  c.insertion.assign(y.begin() + static_cast<std::ptrdiff_t>(ks.size()), y.end());
  c.deletion_area = area(c.fraction, c.deletion);
  c.insertion_area = area(c.fraction, c.insertion);
  return c;
}

FaithfulnessCurve random_faithfulness(const std::vector<bool>& fixed, const KeepEvaluator& evaluate,
                                      int64_t orders, uint64_t seed) {
  GAZE_CHECK(orders >= 1, ValueError, "faithfulness: orders must be >= 1, got {}", orders);
  std::mt19937_64 rng(seed);
  FaithfulnessCurve mean;
  for (int64_t r = 0; r < orders; ++r) {
    std::vector<float> scores(fixed.size());
    std::iota(scores.begin(), scores.end(), 0.0f);
    std::shuffle(scores.begin(), scores.end(), rng);
    const FaithfulnessCurve c = faithfulness("random", scores, fixed, evaluate);
    if (r == 0) {
      mean = c;
      continue;
    }
    for (size_t i = 0; i < c.deletion.size(); ++i) {
      mean.deletion[i] += c.deletion[i];
      mean.insertion[i] += c.insertion[i];
    }
  }
  for (size_t i = 0; i < mean.deletion.size(); ++i) {
    mean.deletion[i] /= double(orders);
    mean.insertion[i] /= double(orders);
  }
  mean.deletion_area = area(mean.fraction, mean.deletion);
  mean.insertion_area = area(mean.fraction, mean.insertion);
  return mean;
}

nlohmann::json attribution_json(const Explanation& e, bool per_head) {
  if (e.attributions.empty()) return nullptr;
  nlohmann::json methods = nlohmann::json::object();
  for (const auto& a : e.attributions) {
    nlohmann::json m = {{"scores", a.scores}};
    if (!std::isnan(a.completeness_gap))
      m.update({{"output", a.output},
                {"baseline_output", a.baseline_output},
                {"completeness_gap", a.completeness_gap}});
    if (per_head && !a.per_head.empty()) {
      nlohmann::json layers = nlohmann::json::array();
      for (const Tensor& w : a.per_head) {
        const int64_t H = w.size(0), T = w.size(1);
        nlohmann::json heads = nlohmann::json::array();
        for (int64_t h = 0; h < H; ++h) {
          nlohmann::json rows = nlohmann::json::array();
          for (int64_t q = 0; q < T; ++q) {
            const float* r = w.data<float>() + (h * T + q) * T;
            rows.push_back(std::vector<float>(r, r + T));
          }
          heads.push_back(std::move(rows));
        }
        layers.push_back(std::move(heads));
      }
      m["layers"] = a.layers;
      m["per_head"] = std::move(layers);
    }
    methods[a.method] = std::move(m);
  }
  nlohmann::json curves = nlohmann::json::object();
  for (const auto& c : e.faithfulness)
    curves[c.method] = {{"fraction", c.fraction},
                        {"deletion", c.deletion},
                        {"insertion", c.insertion},
                        {"deletion_area", c.deletion_area},
                        {"insertion_area", c.insertion_area}};
  return {{"explained_output", e.explained_output},
          {"tokens", e.tokens},
          {"methods", std::move(methods)},
          {"faithfulness", std::move(curves)}};
}

}  // namespace gaze::explain
