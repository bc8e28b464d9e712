// Pretrained word vectors: GloVe's text form (`word v1 ... vD` per line), word2vec's (the same
// after a first line `COUNT D`) and the npm packages' JSON, read into a vocabulary and a float32
// [N, D] table for nn::Embedding::from_pretrained.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/tensor.h"

namespace gaze::io {

struct WordVectors {
  std::vector<std::string> words;  // in file order; a repeated word keeps its first vector
  Tensor vectors;                  // float32 [words.size(), D]
};

// Reads at most max_words vectors (0: all), in file order (most frequent first in GloVe's files).
// A file starting with '{' is read as wink-embeddings' JSON (`"dimensions": D` and `"vectors":
// {word: [D values, then extra fields]}`). DataError naming file:line on a ragged or non-numeric
// row, a word2vec header that disagrees with the rows, an over-long line, invalid JSON or an empty
// file.
WordVectors read_word_vectors(const std::string& path, int64_t max_words = 0);

}  // namespace gaze::io
