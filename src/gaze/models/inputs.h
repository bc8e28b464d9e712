// What an encoder model reads: token ids [B, T] with lengths [B] and, for backbones that look
// inside words (the glove backbone's character encoder), the bytes of each token as written.
#pragma once

#include <string>
#include <vector>

#include "gaze/core/tensor.h"

namespace gaze::models {

struct Inputs {
  Tensor tokens;   // int64 [B, T]
  Tensor lengths;  // int64 [B], or undefined: every row is T tokens
  Tensor chars;    // int64 [B, T, L]: byte + 1 of each token (0: padding), or undefined
  // Optional: the token embedding rows [B, T, E] to use instead of looking tokens up (what
  // attribution methods scale, interpolate and differentiate; Backbone::lookup gives them). Every
  // later step (scaling, positions, characters) is the model's as usual.
  Tensor token_embeddings{};  // {}: aggregate initialisers may leave it out
};

// n copies of a batch of one (tokens, lengths, chars; not token_embeddings).
Inputs repeat(const Inputs& one, int64_t n);

// Checks Inputs::token_embeddings, when given, against the tokens and the embedding width.
void check_token_embeddings(const Inputs& in, int64_t embedding_dim);

// The character ids of each sequence's tokens (`words[b][t]`, as the tokenizer's surfaces() gives
// them): [B, T, L] with L the longest token's byte count, at most max_chars; a longer token keeps
// its first and last max_chars / 2 bytes (prefixes and suffixes carry most of a word's shape).
Tensor char_ids(const std::vector<const std::vector<std::string>*>& words, int64_t T,
                int64_t max_chars);

}  // namespace gaze::models
