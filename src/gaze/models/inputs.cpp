#include "gaze/models/inputs.h"

#include "gaze/ops/shape_ops.h"

#include <algorithm>

#include "gaze/core/error.h"

namespace gaze::models {

Tensor char_ids(const std::vector<const std::vector<std::string>*>& words, int64_t T,
                int64_t max_chars) {
  GAZE_CHECK(max_chars >= 2, ValueError, "char_ids: max_chars must be >= 2, got {}", max_chars);
  const auto B = static_cast<int64_t>(words.size());
  int64_t L = 1;
  for (const auto* w : words) {
    GAZE_CHECK(static_cast<int64_t>(w->size()) <= T, ValueError,
               "char_ids: a sequence has {} words but the batch is {} tokens long", w->size(), T);
    for (const auto& s : *w) L = std::max(L, std::min<int64_t>(max_chars, std::ssize(s)));
  }
  Tensor out = Tensor::zeros(Shape{B, T, L}, DType::i64);
  int64_t* p = out.data<int64_t>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& seq = *words[static_cast<size_t>(b)];
    for (size_t t = 0; t < seq.size(); ++t) {
      const std::string& s = seq[t];
      int64_t* row = p + (b * T + static_cast<int64_t>(t)) * L;
      const auto n = std::ssize(s);
      const int64_t head = n <= L ? n : L / 2, tail = n <= L ? 0 : L - head;
      for (int64_t i = 0; i < head; ++i) row[i] = static_cast<unsigned char>(s[i]) + 1;
      for (int64_t i = 0; i < tail; ++i)
        row[head + i] = static_cast<unsigned char>(s[n - tail + i]) + 1;
    }
  }
  return out;
}

Inputs repeat(const Inputs& one, int64_t n) {
  GAZE_CHECK(one.tokens.defined() && one.tokens.size(0) == 1 && n >= 1, ValueError,
             "repeat: expected a batch of one and n >= 1");
  auto copies = [n](const Tensor& t) {
    return t.defined() ? cat(std::vector<Tensor>(static_cast<size_t>(n), t), 0) : Tensor();
  };
  return {copies(one.tokens), copies(one.lengths), copies(one.chars), Tensor()};
}

void check_token_embeddings(const Inputs& in, int64_t dim) {
  if (!in.token_embeddings.defined()) return;
  const Tensor& e = in.token_embeddings;
  GAZE_CHECK(e.dim() == 3 && e.size(0) == in.tokens.size(0) && e.size(1) == in.tokens.size(1) &&
                 e.size(2) == dim && is_floating(e.dtype()),
             ValueError,
             "model: token_embeddings must be floating [B, T, E] = [{}, {}, {}], got {}",
             in.tokens.size(0), in.tokens.size(1), dim, e.shape_str());
}

}  // namespace gaze::models
