#include "gaze/kernels/crf.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "gaze/core/threads.h"
#include "gaze/kernels/scratch.h"

namespace gaze::kernels {
namespace {

// One sequence per task, each thread a run of them (what a static schedule gives). Buffers are made
// per thread before the region opens: an allocation failing inside one would end the process.
template <typename T>
struct CrfBuffers {
  CrfBuffers(size_t steps_by_tags, size_t tags, bool with_beta)
      : alpha(steps_by_tags), beta(with_beta ? steps_by_tags : 0), scratch(tags) {}
  Scratch<T> alpha, beta, scratch;
};

// log sum_i exp(x[i]) over n values read with stride, stable for -inf entries.
template <typename T>
T log_sum_exp(const T* x, int64_t n, int64_t stride = 1) {
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i * stride]);
  if (!std::isfinite(m)) return m;
  T s = 0;
  for (int64_t i = 0; i < n; ++i) s += std::exp(x[i * stride] - m);
  return m + std::log(s);
}

// alpha [L, K]: alpha[0] = start + e[0]; alpha[t][j] = e[t][j] + lse_i(alpha[t-1][i] +
// trans[i][j]).
template <typename T>
void forward_scores(const T* e, int64_t L, int64_t K, const T* start, const T* trans, T* alpha,
                    T* scratch) {
  for (int64_t j = 0; j < K; ++j) alpha[j] = start[j] + e[j];
  for (int64_t t = 1; t < L; ++t)
    for (int64_t j = 0; j < K; ++j) {
      for (int64_t i = 0; i < K; ++i) scratch[i] = alpha[(t - 1) * K + i] + trans[i * K + j];
      alpha[t * K + j] = e[t * K + j] + log_sum_exp(scratch, K);
    }
}

// beta [L, K]: beta[L-1] = end; beta[t][i] = lse_j(trans[i][j] + e[t+1][j] + beta[t+1][j]).
template <typename T>
void backward_scores(const T* e, int64_t L, int64_t K, const T* end, const T* trans, T* beta,
                     T* scratch) {
  for (int64_t i = 0; i < K; ++i) beta[(L - 1) * K + i] = end[i];
  for (int64_t t = L - 2; t >= 0; --t)
    for (int64_t i = 0; i < K; ++i) {
      for (int64_t j = 0; j < K; ++j)
        scratch[j] = trans[i * K + j] + e[(t + 1) * K + j] + beta[(t + 1) * K + j];
      beta[t * K + i] = log_sum_exp(scratch, K);
    }
}

template <typename T>
T log_partition(const T* alpha, int64_t L, int64_t K, const T* end, T* scratch) {
  for (int64_t j = 0; j < K; ++j) scratch[j] = alpha[(L - 1) * K + j] + end[j];
  return log_sum_exp(scratch, K);
}

template <typename T>
T gold_score(const T* e, const int64_t* y, int64_t L, int64_t K, const T* start, const T* end,
             const T* trans) {
  T s = start[y[0]] + e[y[0]];
  for (int64_t t = 1; t < L; ++t) s += trans[y[t - 1] * K + y[t]] + e[t * K + y[t]];
  return s + end[y[L - 1]];
}

}  // namespace

template <typename T>
void crf_nll(const T* emissions, const int64_t* tags, const int64_t* lengths, const T* start,
             const T* end, const T* transitions, CrfShape s, T* nll) {
  const int64_t K = s.tags;
  const int team = team_for(s.batch);
  PerThread<CrfBuffers<T>> buffers(team, static_cast<size_t>(s.steps * K), static_cast<size_t>(K),
                                   false);
  for_team(team, s.batch, (s.batch + team - 1) / team, [&](int t, int64_t b) {
    CrfBuffers<T>& w = buffers[t];
    const T* e = emissions + b * s.steps * K;
    const int64_t L = lengths[b];
    forward_scores(e, L, K, start, transitions, w.alpha.data(), w.scratch.data());
    nll[b] = log_partition(w.alpha.data(), L, K, end, w.scratch.data()) -
             gold_score(e, tags + b * s.steps, L, K, start, end, transitions);
  });
}

template <typename T>
void crf_nll_backward(const T* emissions, const int64_t* tags, const int64_t* lengths,
                      const T* start, const T* end, const T* transitions, CrfShape s, const T* g,
                      T* d_emissions, T* d_start, T* d_end, T* d_transitions) {
  const int64_t K = s.tags;
  // Per-sequence gradients of the shared parameters, summed in sequence order afterwards so the
  // result does not depend on the thread count.
  std::vector<T> shared(static_cast<size_t>(s.batch * (2 * K + K * K)), T(0));
  const int team = team_for(s.batch);
  PerThread<CrfBuffers<T>> buffers(team, static_cast<size_t>(s.steps * K), static_cast<size_t>(K),
                                   true);
  for_team(team, s.batch, (s.batch + team - 1) / team, [&](int t, int64_t b) {
    T* const alpha = buffers[t].alpha.data();
    T* const beta = buffers[t].beta.data();
    T* const scratch = buffers[t].scratch.data();
    const T* e = emissions + b * s.steps * K;
    const int64_t* y = tags + b * s.steps;
    const int64_t L = lengths[b];
    const T gb = g[b];
    forward_scores(e, L, K, start, transitions, alpha, scratch);
    backward_scores(e, L, K, end, transitions, beta, scratch);
    const T logz = log_partition(alpha, L, K, end, scratch);
    T* ds = shared.data() + b * (2 * K + K * K);
    T *dstart = ds, *dend = ds + K, *dtrans = ds + 2 * K;
    for (int64_t t = 0; t < L; ++t)
      for (int64_t j = 0; j < K; ++j) {
        const T p = std::exp(alpha[t * K + j] + beta[t * K + j] - logz);  // P(y_t = j)
        if (d_emissions) d_emissions[(b * s.steps + t) * K + j] += gb * p;
        if (t == 0) dstart[j] += gb * p;
        if (t == L - 1) dend[j] += gb * p;
      }
    for (int64_t t = 1; t < L; ++t)
      for (int64_t i = 0; i < K; ++i)
        for (int64_t j = 0; j < K; ++j)  // P(y_{t-1} = i, y_t = j)
          dtrans[i * K + j] += gb * std::exp(alpha[(t - 1) * K + i] + transitions[i * K + j] +
                                             e[t * K + j] + beta[t * K + j] - logz);
    // Minus the gold path's indicators.
    for (int64_t t = 0; t < L; ++t) {
      if (d_emissions) d_emissions[(b * s.steps + t) * K + y[t]] -= gb;
      if (t > 0) dtrans[y[t - 1] * K + y[t]] -= gb;
    }
    dstart[y[0]] -= gb;
    dend[y[L - 1]] -= gb;
  });
  for (int64_t b = 0; b < s.batch; ++b) {
    const T* ds = shared.data() + b * (2 * K + K * K);
    for (int64_t j = 0; j < K; ++j) {
      if (d_start) d_start[j] += ds[j];
      if (d_end) d_end[j] += ds[K + j];
    }
    if (d_transitions)
      for (int64_t i = 0; i < K * K; ++i) d_transitions[i] += ds[2 * K + i];
  }
}

template <typename T>
void crf_viterbi(const T* emissions, const int64_t* lengths, const T* start, const T* end,
                 const T* transitions, CrfShape s, int64_t* best, T* score) {
  const int64_t K = s.tags;
  struct Buffers {
    explicit Buffers(size_t n) : delta(n), back(n) {}
    Scratch<T> delta;
    Scratch<int64_t> back;
  };
  const int team = team_for(s.batch);
  PerThread<Buffers> buffers(team, static_cast<size_t>(s.steps * K));
  for_team(team, s.batch, (s.batch + team - 1) / team, [&](int th, int64_t b) {
    T* const delta = buffers[th].delta.data();
    int64_t* const back = buffers[th].back.data();
    const T* e = emissions + b * s.steps * K;
    const int64_t L = lengths[b];
    for (int64_t j = 0; j < K; ++j) delta[j] = start[j] + e[j];
    for (int64_t t = 1; t < L; ++t)
      for (int64_t j = 0; j < K; ++j) {
        int64_t arg = 0;
        T top = delta[(t - 1) * K] + transitions[j];
        for (int64_t i = 1; i < K; ++i) {
          const T v = delta[(t - 1) * K + i] + transitions[i * K + j];
          if (v > top) top = v, arg = i;
        }
        delta[t * K + j] = top + e[t * K + j];
        back[t * K + j] = arg;
      }
    int64_t last = 0;
    T top = delta[(L - 1) * K] + end[0];
    for (int64_t j = 1; j < K; ++j)
      if (delta[(L - 1) * K + j] + end[j] > top) top = delta[(L - 1) * K + j] + end[j], last = j;
    int64_t* out = best + b * s.steps;
    std::fill(out, out + s.steps, int64_t{-1});
    out[L - 1] = last;
    for (int64_t t = L - 1; t > 0; --t) out[t - 1] = back[t * K + out[t]];
    score[b] = top;
  });
}

#define GAZE_CRF_INSTANTIATE(T)                                                                    \
  template void crf_nll<T>(const T*, const int64_t*, const int64_t*, const T*, const T*, const T*, \
                           CrfShape, T*);                                                          \
  template void crf_nll_backward<T>(const T*, const int64_t*, const int64_t*, const T*, const T*,  \
                                    const T*, CrfShape, const T*, T*, T*, T*, T*);                 \
  template void crf_viterbi<T>(const T*, const int64_t*, const T*, const T*, const T*, CrfShape,   \
                               int64_t*, T*);
GAZE_CRF_INSTANTIATE(float)
GAZE_CRF_INSTANTIATE(double)
#undef GAZE_CRF_INSTANTIATE

}  // namespace gaze::kernels
