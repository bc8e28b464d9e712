// Incremental decoding with a TransformerDecoder: one target position at a time, each layer
// keeping the keys and values of past positions in a KVCache and the source's keys and values
// projected once, so a step costs O(t) instead of recomputing the whole prefix.
#pragma once

#include <vector>

#include "gaze/nn/kv_cache.h"
#include "gaze/nn/transformer.h"

namespace gaze::nn {

class IncrementalDecoder {
 public:
  // memory [N, S, E] (batch-first) with source lengths [N] (int64), read by N * rows_per_memory
  // decoder rows: row b reads memory b / rows_per_memory. The beams of a sentence share its
  // memory, so its keys and values are projected, kept and read once, not once per beam.
  IncrementalDecoder(const TransformerDecoder& decoder, const Tensor& memory,
                     const Tensor& memory_lengths, int64_t rows_per_memory = 1);
  // x: the embedded next position [B, 1, E]; returns the decoder output for it [B, 1, E] (after
  // the final norm). capture (optional) receives the cross-attention [B, H', 1, S] of the layers
  // and heads it chooses (undefined for the others); the cached self-attention is not captured.
  Tensor step(const Tensor& x, AttentionCapture* capture = nullptr);
  // Keeps batch rows in the given order (new row b = old row rows[b]), as for beam search.
  // same_memory: new row b and old row rows[b] decode the same source (beams of one source
  // reordered among themselves), so the source's keys and values stay where they are. Fewer rows
  // than the batch shrink it (the rows of finished sources dropped); the rows then keep their
  // groups: each run of rows_per_memory new rows comes from one memory.
  void reorder(const std::vector<int64_t>& rows, bool same_memory = false);
  int64_t length() const { return caches_.empty() ? 0 : caches_[0].length(); }
  // Whether the self-attention caches keep bf16 (a bf16 or int8 decoder with even head dims).
  bool bf16_caches() const { return !caches_.empty() && caches_[0].bf16(); }

 private:
  // Layer l's source keys and values for the memories now in the batch, and the kv_rows table that
  // reads them in place when the kernel can follow one.
  struct Source {
    Tensor k, v, rows;
  };
  Source source(size_t l, bool need_weights);

  const TransformerDecoder& decoder_;
  int64_t B_, H_, D_, k_;  // k_: decoder rows per memory
  Tensor memory_lengths_;  // per memory now in the batch
  std::vector<KVCache> caches_;
  // Per layer [N, S, H, D], projected once for the N memories the decoder started with. Finished
  // sources leave them in place: memory_of_[g] says which of them the g-th memory of the batch is.
  std::vector<Tensor> cross_k_, cross_v_;
  std::vector<int64_t> memory_of_;
  bool memories_moved_ = false;
  Tensor cross_rows_;                            // [S, B / k_]: kv_rows for memory_of_
  std::vector<Tensor> gathered_k_, gathered_v_;  // copies for calls that cannot follow kv_rows
};

// Rows of x (dim 0) in the given order, as a new contiguous tensor.
Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows);

}  // namespace gaze::nn
