// Translation metrics as sacreBLEU computes them: corpus BLEU (13a tokenization, clipped n-gram
// precisions up to 4, closest reference length for the brevity penalty) and chrF (character
// 6-grams, beta 2); plus the error rates of transcription tasks such as spelling -> phonemes.
#pragma once

#include "gaze/core/enums.h"

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gaze::metrics {

// mteval-v13a's tokenization (sacreBLEU's default `13a`): tokens joined by single spaces.
std::string tokenize_13a(std::string_view line);

struct BleuScore {
  double score = 0;                    // 0-100
  std::array<double, 4> precisions{};  // per n-gram order, 0-100
  std::array<int64_t, 4> counts{}, totals{};
  double bp = 0;  // brevity penalty
  int64_t sys_len = 0, ref_len = 0;
};

// sacreBLEU's smoothing: none, or exp (each zero n-gram count halves a running 1).
enum class BleuSmoothing { none, exp };
GAZE_ENUM_NAMES(BleuSmoothing, {BleuSmoothing::none, "none"}, {BleuSmoothing::exp, "exp"})

// references[i]: the references of hypothesis i (one or more). smooth "exp" is sacreBLEU's
// default (a zero n-gram count gets 1/2^k); "none" leaves it 0 (and the score 0).
BleuScore corpus_bleu(const std::vector<std::string>& hypotheses,
                      const std::vector<std::vector<std::string>>& references,
                      BleuSmoothing smooth = BleuSmoothing::none);
// "BLEU = 12.34 45.6/20.1/10.2/5.1 (BP = 1.000 ratio = 1.012 hyp_len = 123 ref_len = 121)"
std::string to_string(const BleuScore& b);

// Corpus chrF (sacreBLEU's defaults: character n-grams 1-6 with whitespace removed, beta 2):
// statistics summed over sentences; with several references, each sentence uses the one with the
// best sentence-level score. 0-100.
double corpus_chrf(const std::vector<std::string>& hypotheses,
                   const std::vector<std::vector<std::string>>& references);

struct ErrorRates {
  double wer = 0;  // share of hypotheses equal to none of their references ("word" error rate of
                   // G2P, where each example is a word), 0-100
  double per = 0;  // token edit distance / reference tokens ("phoneme" error rate), 0-100; with
                   // several references, the closest one counts
  int64_t examples = 0, reference_tokens = 0;
};
// Tokens are those of BLEU's 13a tokenization (whitespace-separated tokens such as phonemes are
// unchanged; punctuation is split off, so detokenization differences do not count as errors).
ErrorRates error_rates(const std::vector<std::string>& hypotheses,
                       const std::vector<std::vector<std::string>>& references);

// Levenshtein distance between token sequences.
int64_t edit_distance(const std::vector<std::string_view>& a,
                      const std::vector<std::string_view>& b);

}  // namespace gaze::metrics
