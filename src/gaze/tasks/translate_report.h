// Translation's reporter: each distinct source decoded once and scored against all its references
// by BLEU, chrF and error rates, as sacreBLEU's and the reference tools' layouts.
#pragma once

#include <vector>

#include "gaze/data/parallel.h"
#include "gaze/metrics/translation.h"
#include "gaze/tasks/task.h"
#include "gaze/tasks/translate_predictor.h"

namespace gaze::tasks {

struct TranslationScores {
  metrics::BleuScore bleu;
  double chrf = 0;
  metrics::ErrorRates errors;
  int64_t sources = 0, pairs = 0;
};

TranslationScores score_translations(TranslatePredictor& predictor,
                                     const std::vector<data::SentencePair>& pairs,
                                     const decode::SearchOptions& search);
// The text report and the JSON one (with the decoding options).
Report translation_report(const TranslationScores& scores, const decode::SearchOptions& search);

}  // namespace gaze::tasks
