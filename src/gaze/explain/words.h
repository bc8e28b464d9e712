// Word-level views of an explanation: subword pieces aggregated to the words they spell. Attention
// a word receives is the sum over its pieces (keys), attention it pays the mean over them
// (queries); attributions and importance are sums.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gaze/explain/explanation.h"

namespace gaze::explain {

// The word of each piece on one token axis (0, 1, ... in order) and the words.
struct WordAxis {
  std::vector<int64_t> group;
  std::vector<std::string> words;
};

// The rule, as the page states it.
inline constexpr const char* kWordRule =
    "subword pieces aggregated to words: the attention a word receives is the sum over its pieces, "
    "the attention it pays the mean over them; importance and attributions are sums";

// Rewrites e at word level: source is the encoder's tokens; decoder_inputs and outputs (empty for
// encoders) the decoder's input tokens and the tokens it predicts. Token ids are dropped (a word
// has none); faithfulness curves stay per piece.
void aggregate_to_words(Explanation& e, const WordAxis& source, const WordAxis& decoder_inputs = {},
                        const WordAxis& outputs = {});

}  // namespace gaze::explain
