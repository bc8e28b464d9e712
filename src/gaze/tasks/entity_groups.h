// Entity groups of a tagged line, shaped like Hugging Face's token-classification pipeline with
// aggregation: {"entity_group", "score", "word", "start", "end"} over code-point offsets.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "gaze/data/conll.h"

namespace gaze::tasks {

// Hugging Face's entity grouping over words (tag, score, character span): consecutive words of one
// type form a group unless a word starts a new entity (B- or S-); O words end groups and are
// dropped. The group's score is the mean of its words'; `text` gives the group's word.
nlohmann::json group_entities(const std::string& text, const std::vector<data::WordSpan>& words,
                              const std::vector<std::string>& tags,
                              const std::vector<float>& scores);

}  // namespace gaze::tasks
