// Search for the most likely target sequence: greedy (the best token at every step) and beam
// search (the best `beam_size` prefixes at every step, finished hypotheses ranked by their
// log-probability divided by length^length_penalty), batched over sources, with n-best lists and
// the attention alignment of each hypothesis on request.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gaze/io/config.h"
#include "gaze/models/seq2seq.h"

namespace gaze::decode {

using models::StepDecoder;

enum class SearchMethod { beam, greedy };
GAZE_ENUM_NAMES(SearchMethod, {SearchMethod::beam, "beam"}, {SearchMethod::greedy, "greedy"})

// The decoding options, declared once: each is a member and its field below, which the `decode`
// section of a run, task.json, the CLI flags (--beam-size, ...) and Python keyword arguments all
// read. A new option is a member, a field, and its use.
struct SearchOptions {
  SearchMethod method = SearchMethod::beam;
  int64_t beam_size = 4;
  double length_penalty = 1.0;    // score = log p / length^length_penalty
  double max_length_ratio = 2.0;  // at most ratio * source length + offset target tokens
  int64_t max_length_offset = 10;
  int64_t max_length = 0;  // and never more than this many (0: no absolute cap)
  int64_t nbest = 1;       // hypotheses returned per source (at most beam_size)
};
inline config::Fields config_fields(SearchOptions& o) {
  using config::field;
  return {field("method", o.method).describe("beam or greedy"),
          field("beam_size", o.beam_size, 1).describe("hypotheses kept per step"),
          field("length_penalty", o.length_penalty, -10.0, 10.0)
              .describe("scores are log p / length^penalty"),
          field("max_length_ratio", o.max_length_ratio, 0.0, 100.0)
              .describe("at most ratio x source length + offset output tokens"),
          field("max_length_offset", o.max_length_offset, 0).describe("see max_length_ratio"),
          field("max_length", o.max_length, 0)
              .describe("an absolute cap on output tokens, EOS included (0: none)"),
          field("nbest", o.nbest, 1).describe("hypotheses returned per input (<= beam size)")};
}
// Raises beam_size to nbest when asked for more hypotheses than beams (front ends' convenience).
void widen_beam(SearchOptions& o);

struct Hypothesis {
  std::vector<int64_t> tokens;  // without BOS and EOS
  double log_prob = 0;          // sum over the generated tokens (EOS included when reached)
  double score = 0;             // log_prob / length^length_penalty (length counts EOS)
  bool finished = false;        // ended with EOS (else cut at the maximum length)
  std::vector<std::vector<float>> alignment;  // per generated token, its attention over the source
};

// The maximum number of generated tokens (EOS included) for a source of `source_length` tokens.
int64_t max_target_length(int64_t source_length, const SearchOptions& options);

// decoder: made with rows_per_source 1. One hypothesis per source.
std::vector<Hypothesis> greedy_search(StepDecoder& decoder,
                                      const std::vector<int64_t>& source_lengths, int64_t bos,
                                      int64_t eos, const SearchOptions& options,
                                      bool alignment = false);
// decoder: made with rows_per_source == options.beam_size. Up to nbest hypotheses per source,
// best first.
std::vector<std::vector<Hypothesis>> beam_search(StepDecoder& decoder,
                                                 const std::vector<int64_t>& source_lengths,
                                                 int64_t bos, int64_t eos,
                                                 const SearchOptions& options,
                                                 bool alignment = false);

}  // namespace gaze::decode
