#include "gaze/metrics/classification.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"

namespace gaze::metrics {
namespace {

double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

}  // namespace

ClassScores scores_from_counts(double tp, double fp, double fn, int64_t support) {
  ClassScores s;
  s.precision = ratio(tp, tp + fp);
  s.recall = ratio(tp, tp + fn);
  s.f1 = ratio(2 * s.precision * s.recall, s.precision + s.recall);
  s.support = support;
  return s;
}

nlohmann::json scores_json(const ClassScores& s) {
  return {
      {"precision", s.precision}, {"recall", s.recall}, {"f1-score", s.f1}, {"support", s.support}};
}

ClassificationReport classification_report(const std::vector<int64_t>& gold,
                                           const std::vector<int64_t>& predicted,
                                           const std::vector<std::string>& labels) {
  GAZE_CHECK(gold.size() == predicted.size(), ValueError,
             "classification_report: {} gold labels but {} predictions", gold.size(),
             predicted.size());
  const size_t k = labels.size();
  ClassificationReport r;
  r.labels = labels;
  r.confusion.assign(k, std::vector<int64_t>(k, 0));
  for (size_t i = 0; i < gold.size(); ++i) {
    GAZE_CHECK(gold[i] >= 0 && static_cast<size_t>(gold[i]) < k && predicted[i] >= 0 &&
                   static_cast<size_t>(predicted[i]) < k,
               IndexError, "classification_report: label index out of range at example {}", i);
    ++r.confusion[static_cast<size_t>(gold[i])][static_cast<size_t>(predicted[i])];
  }
  r.total = static_cast<int64_t>(gold.size());
  int64_t correct = 0;
  double tp_all = 0, fp_all = 0, fn_all = 0;
  for (size_t c = 0; c < k; ++c) {
    double tp = static_cast<double>(r.confusion[c][c]), fp = 0, fn = 0;
    int64_t support = 0;
    for (size_t o = 0; o < k; ++o) {
      support += r.confusion[c][o];
      if (o != c)
        fp += static_cast<double>(r.confusion[o][c]), fn += static_cast<double>(r.confusion[c][o]);
    }
    correct += r.confusion[c][c];
    tp_all += tp, fp_all += fp, fn_all += fn;
    r.per_class.push_back(scores_from_counts(tp, fp, fn, support));
  }
  r.accuracy = ratio(static_cast<double>(correct), static_cast<double>(r.total));
  r.micro = scores_from_counts(tp_all, fp_all, fn_all, r.total);
  for (const ClassScores& s : r.per_class) {
    const double w = ratio(static_cast<double>(s.support), static_cast<double>(r.total));
    r.macro.precision += s.precision / static_cast<double>(k);
    r.macro.recall += s.recall / static_cast<double>(k);
    r.macro.f1 += s.f1 / static_cast<double>(k);
    r.weighted.precision += w * s.precision;
    r.weighted.recall += w * s.recall;
    r.weighted.f1 += w * s.f1;
  }
  r.macro.support = r.weighted.support = r.total;
  return r;
}

std::string score_table(const std::vector<ScoreRow>& rows, const std::vector<ScoreRow>& summary,
                        int digits) {
  // sklearn's layout: names right-aligned to the longest (at least "weighted avg"), then columns
  // of a space and 9 characters.
  int width = std::max(static_cast<int>(std::string("weighted avg").size()), digits);
  for (const auto& [name, s] : rows) width = std::max(width, static_cast<int>(name.size()));
  auto row = [&](const std::string& name, const ClassScores& s) {
    if (s.accuracy_row)
      return fmt::format("{:>{}}  {:>9} {:>9} {:>9.{}f} {:>9}\n", name, width, "", "", s.f1, digits,
                         s.support);
    return fmt::format("{:>{}}  {:>9.{}f} {:>9.{}f} {:>9.{}f} {:>9}\n", name, width, s.precision,
                       digits, s.recall, digits, s.f1, digits, s.support);
  };
  std::string out = fmt::format("{:>{}}  {:>9} {:>9} {:>9} {:>9}\n\n", "", width, "precision",
                                "recall", "f1-score", "support");
  for (const auto& [name, s] : rows) out += row(name, s);
  out += "\n";
  for (const auto& [name, s] : summary) out += row(name, s);
  return out;
}

std::string to_text(const ClassificationReport& r, int digits) {
  std::vector<ScoreRow> rows;
  for (size_t c = 0; c < r.labels.size(); ++c) rows.emplace_back(r.labels[c], r.per_class[c]);
  ClassScores acc;
  acc.f1 = r.accuracy, acc.support = r.total, acc.accuracy_row = true;
  std::string out = score_table(
      rows, {{"accuracy", acc}, {"macro avg", r.macro}, {"weighted avg", r.weighted}}, digits);
  int width = std::max(static_cast<int>(std::string("weighted avg").size()), digits);
  for (const std::string& l : r.labels) width = std::max(width, static_cast<int>(l.size()));
  // Confusion matrix: rows are the gold labels, columns the predictions.
  int cell = 5;
  for (const std::string& l : r.labels) cell = std::max(cell, static_cast<int>(l.size()));
  for (const auto& rowv : r.confusion)
    for (const int64_t v : rowv) cell = std::max(cell, static_cast<int>(std::to_string(v).size()));
  out += fmt::format("\nconfusion matrix (rows: gold, columns: predicted)\n{:>{}}", "", width);
  for (const std::string& l : r.labels) out += fmt::format(" {:>{}}", l, cell);
  out += "\n";
  for (size_t g = 0; g < r.labels.size(); ++g) {
    out += fmt::format("{:>{}}", r.labels[g], width);
    for (const int64_t v : r.confusion[g]) out += fmt::format(" {:>{}}", v, cell);
    out += "\n";
  }
  return out;
}

std::string to_json(const ClassificationReport& r) {
  nlohmann::json per = nlohmann::json::object();
  for (size_t c = 0; c < r.labels.size(); ++c) per[r.labels[c]] = scores_json(r.per_class[c]);
  const nlohmann::json j = {{"accuracy", r.accuracy},
                            {"macro avg", scores_json(r.macro)},
                            {"micro avg", scores_json(r.micro)},
                            {"weighted avg", scores_json(r.weighted)},
                            {"per_class", per},
                            {"labels", r.labels},
                            {"confusion_matrix", r.confusion},
                            {"support", r.total}};
  return j.dump(2);
}

}  // namespace gaze::metrics
