// The explanation as JSON: raw weights and tokens in bertviz's data contract (per layer
// [heads, tgt, src]; encoder-decoders as encoder/decoder/cross attention with both token lists).
#pragma once

#include <string>

#include "gaze/explain/explanation.h"

namespace gaze::explain {

// Keys: format, task, architecture, text, truncated, prediction, heads, layers {block: [...]}; for
// encoders "tokens" and "attention" ([layer][head][query][key]), for encoder-decoders
// "encoder_tokens", "decoder_tokens", "encoder_attention", "decoder_attention", "cross_attention";
// and the aggregations "rollout", "token_importance", "alignment", "hard_alignment",
// "output_tokens", "alignment_layer" when they apply. Weights are float32 values written exactly
// (shortest form).
std::string to_json(const Explanation& e);

}  // namespace gaze::explain
