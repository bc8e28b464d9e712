#include "gaze/models/seq2seq.h"

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"

namespace gaze::models {

std::unique_ptr<StepDecoder> Seq2SeqModel::start_decoding(const Tensor& src,
                                                          const Tensor& src_lengths,
                                                          const StepOptions& o) const {
  NoGradGuard no_grad;
  GAZE_CHECK(o.rows_per_source >= 1, ValueError, "rows_per_source must be at least 1, got {}",
             o.rows_per_source);
  return make_decoder(src, src_lengths, o);
}

std::vector<int64_t> expand_rows(int64_t B, int64_t k) {
  std::vector<int64_t> rows;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < k; ++j) rows.push_back(b);
  return rows;
}

}  // namespace gaze::models
