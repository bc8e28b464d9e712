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

// f's outputs for a batch, [n, K]: K per variant.
Tensor outputs(const Objective& f, const Tensor& x, nn::AttentionCapture* capture) {
  Tensor y = f.output(x, capture);
  GAZE_CHECK(y.defined() && y.numel() > 0 && y.numel() % x.size(0) == 0, ValueError,
             "attribution: the objective must give values for each of the {} input variants, "
             "got {}",
             x.size(0), y.defined() ? y.shape_str() : "undefined");
  return reshape(y, Shape{x.size(0), y.numel() / x.size(0)});
}

// d(Σ_rows y[:, k])/dx for each k: one backward per output (the graph kept for the next one).
// Calls `take(k, gradient)` with x's gradient [n, T, E].
void per_output_gradients(const Tensor& x, const Tensor& y,
                          const std::function<void(int64_t, const float*)>& take) {
  const int64_t n = y.size(0), K = y.size(1);
  for (int64_t k = 0; k < K; ++k) {
    Tensor pick = Tensor::zeros(y.shape());
    for (int64_t i = 0; i < n; ++i) pick.data<float>()[i * K + k] = 1.0f;
    x.zero_grad();
    y.backward(pick, k + 1 < K);
    take(k, x.grad().data<float>());
  }
}

// Σ_e a[t, e] * b[t, e] for each t of [T, E] rows.
void row_dots(const float* a, const std::vector<double>& b, int64_t T, int64_t E,
              std::vector<float>& out) {
  for (int64_t t = 0; t < T; ++t) {
    double s = 0;
    for (int64_t e = 0; e < E; ++e) s += double(a[t * E + e]) * b[size_t(t * E + e)];
    out.push_back(static_cast<float>(s));
  }
}

}  // namespace

TokenAttribution gradient_x_input(const Objective& f) {
  check_objective(f);
  GradOn on;
  const Tensor x = leaf(f.embeddings);
  const Tensor y = outputs(f, x, nullptr);
  const int64_t T = x.size(1), E = x.size(2);
  const std::vector<double> v(x.data<float>(), x.data<float>() + T * E);
  TokenAttribution a;
  a.method = "gradient_x_input";
  a.outputs = y.size(1);
  per_output_gradients(x, y, [&](int64_t, const float* g) { row_dots(g, v, T, E, a.scores); });
  return a;
}

Tensor baseline_embeddings(const Tensor& embeddings, const std::vector<bool>& keep_own,
                           const Tensor& unknown) {
  const int64_t T = embeddings.size(1), E = embeddings.size(2);
  GAZE_CHECK(static_cast<int64_t>(keep_own.size()) == T, ValueError,
             "baseline_embeddings: {} flags for {} tokens", keep_own.size(), T);
  GAZE_CHECK(!unknown.defined() || unknown.numel() == E, ValueError,
             "baseline_embeddings: the unknown row must have {} values, got {}", E,
             unknown.numel());
  Tensor base = Tensor::zeros(embeddings.shape());
  for (int64_t t = 0; t < T; ++t) {
    const float* from = keep_own[size_t(t)] ? embeddings.data<float>() + t * E
                        : unknown.defined() ? unknown.data<float>()
                                            : nullptr;
    if (from) std::copy(from, from + E, base.data<float>() + t * E);
  }
  return base;
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
  TokenAttribution a;
  a.method = "integrated_gradients";
  std::vector<double> avg;  // per output, the mean gradient along the path [K][T * E]
  for (int64_t k0 = 0; k0 < steps; k0 += chunk) {
    const int64_t m = std::min(chunk, steps - k0);
    Tensor points = Tensor::empty(Shape{m, T, E});
    float* p = points.data<float>();
    for (int64_t i = 0; i < m; ++i) {
      const double alpha = (double(k0 + i) + 0.5) / double(steps);
      for (int64_t j = 0; j < n; ++j) p[i * n + j] = float(b[j] + alpha * (double(x[j]) - b[j]));
    }
    points.set_requires_grad();
    const Tensor y = outputs(f, points, nullptr);
    if (avg.empty()) a.outputs = y.size(1), avg.assign(size_t(a.outputs * n), 0.0);
    per_output_gradients(points, y, [&](int64_t k, const float* g) {
      double* dst = avg.data() + k * n;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) dst[j] += g[i * n + j] / double(steps);
    });
  }
  std::vector<float> ends;  // the two ends, for the completeness gap: [2, K]
  {
    NoGradGuard no_grad;
    ends = outputs(f, cat({baseline, f.embeddings}, 0), nullptr).to_vector<float>();
  }
  std::vector<double> delta(static_cast<size_t>(n));
  for (int64_t j = 0; j < n; ++j) delta[size_t(j)] = double(x[j]) - b[j];
  a.output = a.baseline_output = 0;
  double total = 0;
  for (int64_t k = 0; k < a.outputs; ++k) {
    std::vector<double> weighted(static_cast<size_t>(n));
    for (int64_t j = 0; j < n; ++j) weighted[size_t(j)] = delta[size_t(j)] * avg[size_t(k * n + j)];
    double sum_k = 0;
    for (int64_t t = 0; t < T; ++t) {
      double s = 0;
      for (int64_t e = 0; e < E; ++e) s += weighted[size_t(t * E + e)];
      a.scores.push_back(static_cast<float>(s));
      sum_k += s;
    }
    const double out = ends[size_t(a.outputs + k)], base = ends[size_t(k)];
    a.completeness_gaps.push_back(sum_k - (out - base));
    a.output += out, a.baseline_output += base, total += sum_k;
  }
  a.completeness_gap = total - (a.output - a.baseline_output);
  return a;
}

TokenAttribution attention_x_gradient(const Objective& f, const CaptureOptions& o) {
  check_objective(f);
  GradOn on;
  nn::AttentionCapture cap;
  cap.layers = o.layers, cap.heads = o.heads, cap.gradients = true;
  const Tensor y = outputs(f, f.embeddings.detach(), &cap);
  GAZE_CHECK(y.size(1) == 1, ValueError,
             "attention_x_gradient: explains one output (a class), got {}", y.size(1));
  sum(y).backward();
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

Tensor gradient_rollout(const std::vector<Tensor>& per_head) {
  GAZE_CHECK(!per_head.empty(), ValueError, "gradient_rollout: no layers");
  const int64_t T = per_head[0].size(1);
  std::vector<double> R(static_cast<size_t>(T * T), 0.0), bar(static_cast<size_t>(T * T));
  for (int64_t i = 0; i < T; ++i) R[size_t(i * T + i)] = 1.0;
  for (const Tensor& w : per_head) {
    GAZE_CHECK(w.dim() == 3 && w.size(1) == T && w.size(2) == T, ValueError,
               "gradient_rollout: every layer must be [heads, {}, {}], got {}", T, T,
               w.shape_str());
    const int64_t H = w.size(0);
    std::fill(bar.begin(), bar.end(), 0.0);
    for (int64_t h = 0; h < H; ++h)
      for (int64_t k = 0; k < T * T; ++k)
        bar[size_t(k)] += std::max(0.0, double(w.data<float>()[h * T * T + k])) / double(H);
    std::vector<double> next = R;  // R + Ā R
    for (int64_t i = 0; i < T; ++i)
      for (int64_t k = 0; k < T; ++k) {
        const double a = bar[size_t(i * T + k)];
        if (a == 0) continue;
        for (int64_t j = 0; j < T; ++j) next[size_t(i * T + j)] += a * R[size_t(k * T + j)];
      }
    R = std::move(next);
  }
  Tensor out = Tensor::empty(Shape{T, T});
  for (int64_t k = 0; k < T * T; ++k) out.data<float>()[k] = static_cast<float>(R[size_t(k)]);
  return out;
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
    nlohmann::json m;
    if (a.outputs == 1) {
      m["scores"] = a.scores;
    } else {  // one row per output token
      const size_t T = a.scores.size() / size_t(a.outputs);
      nlohmann::json rows = nlohmann::json::array();
      for (size_t k = 0; k < size_t(a.outputs); ++k)
        rows.push_back(std::vector<float>(a.scores.begin() + std::ptrdiff_t(k * T),
                                          a.scores.begin() + std::ptrdiff_t((k + 1) * T)));
      m["scores"] = std::move(rows);
    }
    if (!std::isnan(a.completeness_gap))
      m.update({{"output", a.output},
                {"baseline_output", a.baseline_output},
                {"completeness_gap", a.completeness_gap},
                {"completeness_gaps", a.completeness_gaps}});
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
  return {{"explained_output", e.explained_output}, {"tokens", e.tokens},
          {"output_tokens", e.output_tokens},       {"methods", std::move(methods)},
          {"faithfulness", std::move(curves)},      {"provenance", e.provenance}};
}

}  // namespace gaze::explain
