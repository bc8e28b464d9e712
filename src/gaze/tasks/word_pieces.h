// Words <-> subword pieces for tagging: each word's pieces are concatenated (cut at max_length),
// the model is trained and read on each word's first piece, and predictions come back to words by
// Hugging Face's aggregation strategies.
#pragma once

#include <utility>
#include <vector>

#include "gaze/core/tensor.h"
#include "gaze/data/conll.h"
#include "gaze/tasks/options.h"
#include "gaze/text/tokenizer.h"

namespace gaze::tasks {

struct TagEncoded {
  std::vector<std::vector<int64_t>> ids;           // subword pieces of each sentence
  std::vector<std::vector<std::string>> surfaces;  // the pieces as written (with_surfaces)
  std::vector<std::vector<int64_t>> first;         // per word: its first piece, -1 when cut off
  std::vector<std::vector<int64_t>> tags;          // per word: tag index (-1: unlabelled)
  int64_t truncated = 0;                           // sentences cut to max_length pieces
  int64_t unknown = 0;  // gold tags the model does not know (with unknown_tags: wrong)
};
constexpr int64_t kUnknownTag = -2;  // a gold tag outside the model's tagset

// The pieces of every sentence, at most max_length each. With a tagset, the sentences' tags
// become indices; a tag outside it is a DataError naming source:line, or kUnknownTag with
// UnknownTags::wrong. Without one (nullptr), tags are -1. with_surfaces keeps each piece as written
// (for models that read characters).
TagEncoded encode_words(const text::Tokenizer& tokenizer,
                        const std::vector<data::TaggedSentence>& sentences,
                        const std::vector<std::string>* tagset, int64_t max_length,
                        UnknownTags unknown_tags, const std::string& source, bool with_surfaces);

// Which tag sequences a scheme allows (AllenNLP's allowed_transitions): BIO/IOB2 — I-x only after
// B-x or I-x, never first; BIOES — I-x/E-x only after B-x/I-x of the same type, B-x/S-x/O only
// after O, E-x or S-x (or first), and only O, E-x, S-x last. Tags not of the form P-type count as
// O.
struct SchemeConstraints {
  std::vector<std::vector<bool>> allowed;  // [from][to]
  std::vector<bool> start, end;
};
SchemeConstraints scheme_constraints(const std::vector<std::string>& tags, TagScheme scheme);

// The first-piece rows of piece logits [B, T, K] for each sentence's kept words (first >= 0, a
// prefix): emissions [B, W, K] (W: the most words kept; differentiable in the logits) and the word
// counts [B] (int64).
std::pair<Tensor, Tensor> word_emissions(const Tensor& logits,
                                         const std::vector<const std::vector<int64_t>*>& first);

// The gold tags [B, W] of the words `words` counts for the sentences `batch` of `enc` (0 past a
// count and in place of unknown tags); `known` (optional) tells whether every one was a tag of the
// model's.
Tensor word_gold(const TagEncoded& enc, const std::vector<int64_t>& batch, const Tensor& words,
                 int64_t W, bool* known = nullptr);

// Per word of one sentence (`first`: its words' first pieces, of `pieces` in all): (tag index,
// score) from the piece probabilities as `aggregation` says; words cut off get `fallback` with
// score 0.
std::vector<std::pair<int64_t, float>> word_tags(const std::vector<int64_t>& first, int64_t pieces,
                                                 const std::vector<std::vector<float>>& probs,
                                                 Aggregation aggregation, int64_t fallback);

}  // namespace gaze::tasks
