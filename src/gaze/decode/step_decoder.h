// A trained encoder-decoder seen one target step at a time, the only view the search algorithms
// need: log-probabilities of the next token for every row, and reordering of rows. Rows come in
// groups of `rows_per_source` decoding the same source (the beams of one sentence).
#pragma once

#include <memory>
#include <vector>

#include "gaze/core/tensor.h"
#include "gaze/models/model.h"

namespace gaze::decode {

class StepDecoder {
 public:
  virtual ~StepDecoder() = default;
  // Feeds each row its previous token (int64, one per row) and returns the log-probabilities of
  // the next token, [R, V] float32.
  virtual Tensor step(const std::vector<int64_t>& previous) = 0;
  // Keeps rows in the given order (new row r = old row rows[r]); rows stay within their source.
  virtual void reorder(const std::vector<int64_t>& rows) = 0;
  // The last step's attention over the source, [R, S] (empty when not asked for).
  virtual Tensor alignment() const = 0;
  virtual int64_t rows() const = 0;
};

struct StepOptions {
  int64_t rows_per_source = 1;
  bool use_cache = true;         // Transformer: KV cache (false: recompute every prefix; for tests)
  bool alignment = false;        // keep the attention over the source of every step
  int64_t alignment_layer = -1;  // Transformer: the decoder layer whose cross-attention (averaged
                                 // over heads) is the alignment; negative counts from the end
};

// Encodes src [B, S] (lengths [B]) with a TransformerSeq2Seq or an RnnSeq2Seq (in eval mode) and
// returns a decoder over B * rows_per_source rows.
std::unique_ptr<StepDecoder> start_decoding(const models::Model& model, const Tensor& src,
                                            const Tensor& src_lengths, const StepOptions& options);

}  // namespace gaze::decode
