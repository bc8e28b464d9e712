#include "gaze/nn/precision.h"

#include <fmt/format.h>

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
  for (const auto& [name, w] : m.named_matmul_weights())
    // A weight that is a view into a larger tensor cannot carry its own packing: it stays float32.
    if (is_whole_matrix(w)) set_weight_precision(w, p);
}

Precision precision_of(const Module& m) {
  for (const auto& [name, w] : m.named_matmul_weights())
    if (const auto q = weight_lowp(w)) return q->precision;
  return Precision::fp32;
}

}  // namespace gaze::nn
