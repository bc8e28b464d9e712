// What each attention head does, over a data set: per layer and head of the encoder's
// self-attention, its mean entropy and where its weight goes (framing tokens, punctuation, the
// previous, next or same token, the tokens the rollout finds important), as JSON and SVG heatmaps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gaze/explain/explanation.h"

namespace gaze::explain {

// The statistics, in this order. Each is a mean over every query of every input:
//   entropy      -Σ_k a_k ln a_k (nats; ln T for uniform attention)
//   framing      Σ of the weights on framing tokens ([CLS], [SEP], <s>, </s>)
//   punctuation  Σ of the weights on pieces made only of punctuation
//   previous     the weight on the token before the query (queries that have one)
//   next         the weight on the token after it (queries that have one)
//   self         the weight on the query's own token
//   rollout      Σ_k a_k · T · r_k, with r the rollout importance (rows' mean, summing to 1):
//                above 1, the head reads tokens the whole model leans on
inline const std::vector<std::string>& head_statistic_names() {
  static const std::vector<std::string> names = {"entropy", "framing", "punctuation", "previous",
                                                 "next",    "self",    "rollout"};
  return names;
}

struct HeadStatistics {
  int64_t inputs = 0, num_heads = 0;
  std::vector<int64_t> layers;  // the captured layers (rows)
  // values[statistic][layer row * num_heads + head]
  std::vector<std::vector<double>> values;
};

// Accumulates the encoder self-attention of explanations captured with every head (inputs whose
// layers differ from the first's are refused).
class HeadStatisticsAccumulator {
 public:
  void add(const Explanation& e);
  HeadStatistics result() const;

 private:
  HeadStatistics sums_;
  std::vector<std::vector<double>> counts_;
};

// Whether a piece is punctuation or symbols only (text::is_punct; subword markers "##", "▁",
// "Ġ" ignored; empty is not).
bool is_punctuation_piece(const std::string& piece);

nlohmann::json head_statistics_json(const HeadStatistics& s);
// Per head, its statistics in aligned columns, and each statistic's most extreme head.
std::string head_statistics_table(const HeadStatistics& s);
// One layer x head heatmap per statistic, each with its colour bar, values in the cells.
std::string head_statistics_svg(const HeadStatistics& s, const std::string& title);

}  // namespace gaze::explain
