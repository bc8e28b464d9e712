// Classification metrics as scikit-learn computes them: accuracy; per-class precision, recall, F1
// and support; macro, micro and support-weighted averages; the confusion matrix. Printed as
// sklearn's classification_report prints them, and as JSON.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

namespace gaze::metrics {

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
  bool accuracy_row = false;  // a report's accuracy line: f1 holds the accuracy, no P/R
};

struct ClassificationReport {
  std::vector<std::string> labels;
  std::vector<ClassScores> per_class;  // in the order of labels
  ClassScores macro, micro, weighted;
  double accuracy = 0;
  int64_t total = 0;
  std::vector<std::vector<int64_t>> confusion;  // [gold][predicted]
};

// gold and predicted are indices into labels. A score whose denominator is 0 is 0 (sklearn's
// zero_division default).
ClassificationReport classification_report(const std::vector<int64_t>& gold,
                                           const std::vector<int64_t>& predicted,
                                           const std::vector<std::string>& labels);

// Precision, recall and F1 from true positives, false positives and false negatives (0 when a
// denominator is 0).
ClassScores scores_from_counts(double tp, double fp, double fn, int64_t support);
// {"precision", "recall", "f1-score", "support"}, as sklearn's output_dict.
nlohmann::json scores_json(const ClassScores& s);

// A row of a report: a name and its scores. A row named "accuracy" prints only f1 (the accuracy)
// and support, as sklearn's does.
using ScoreRow = std::pair<std::string, ClassScores>;
// sklearn's table: a header, the per-label rows, a blank line, then the summary rows.
std::string score_table(const std::vector<ScoreRow>& rows, const std::vector<ScoreRow>& summary,
                        int digits);
// sklearn's text layout (digits after the point), followed by the confusion matrix.
std::string to_text(const ClassificationReport& r, int digits = 4);
// {"accuracy", "macro avg", "micro avg", "weighted avg", "per_class": {label: {...}}, "labels",
//  "confusion_matrix"}; the keys of sklearn's output_dict where they exist.
std::string to_json(const ClassificationReport& r);

}  // namespace gaze::metrics
