// Faithfulness over a data set: each method's deletion and insertion curves averaged over many
// inputs, the methods ranked, and the curves as a table, JSON and an SVG figure.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gaze/explain/explanation.h"

namespace gaze::explain {

struct MethodSummary {
  std::string method;
  std::vector<double> deletion, insertion;       // mean curves at FaithfulnessSummary::fraction
  double deletion_area = 0, insertion_area = 0;  // means of the inputs' areas
  double score() const { return insertion_area - deletion_area; }
};

struct FaithfulnessSummary {
  int64_t inputs = 0;
  std::string explained_output;        // e.g. "p(predicted class)"
  std::vector<double> fraction;        // 0, 0.05, ..., 1
  std::vector<MethodSummary> methods;  // best first (largest insertion - deletion area)
};

// Averages the curves of explanations made with faithfulness on (each curve read at the common
// fractions by linear interpolation). Explanations without curves are skipped.
FaithfulnessSummary summarize_faithfulness(const std::vector<Explanation>& explanations);

std::string summary_table(const FaithfulnessSummary& s);  // aligned text, one method per line
nlohmann::json summary_json(const FaithfulnessSummary& s);
// Two panels (deletion, insertion) of every method's mean curve, with axes, labels and a legend.
std::string summary_svg(const FaithfulnessSummary& s, const std::string& title);

}  // namespace gaze::explain
