#include "gaze/nn/kv_cache.h"

#include <cstring>
#include <vector>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

KVCache::KVCache(int64_t batch, int64_t heads, int64_t head_dim, int64_t value_dim,
                 int64_t capacity, DType dtype)
    : B_(batch), H_(heads), D_(head_dim), Dv_(value_dim < 0 ? head_dim : value_dim), dtype_(dtype) {
  GAZE_CHECK(batch > 0 && heads > 0 && head_dim > 0 && Dv_ > 0, ValueError,
             "KVCache: batch, heads and dims must be positive, got {}, {}, {}, {}", batch, heads,
             head_dim, Dv_);
  reserve(std::max<int64_t>(1, capacity));
}

void KVCache::reserve(int64_t positions) {
  if (positions <= capacity_) return;
  int64_t cap = std::max<int64_t>(capacity_, 1);
  while (cap < positions) cap *= 2;
  Tensor k = Tensor::empty(Shape{cap, B_, H_, D_}, dtype_),
         v = Tensor::empty(Shape{cap, B_, H_, Dv_}, dtype_);
  if (length_ > 0) {  // the prefix is contiguous in both layouts
    std::memcpy(k.raw_data(), k_.raw_data(),
                static_cast<size_t>(length_ * B_ * H_ * D_) * dtype_size(dtype_));
    std::memcpy(v.raw_data(), v_.raw_data(),
                static_cast<size_t>(length_ * B_ * H_ * Dv_) * dtype_size(dtype_));
  }
  k_ = k, v_ = v, capacity_ = cap;
}

namespace {
// The new positions as [t, B, H, D] (the cache's own layout).
Tensor as_tbhd(const Tensor& x, HeadsLayout layout) {
  switch (layout) {
    case HeadsLayout::tbhd:
      return x;
    case HeadsLayout::bhtd:
      return permute(x, {2, 0, 1, 3});
    case HeadsLayout::bthd:
      return permute(x, {1, 0, 2, 3});
  }
  return x;
}
}  // namespace

void KVCache::append(const Tensor& key, const Tensor& value, HeadsLayout layout) {
  NoGradGuard no_grad;
  GAZE_CHECK(key.defined() && value.defined() && key.dim() == 4 && value.dim() == 4, ValueError,
             "KVCache.append: key and value must be 4-D");
  const Tensor k = as_tbhd(key, layout), v = as_tbhd(value, layout);
  const int64_t t = k.size(0);
  GAZE_CHECK(k.shape() == (Shape{t, B_, H_, D_}) && v.shape() == (Shape{t, B_, H_, Dv_}) &&
                 k.dtype() == dtype_ && v.dtype() == dtype_,
             ValueError,
             "KVCache.append: expected {} key/value of [B={}, Hkv={}, t, D={}/{}] ({} layout), got "
             "{} and {}",
             dtype_name(dtype_), B_, H_, D_, Dv_, static_cast<int>(layout), key.shape_str(),
             value.shape_str());
  reserve(length_ + t);
  const size_t es = dtype_size(dtype_);
  std::memcpy(static_cast<char*>(k_.raw_data()) + length_ * B_ * H_ * D_ * es, k.raw_data(),
              k.nbytes());
  std::memcpy(static_cast<char*>(v_.raw_data()) + length_ * B_ * H_ * Dv_ * es, v.raw_data(),
              v.nbytes());
  length_ += t;
}

Tensor KVCache::keys() const {
  return k_.alias(Shape{length_, B_, H_, D_});
}
Tensor KVCache::values() const {
  return v_.alias(Shape{length_, B_, H_, Dv_});
}

Tensor KVCache::attend(const Tensor& query, HeadsLayout layout, SdpaOptions o) const {
  NoGradGuard no_grad;
  GAZE_CHECK(length_ > 0, StateError,
             "KVCache.attend: the cache is empty; append keys and values first");
  o.layout = layout;
  o.kv_layout = HeadsLayout::tbhd;
  o.is_causal = true;
  o.causal_alignment = CausalAlignment::bottom_right;
  return scaled_dot_product_attention(query, keys(), values(), o).output;
}

void KVCache::reorder(const std::vector<int64_t>& idx) {
  GAZE_CHECK(!idx.empty() && static_cast<int64_t>(idx.size()) <= B_, ValueError,
             "KVCache.reorder: expected 1 to {} indices, got {}", B_, idx.size());
  for (int64_t i : idx)
    GAZE_CHECK(i >= 0 && i < B_, IndexError, "KVCache.reorder: index {} out of range [0, {})", i,
               B_);
  const auto B = static_cast<int64_t>(idx.size());
  // In place, one position at a time: its source rows are gathered before any is overwritten, and
  // position p's new rows [p B, p B + B) lie below the next position's old ones (B <= B_), so no
  // position is overwritten before it is read. The same batch size copies only the rows that move
  // (a beam that continues itself stays where it is); no cache-sized buffer is allocated.
  std::vector<int64_t> moved;
  for (int64_t b = 0; b < B; ++b)
    if (B < B_ || idx[static_cast<size_t>(b)] != b) moved.push_back(b);
  if (moved.empty()) return;
  const size_t es = dtype_size(dtype_);
  for (Tensor* t : {&k_, &v_}) {
    const size_t row =
        static_cast<size_t>(t->size(2) * t->size(3)) * es;  // one batch entry of one position
    std::vector<char> tmp(moved.size() * row);
    char* base = static_cast<char*>(t->raw_data());
    for (int64_t p = 0; p < length_; ++p) {
      for (size_t m = 0; m < moved.size(); ++m)
        std::memcpy(tmp.data() + m * row,
                    base + static_cast<size_t>(p * B_ + idx[static_cast<size_t>(moved[m])]) * row,
                    row);
      for (size_t m = 0; m < moved.size(); ++m)
        std::memcpy(base + static_cast<size_t>(p * B + moved[m]) * row, tmp.data() + m * row, row);
    }
    t->storage()->bump_version();  // views taken before (keys(), values()) are stale now
  }
  B_ = B;
}

}  // namespace gaze::nn
