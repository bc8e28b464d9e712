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
  std::string nrefs = "1";  // references per source, as sacreBLEU's signature says it ("var")
};

// The distinct sources of sentence pairs, in order of first appearance, each with all its
// references (a source may be translated several ways).
struct DistinctSources {
  std::vector<std::string> sources;
  std::vector<std::vector<std::string>> references;
  int64_t pairs = 0;
};
DistinctSources distinct_sources(const std::vector<data::SentencePair>& pairs);
// The best translation of each source, detokenized ("" when the search found none).
std::vector<std::string> best_translations(TranslatePredictor& predictor,
                                           const std::vector<std::string>& sources,
                                           const decode::SearchOptions& search);
// Corpus BLEU, chrF and error rates of one hypothesis per distinct source.
TranslationScores score_hypotheses(const std::vector<std::string>& hypotheses,
                                   const DistinctSources& sources);
// The two above in one.
TranslationScores score_translations(TranslatePredictor& predictor,
                                     const std::vector<data::SentencePair>& pairs,
                                     const decode::SearchOptions& search);
// The text report and the JSON one (with the decoding options and the metrics' sacreBLEU-style
// signatures). `g2p` (character input): the exact-match error rate is G2P's word error rate and
// is called WER; elsewhere "exact-match error rate", as WER means word edit distance in MT.
Report translation_report(const TranslationScores& scores, const decode::SearchOptions& search,
                          bool g2p = false);

}  // namespace gaze::tasks
