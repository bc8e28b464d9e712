// What `gaze explain` shows for one input: the attention captured per block, layer and head in
// bertviz's layout, the model's prediction, and the aggregations (head means, rollout, alignment).
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "gaze/core/enums.h"
#include "gaze/core/tensor.h"
#include "gaze/models/transformer_models.h"

namespace gaze::explain {

// Which layers and heads to capture (empty = all; negative layers count from the end).
struct CaptureOptions {
  std::vector<int64_t> layers, heads;
};

// Which attention a block holds.
enum class Stack { encoder, decoder, cross };
GAZE_ENUM_NAMES(Stack, {Stack::encoder, "encoder"}, {Stack::decoder, "decoder"},
                {Stack::cross, "cross"})

// One attention block of a model: an encoder's or decoder's self-attention, a decoder's
// cross-attention, or an RNN decoder's attention over the source (one layer, one head).
struct AttentionBlock {
  Stack stack = Stack::encoder;
  std::string name() const { return enum_name(stack); }
  std::vector<int64_t> layers;            // the captured layers (indices into the model's stack)
  std::vector<int64_t> heads;             // the captured heads, in capture order
  std::vector<Tensor> weights;            // one f32 [heads.size(), Tq, Tk] per captured layer
  int64_t num_layers = 0, num_heads = 0;  // of the model
  bool self = true;                       // queries and keys are the same tokens (rollout applies)
};

// One method's score for each input token.
struct TokenAttribution {
  std::string method;
  // [outputs, T] row-major: one row per explained output (a class: 1; a translation: one per
  // output token, of its log-probability).
  std::vector<float> scores;
  int64_t outputs = 1;
  // integrated_gradients: f(input), f(baseline) and the completeness gap,
  // sum(scores) - (f(input) - f(baseline)), summed over the outputs; and each output's gap.
  double output = std::numeric_limits<double>::quiet_NaN();
  double baseline_output = std::numeric_limits<double>::quiet_NaN();
  double completeness_gap = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> completeness_gaps{};
  // attention_x_gradient: per captured layer, A ⊙ ∂f/∂A [heads, T, T] (the captured heads).
  std::vector<int64_t> layers{};  // {}: aggregate initialisers may leave these out
  std::vector<Tensor> per_head{};
};

// Deletion and insertion curves of one ranking (Samek et al. 2017; Petsiuk et al. 2018; ERASER's
// comprehensiveness): tokens leave (deletion) or enter (insertion) the input in the order of
// their scores, highest first; point k is the output with k tokens removed or inserted, k = 0..n
// (n: the tokens that are not fixed). Areas are over the fraction k/n in [0, 1]: a faithful
// ranking has a small deletion area and a large insertion area.
struct FaithfulnessCurve {
  std::string method;
  std::vector<double> fraction;  // k / n of each point (at most 65 points: k is spaced out)
  std::vector<double> deletion, insertion;
  double deletion_area = 0, insertion_area = 0;
};

struct Explanation {
  std::string task, architecture;   // classify | tag | translate; transformer | rnn
  std::string text;                 // the input
  std::vector<std::string> tokens;  // the encoder's input pieces
  std::vector<bool> framing;        // per token: a framing token ([CLS], [SEP], <s>, </s>, padding)
  std::vector<std::string> target_tokens;  // translate: the decoder's input pieces (BOS, output)
  std::vector<std::string> output_tokens;  // translate: the pieces each decoder step predicts
  std::vector<int64_t> token_ids, target_token_ids;  // the ids of tokens and target_tokens
  std::vector<AttentionBlock> blocks;                // encoder [, decoder, cross]; RNN: cross only
  nlohmann::json prediction;                         // as `gaze predict` prints it
  bool truncated = false;  // the input was cut to the model's max_length (as predict cuts it)
  // Where it came from: model folder, checkpoint and step, precision, gaze version and commit,
  // date, options (filled by tasks::Predictor::explain).
  nlohmann::json provenance;
  // Set when the pieces were aggregated to words (explain/words.h): the rule, for the page.
  std::string word_rule;

  // Aggregations (see aggregate.h), filled by finish().
  Tensor rollout;                 // [T, T] of the encoder's captured layers; undefined for RNNs
  std::vector<float> importance;  // classify: each token's share of the pooled representation
  std::optional<models::Pooling> pooling;  // classify: how importance reads the rollout
  std::vector<float> pooling_attention;    // classify, attention pooling: its weight per token
  std::string importance_rule;             // how importance was computed, for the page's caption
  Tensor alignment;  // translate: [output tokens, source tokens] (row t: predicting token t)
  std::vector<int64_t> hard_alignment;  // translate: the argmax source token of each target token
  int64_t alignment_layer = -1;         // translate, Transformer: the cross-attention layer used

  // Attribution (gaze explain --method): what is explained (e.g. "p(positive)"), each method's
  // token scores (with "attention" and "rollout" when there is attention) and, with faithfulness,
  // each method's deletion and insertion curves (and a random ranking's).
  std::string explained_output;
  std::vector<TokenAttribution> attributions;
  std::vector<FaithfulnessCurve> faithfulness;

  const AttentionBlock* block(Stack stack) const;
  // An encoder-decoder's explanation (it has a cross-attention block).
  bool seq2seq() const { return block(Stack::cross) != nullptr; }
};

// Computes the aggregations from the captured blocks (alignment_layer indexes the cross block's
// model layers and must have been captured).
void finish(Explanation& e);

}  // namespace gaze::explain
