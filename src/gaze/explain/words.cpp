#include "gaze/explain/words.h"

#include "gaze/core/error.h"
#include "gaze/explain/aggregate.h"

namespace gaze::explain {
namespace {

int64_t count(const WordAxis& a) {
  return static_cast<int64_t>(a.words.size());
}

void check(const WordAxis& a, int64_t pieces, const char* what) {
  GAZE_CHECK(static_cast<int64_t>(a.group.size()) == pieces, ValueError,
             "words: {} groups for {} {} pieces", a.group.size(), pieces, what);
  for (int64_t g : a.group)
    GAZE_CHECK(g >= 0 && g < count(a), ValueError, "words: group {} of {} words", g, count(a));
}

// [..., R, C] -> [..., R', C']: rows (queries) averaged over a word's pieces, columns (keys)
// summed; a null axis keeps its dimension.
Tensor regroup(const Tensor& m, const WordAxis* rows, const WordAxis* cols) {
  const int64_t R = m.size(m.dim() - 2), C = m.size(m.dim() - 1);
  const int64_t H = m.numel() / std::max<int64_t>(R * C, 1);
  if (rows) check(*rows, R, "row");
  if (cols) check(*cols, C, "column");
  const int64_t R2 = rows ? count(*rows) : R, C2 = cols ? count(*cols) : C;
  std::vector<double> sums(static_cast<size_t>(H * R2 * C2), 0.0), n(static_cast<size_t>(R2), 0.0);
  for (int64_t i = 0; i < R; ++i) n[size_t(rows ? rows->group[size_t(i)] : i)] += 1;
  const float* v = m.data<float>();
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < R; ++i) {
      const int64_t i2 = rows ? rows->group[size_t(i)] : i;
      for (int64_t j = 0; j < C; ++j) {
        const int64_t j2 = cols ? cols->group[size_t(j)] : j;
        sums[size_t((h * R2 + i2) * C2 + j2)] += v[(h * R + i) * C + j];
      }
    }
  Shape shape = m.shape();
  std::vector<int64_t> dims(shape.begin(), shape.end());
  dims[dims.size() - 2] = R2, dims[dims.size() - 1] = C2;
  Tensor out = Tensor::empty(Shape(dims));
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < R2; ++i)
      for (int64_t j = 0; j < C2; ++j)
        out.data<float>()[(h * R2 + i) * C2 + j] =
            static_cast<float>(sums[size_t((h * R2 + i) * C2 + j)] / n[size_t(i)]);
  return out;
}

// Per-token values summed per word.
std::vector<float> sum_by(const std::vector<float>& v, const WordAxis& a) {
  check(a, static_cast<int64_t>(v.size()), "token");
  std::vector<float> out(a.words.size(), 0.0f);
  for (size_t t = 0; t < v.size(); ++t) out[size_t(a.group[t])] += v[t];
  return out;
}

}  // namespace

void aggregate_to_words(Explanation& e, const WordAxis& source, const WordAxis& decoder_inputs,
                        const WordAxis& outputs) {
  const bool seq2seq = !decoder_inputs.words.empty();
  for (AttentionBlock& b : e.blocks) {
    const WordAxis* rows = b.stack == Stack::encoder ? &source : &decoder_inputs;
    const WordAxis* cols = b.stack == Stack::decoder ? &decoder_inputs : &source;
    for (Tensor& w : b.weights) w = regroup(w, rows, cols);
  }
  if (e.rollout.defined()) e.rollout = regroup(e.rollout, &source, &source);
  if (!e.importance.empty()) e.importance = sum_by(e.importance, source);
  if (!e.pooling_attention.empty()) e.pooling_attention = sum_by(e.pooling_attention, source);
  if (e.alignment.defined()) {
    e.alignment = regroup(e.alignment, &outputs, &source);
    e.hard_alignment = argmax_rows(e.alignment);
  }
  for (TokenAttribution& a : e.attributions) {
    const int64_t T = static_cast<int64_t>(a.scores.size()) / a.outputs;
    // Attribution is linear in what it explains: a word's log-probability is the sum of its
    // pieces', so output rows add up too.
    Tensor m = Tensor::from_vector(a.scores, Shape{a.outputs, T});
    m = regroup(m, nullptr, &source);
    if (a.outputs > 1 && seq2seq) {
      const WordAxis& o = outputs;
      check(o, a.outputs, "output");
      std::vector<float> rows(size_t(count(o) * m.size(1)), 0.0f);
      for (int64_t k = 0; k < a.outputs; ++k)
        for (int64_t j = 0; j < m.size(1); ++j)
          rows[size_t(o.group[size_t(k)] * m.size(1) + j)] += m.data<float>()[k * m.size(1) + j];
      a.scores = rows;
      a.outputs = count(o);
    } else {
      a.scores = m.to_vector<float>();
    }
    for (Tensor& w : a.per_head) w = regroup(w, &source, &source);
  }
  std::vector<bool> framing(source.words.size(), true);
  for (size_t t = 0; t < source.group.size(); ++t)
    framing[size_t(source.group[t])] =
        framing[size_t(source.group[t])] && t < e.framing.size() && e.framing[t];
  e.framing = framing;
  e.tokens = source.words;
  if (seq2seq) e.target_tokens = decoder_inputs.words, e.output_tokens = outputs.words;
  e.token_ids.clear(), e.target_token_ids.clear();
  if (!e.importance.empty()) e.importance_rule += ", summed per word";
  e.word_rule = kWordRule;
}

}  // namespace gaze::explain
