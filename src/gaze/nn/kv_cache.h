// KVCache: keys and values of past positions for incremental decoding. Appending a step and
// attending to the cache gives what full causal attention gives for that step.
#pragma once

#include <vector>

#include "gaze/ops/attention.h"

namespace gaze::nn {

class KVCache {
 public:
  // Room for `capacity` positions to start with; it doubles as needed. bf16 (float32 dtype, even
  // head dims): keys and values are kept as bfloat16, rounded to nearest even when appended, which
  // halves the cache and what each decoding step reads of it; attention still computes in float32
  // (SdpaOptions::kv_bf16). What bf16 and int8 models decode with.
  KVCache(int64_t batch, int64_t num_kv_heads, int64_t head_dim, int64_t value_dim = -1,
          int64_t capacity = 64, DType dtype = DType::f32, bool bf16 = false);

  // Appends t new positions: key [B, Hkv, t, D] and value [B, Hkv, t, Dv] (or the given layout).
  void append(const Tensor& key, const Tensor& value, HeadsLayout layout = HeadsLayout::bhtd);
  // Attention of query [B, H, t, D] (the last t positions; H a multiple of Hkv) over every cached
  // position, causal with the queries aligned to the end. Inference only: no gradient.
  Tensor attend(const Tensor& query, HeadsLayout layout = HeadsLayout::bhtd,
                SdpaOptions options = {}) const;

  int64_t length() const { return length_; }
  bool bf16() const { return bf16_; }
  int64_t capacity() const { return capacity_; }
  void clear() {
    length_ = 0;
    in_place_ = B_ == rows_;
  }
  // Keeps batch rows in the given order (beam search): new row b is old row indices[b]. Fewer
  // indices than rows shrink the batch (rows of finished sources dropped). Nothing is copied: a
  // table records, per position, which stored row holds each batch row, and attend() reads rows
  // through it (SdpaOptions::kv_rows) — a beam step would otherwise copy the whole cache.
  void reorder(const std::vector<int64_t>& indices);

  // The cached keys and values, [length, B, Hkv, D]: views of the cache while no reorder moved a
  // row and the cache is not bf16, copies (widened to float32) otherwise.
  Tensor keys() const;
  Tensor values() const;

 private:
  void reserve(int64_t positions);
  Tensor gathered(const Tensor& store, int64_t width) const;
  int64_t stored(int64_t width) const { return bf16_ ? width / 2 : width; }  // elements per vector

  int64_t B_, rows_, H_, D_, Dv_, length_ = 0, capacity_ = 0;  // rows_: the batch made for
  DType dtype_;
  Tensor k_, v_;  // [capacity, rows_, Hkv, D (D/2 if bf16_)]: one block of rows_ rows per position
  std::vector<int64_t> slots_;  // [capacity, rows_]: the stored row of (position, batch row)
  bool in_place_ = true;        // every batch row b still stored at row b of a full block
  bool bf16_ = false;           // k_ and v_ hold two bf16 values per float32 element
};

}  // namespace gaze::nn
