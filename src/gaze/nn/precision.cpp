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
  // Side by side on the pool's threads: most weights are too small for their own rows to be split
  // between threads, and converting them one after the other was a fifth of loading an int8
  // translator (`gaze translate --precision int8` with no input: 83 ms, against 62 in fp32).
  parallel_tasks(std::ssize(weights),
                 [&](int64_t i) { set_weight_precision(weights[static_cast<size_t>(i)], p); });
}

Precision precision_of(const Module& m) {
  for (const auto& [name, w] : m.named_matmul_weights())
    if (const auto q = weight_lowp(w)) return q->precision;
  return Precision::fp32;
}

}  // namespace gaze::nn
