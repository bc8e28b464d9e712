#include "gaze/nn/precision.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_set>
#include <vector>

#include "gaze/core/threads.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/ops/lowp.h"

namespace gaze::nn {

Precision usable_precision(Precision want, std::string* notice) {
  std::string why;
  if (kernels::precision_supported(want, &why)) return want;
  if (notice)
    *notice = fmt::format("note: precision {} needs hardware support: {}; running fp32 instead",
                          enum_name(want), why);
  return Precision::fp32;
}

void set_precision(Module& m, Precision p) {
  // Each weight once (a tied weight is listed under each of its names), the largest first. A
  // weight that is a view into a larger tensor cannot carry its own packing: it stays float32.
  std::vector<Tensor> weights;
  std::unordered_set<const Storage*> seen;
  for (const auto& [name, w] : m.named_matmul_weights())
    if (is_whole_matrix(w) && seen.insert(w.storage().get()).second) weights.push_back(w);
  std::stable_sort(weights.begin(), weights.end(),
                   [](const Tensor& a, const Tensor& b) { return a.numel() > b.numel(); });
  // A weight larger than a thread's share of them all (a large vocabulary's projection) is
  // converted on the whole pool, its rows split between the threads; the rest side by side, one
  // thread each: they are too small for their rows to be split, and converting them one after the
  // other was a fifth of loading an int8 translator (`gaze translate --precision int8` with no
  // input: 83 ms, against 62 in fp32). After a failure, some weights may be converted and others
  // not, as before.
  int64_t total = 0;
  for (const Tensor& w : weights) total += w.numel();
  size_t big = 0;
  while (big < weights.size() && weights[big].numel() * num_threads() > total)
    set_weight_precision(weights[big++], p);
  parallel_tasks(std::ssize(weights) - static_cast<int64_t>(big), [&](int64_t i) {
    set_weight_precision(weights[big + static_cast<size_t>(i)], p);
  });
}

Precision precision_of(const Module& m) {
  for (const auto& [name, w] : m.named_matmul_weights())
    if (const auto q = weight_lowp(w)) return q->precision;
  return Precision::fp32;
}

}  // namespace gaze::nn
