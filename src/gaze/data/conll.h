// CoNLL-style tagged text: one token per line with its columns (tab-separated, or separated by
// spaces when a line has no tab), a blank line between sentences, comment lines starting with "# "
// and -DOCSTART- lines skipped. Which columns hold the token and the tag is configurable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace gaze::data {

struct ConllFormat {
  int64_t token_column = 0;  // 0-based
  int64_t tag_column = -1;   // 0-based; negative counts from the end (-1: the last column)
};

struct TaggedSentence {
  std::vector<std::string> words, tags;  // tags empty when the file has no tag column
  int64_t line = 0;                      // the line of the first token (1-based)
  std::vector<int64_t> lines;            // each token's line
};

// Every sentence of the file. Lines with a different number of columns than the first token line,
// missing token or tag columns and an empty result are DataErrors naming `file:line`.
std::vector<TaggedSentence> read_conll(const std::string& path, const ConllFormat& format,
                                       bool require_tags = true);

// Sentences to tag, one per line, words split at whitespace; each word's character offsets (in
// code points, as Python counts them) are kept for predictions.
struct WordSpan {
  std::string word;
  int64_t start = 0, end = 0;
};
std::vector<WordSpan> split_words(const std::string& line);

}  // namespace gaze::data
