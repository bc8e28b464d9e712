// Attribution beyond attention: gradient x input, Integrated Gradients and attention x gradient,
// per input token, from gaze's own autograd; and the deletion/insertion test of which is faithful.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gaze/core/enums.h"
#include "gaze/core/tensor.h"
#include "gaze/explain/explanation.h"
#include "gaze/nn/transformer.h"

namespace gaze::explain {

// What `gaze explain --method` computes besides the attention views (which are always there):
// attention (nothing more), one attribution method, or all of them (then also the faithfulness
// curves of every method).
enum class Method { attention, gradient_x_input, integrated_gradients, attention_x_gradient, all };
GAZE_ENUM_NAMES(Method, {Method::attention, "attention"},
                {Method::gradient_x_input, "gradient_x_input"},
                {Method::integrated_gradients, "integrated_gradients"},
                {Method::attention_x_gradient, "attention_x_gradient"}, {Method::all, "all"})

// Integrated Gradients' baseline input: zero vectors, or the unknown token's embedding (the
// framing tokens, such as [CLS] and [SEP], keep their own in both).
enum class Baseline { zero, unknown };
GAZE_ENUM_NAMES(Baseline, {Baseline::zero, "zero"}, {Baseline::unknown, "unknown"})

// A model's explained outputs as a function of one input's token embeddings: `output` maps n
// variants [n, T, E] to [n, K] (e.g. the predicted class's probability, K = 1, or the
// log-probability of each token of a translation). The capture, when given,
// asks for attention weights and their gradient probes.
struct Objective {
  Tensor embeddings;  // [1, T, E]: the input's own token embedding rows
  std::function<Tensor(const Tensor& embeddings, nn::AttentionCapture* capture)> output;
};

// Σ_e x_e ∂f/∂x_e per token (Shrikumar et al. 2016; Denil et al. 2014).
TokenAttribution gradient_x_input(const Objective& f);

// Integrated Gradients' baseline for an input's embeddings [1, T, E]: `unknown` (the unknown
// token's row, [.., E]; undefined: zeros) at every token, except the input's own row where
// keep_own[t] (framing tokens, which every variant of the input keeps).
Tensor baseline_embeddings(const Tensor& embeddings, const std::vector<bool>& keep_own,
                           const Tensor& unknown);

// (x - x') ⊙ ∫ ∂f/∂x(x' + α(x - x')) dα, summed over e (Sundararajan et al. 2017), by the
// midpoint rule over `steps` intervals (gradients at α = (k + ½) / steps, `chunk` at a time; the
// ends are avoided, where ties such as max pooling's over all-zero inputs have no gradient).
TokenAttribution integrated_gradients(const Objective& f, const Tensor& baseline, int64_t steps,
                                      int64_t chunk = 16);

// Σ over the captured layers, heads and queries of A ⊙ ∂f/∂A per key token, with the per-layer
// matrices (the attention weights' first-order contribution to f).
TokenAttribution attention_x_gradient(const Objective& f, const CaptureOptions& capture);

// Gradient-weighted attention rollout (Chefer et al. 2021, "Generic Attention-model
// Explainability"): per layer Ā = mean over heads of (A ⊙ ∂f/∂A)⁺ (attention_x_gradient's
// matrices), R = I, then R ← R + Ā R from the first layer to the last. Rows as the rollout's: row
// i is what position i's final representation draws on. [T, T].
Tensor gradient_rollout(const std::vector<Tensor>& per_head);

// --- faithfulness ---------------------------------------------------------------------------

// The explained output for variants of the input that keep only some tokens (keep[v][t]).
using KeepEvaluator = std::function<std::vector<double>(const std::vector<std::vector<bool>>&)>;

// fixed[t]: never removed nor ranked (the framing tokens).
FaithfulnessCurve faithfulness(const std::string& method, const std::vector<float>& scores,
                               const std::vector<bool>& fixed, const KeepEvaluator& evaluate);
// The same for `orders` random rankings (seeded), averaged: what no information gives.
FaithfulnessCurve random_faithfulness(const std::vector<bool>& fixed, const KeepEvaluator& evaluate,
                                      int64_t orders = 8, uint64_t seed = 0);

// The attributions and curves of e as JSON: {"explained_output", "tokens", "methods": {method:
// {"scores", and for integrated_gradients "output", "baseline_output", "completeness_gap", for
// attention_x_gradient (with per_head) "layers" and "per_head" [layer][head][query][key]},
// "faithfulness": {method: {"fraction", "deletion", "insertion", "deletion_area",
// "insertion_area"}}}; null without attributions.
nlohmann::json attribution_json(const Explanation& e, bool per_head);

}  // namespace gaze::explain
