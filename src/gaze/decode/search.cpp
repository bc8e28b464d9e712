#include "gaze/decode/search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "gaze/core/error.h"
#include "gaze/kernels/reduce.h"

namespace gaze::decode {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

double normalized(double log_prob, int64_t length, double penalty) {
  return log_prob / std::pow(static_cast<double>(std::max<int64_t>(length, 1)), penalty);
}

std::vector<float> row_of(const Tensor& a, int64_t r) {
  const int64_t S = a.size(1);
  const float* p = a.data<float>() + r * S;
  return {p, p + S};
}

}  // namespace

void widen_beam(SearchOptions& o) {
  o.beam_size = std::max(o.beam_size, o.nbest);
}

int64_t max_target_length(int64_t source_length, const SearchOptions& o) {
  const int64_t by_ratio = std::max<int64_t>(
      1, static_cast<int64_t>(std::floor(o.max_length_ratio * static_cast<double>(source_length))) +
             o.max_length_offset);
  return o.max_length > 0 ? std::min(by_ratio, o.max_length) : by_ratio;
}

std::vector<Hypothesis> greedy_search(StepDecoder& dec, const std::vector<int64_t>& src_lengths,
                                      int64_t bos, int64_t eos, const SearchOptions& o,
                                      bool alignment) {
  const auto R = static_cast<int64_t>(src_lengths.size());
  GAZE_CHECK(dec.rows() == R, ValueError, "greedy_search: {} rows for {} sources", dec.rows(), R);
  std::vector<Hypothesis> out(static_cast<size_t>(R));
  std::vector<int64_t> limit, previous(static_cast<size_t>(R), bos);
  int64_t longest = 0;
  for (const int64_t l : src_lengths) {
    limit.push_back(max_target_length(l, o));
    longest = std::max(longest, limit.back());
  }
  // Decoder row r holds source active[r]; a source that is done leaves the decoder.
  std::vector<int64_t> active(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) active[static_cast<size_t>(r)] = r;
  for (int64_t t = 0; t < longest && !active.empty(); ++t) {
    const Tensor logp = dec.step(previous);
    const int64_t V = logp.size(1);
    const Tensor a = alignment ? dec.alignment() : Tensor();
    std::vector<int64_t> keep_rows, still, next_previous;
    for (size_t r = 0; r < active.size(); ++r) {
      const int64_t n = active[r];
      auto& h = out[static_cast<size_t>(n)];
      const float* p = logp.data<float>() + static_cast<int64_t>(r) * V;
      const int64_t best = std::max_element(p, p + V) - p;  // the first of equal maxima
      h.log_prob += p[best];
      if (alignment) h.alignment.push_back(row_of(a, static_cast<int64_t>(r)));
      if (best == eos) {
        h.finished = true;
      } else {
        h.tokens.push_back(best);
      }
      const auto length = static_cast<int64_t>(h.tokens.size()) + (h.finished ? 1 : 0);
      h.score = normalized(h.log_prob, length, o.length_penalty);
      if (h.finished || length >= limit[static_cast<size_t>(n)]) continue;
      keep_rows.push_back(static_cast<int64_t>(r));
      still.push_back(n);
      next_previous.push_back(best);
    }
    if (!still.empty() && still.size() < active.size()) dec.keep(keep_rows);
    active = std::move(still);
    previous = std::move(next_previous);
  }
  return out;
}

std::vector<std::vector<Hypothesis>> beam_search(StepDecoder& dec,
                                                 const std::vector<int64_t>& src_lengths,
                                                 int64_t bos, int64_t eos, const SearchOptions& o,
                                                 bool alignment) {
  const int64_t K = o.beam_size;
  const auto N = static_cast<int64_t>(src_lengths.size());
  GAZE_CHECK(K >= 1, ValueError, "beam_search: beam_size must be at least 1, got {}", K);
  GAZE_CHECK(dec.rows() == N * K, ValueError,
             "beam_search: the decoder has {} rows; expected {} sources x beam {}", dec.rows(), N,
             K);
  const int64_t R = N * K;
  // Live beams, one per row: their tokens, summed log-probability (-inf: unused) and alignment.
  std::vector<Hypothesis> live(static_cast<size_t>(R));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 1; j < K; ++j) live[static_cast<size_t>(n * K + j)].log_prob = kNegInf;
  std::vector<std::vector<Hypothesis>> finished(static_cast<size_t>(N));
  std::vector<int64_t> limit, previous(static_cast<size_t>(R), bos);
  int64_t longest = 0;
  for (const int64_t l : src_lengths) {
    limit.push_back(max_target_length(l, o));
    longest = std::max(longest, limit.back());
  }
  auto add_finished = [&](int64_t n, Hypothesis h) {
    auto& f = finished[static_cast<size_t>(n)];
    f.push_back(std::move(h));
    std::stable_sort(f.begin(), f.end(),
                     [](const Hypothesis& a, const Hypothesis& b) { return a.score > b.score; });
    if (static_cast<int64_t>(f.size()) > K) f.pop_back();
  };
  // Decoder rows a*K .. a*K+K-1 hold the beams of source active[a]; a source that is done leaves
  // the decoder, so the rows still decoding are all that a step costs.
  std::vector<int64_t> active(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) active[static_cast<size_t>(n)] = n;
  for (int64_t t = 0; t < longest && !active.empty(); ++t) {
    const Tensor logp = dec.step(previous);
    const int64_t V = logp.size(1);
    const Tensor a = alignment ? dec.alignment() : Tensor();
    const auto A = static_cast<int64_t>(active.size());
    std::vector<int64_t> order(static_cast<size_t>(A * K));
    std::vector<Hypothesis> next(static_cast<size_t>(A * K));
    std::vector<int64_t> still;  // block positions of the sources that go on
    for (int64_t pos = 0; pos < A; ++pos) {
      const int64_t n = active[static_cast<size_t>(pos)];
      const int64_t base = pos * K;
      // The 2K best (beam, token) continuations, ties to the lower beam and token.
      struct Cand {
        double lp;
        int64_t beam, token;
      };
      auto better = [](const Cand& x, const Cand& y) {
        if (x.lp != y.lp) return x.lp > y.lp;
        return x.beam != y.beam ? x.beam < y.beam : x.token < y.token;
      };
      // The 2K best of all K x V continuations are among the 2K best of each beam: each beam's are
      // kept in a small sorted list as its row streams past (most tokens fail the first test).
      const auto keep = static_cast<size_t>(2 * K);
      std::vector<Cand> cands;
      cands.reserve(static_cast<size_t>(K) * keep);
      for (int64_t j = 0; j < K; ++j) {
        const double base_lp = live[static_cast<size_t>(base + j)].log_prob;
        if (base_lp == kNegInf) continue;
        const float* p = logp.data<float>() + (base + j) * V;
        const size_t first = cands.size();
        // Below `cut` a token cannot beat the list's last entry (a float a little under the
        // log-probability it needs: rounding never rejects one that could enter); the SIMD scan
        // skips to the next token at or above it, which the exact test then decides.
        float cut = -std::numeric_limits<float>::infinity();
        for (int64_t v = 0; v < V; ++v) {
          if (cands.size() - first == keep) {
            v += kernels::first_at_least(p + v, V - v, cut);
            if (v == V) break;
          }
          const Cand c{base_lp + p[v], j, v};
          const size_t n = cands.size() - first;
          if (n == keep && !better(c, cands.back())) continue;
          if (n == keep) cands.pop_back();
          cands.insert(std::upper_bound(cands.begin() + static_cast<std::ptrdiff_t>(first),
                                        cands.end(), c, better),
                       c);
          if (cands.size() - first == keep) {
            const float need = static_cast<float>(cands.back().lp - base_lp);
            cut = std::nextafter(need, -std::numeric_limits<float>::infinity());
          }
        }
      }
      const auto top = std::min<size_t>(cands.size(), keep);
      std::partial_sort(cands.begin(), cands.begin() + static_cast<std::ptrdiff_t>(top),
                        cands.end(), better);
      int64_t filled = 0;
      const int64_t step_length = t + 1;
      const bool at_limit = step_length >= limit[static_cast<size_t>(n)];
      for (size_t rank = 0; rank < top && filled < K; ++rank) {
        const Cand& c = cands[rank];
        const auto& parent = live[static_cast<size_t>(base + c.beam)];
        Hypothesis h;
        h.tokens = parent.tokens;
        h.log_prob = c.lp;
        if (alignment) {
          h.alignment = parent.alignment;
          h.alignment.push_back(row_of(a, base + c.beam));
        }
        if (c.token == eos) {
          // As Hugging Face: an EOS counts only among the K best candidates.
          if (static_cast<int64_t>(rank) >= K) continue;
          h.finished = true;
          h.score = normalized(h.log_prob, step_length, o.length_penalty);
          add_finished(n, std::move(h));
          continue;
        }
        h.tokens.push_back(c.token);
        h.score = normalized(h.log_prob, step_length, o.length_penalty);
        order[static_cast<size_t>(base + filled)] = base + c.beam;
        next[static_cast<size_t>(base + filled)] = std::move(h);
        ++filled;
      }
      for (int64_t j = filled; j < K; ++j) {  // fewer candidates than beams (tiny vocabularies)
        order[static_cast<size_t>(base + j)] = base;
        next[static_cast<size_t>(base + j)].log_prob = kNegInf;
      }
      // Done when the best live beam, scored now, cannot beat the worst of K finished ones, or at
      // the length limit (the live beams are then finished as they are).
      auto& f = finished[static_cast<size_t>(n)];
      const double best_live = filled > 0 ? next[static_cast<size_t>(base)].score : kNegInf;
      if (at_limit) {
        for (int64_t j = 0; j < filled; ++j) add_finished(n, next[static_cast<size_t>(base + j)]);
      } else if (filled > 0 && (static_cast<int64_t>(f.size()) < K || best_live > f.back().score)) {
        still.push_back(pos);
      }
    }
    if (still.empty()) break;
    // The beams of the sources that go on, in their new order; the rows of the others are dropped.
    std::vector<int64_t> rows;
    std::vector<Hypothesis> kept;
    std::vector<int64_t> kept_sources;
    for (const int64_t pos : still) {
      kept_sources.push_back(active[static_cast<size_t>(pos)]);
      for (int64_t j = 0; j < K; ++j) {
        rows.push_back(order[static_cast<size_t>(pos * K + j)]);
        kept.push_back(std::move(next[static_cast<size_t>(pos * K + j)]));
      }
    }
    live = std::move(kept);
    previous.assign(live.size(), bos);
    for (size_t r = 0; r < live.size(); ++r)
      if (!live[r].tokens.empty()) previous[r] = live[r].tokens.back();
    if (std::ssize(still) == A)
      dec.reorder(rows);
    else
      dec.keep(rows);
    active = std::move(kept_sources);
  }
  std::vector<std::vector<Hypothesis>> out(static_cast<size_t>(N));
  const auto keep = static_cast<size_t>(std::clamp<int64_t>(o.nbest, 1, K));
  for (int64_t n = 0; n < N; ++n) {
    auto& f = finished[static_cast<size_t>(n)];
    if (f.size() > keep) f.resize(keep);
    out[static_cast<size_t>(n)] = std::move(f);
  }
  return out;
}

}  // namespace gaze::decode
