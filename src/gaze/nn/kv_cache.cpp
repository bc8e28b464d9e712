#include "gaze/nn/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <tuple>
#include <vector>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/kernels/lowp_gemm.h"
#include "gaze/ops/shape_ops.h"

namespace gaze::nn {

KVCache::KVCache(int64_t batch, int64_t heads, int64_t head_dim, int64_t value_dim,
                 int64_t capacity, DType dtype, bool bf16)
    : B_(batch),
      rows_(batch),
      H_(heads),
      D_(head_dim),
      Dv_(value_dim < 0 ? head_dim : value_dim),
      dtype_(dtype),
      bf16_(bf16) {
  GAZE_CHECK(batch > 0 && heads > 0 && head_dim > 0 && Dv_ > 0, ValueError,
             "KVCache: batch, heads and dims must be positive, got {}, {}, {}, {}", batch, heads,
             head_dim, Dv_);
  GAZE_CHECK(!bf16 || (dtype == DType::f32 && head_dim % 2 == 0 && Dv_ % 2 == 0), ValueError,
             "KVCache: a bf16 cache needs float32 and even head dims, got {} and {}/{}",
             dtype_name(dtype), head_dim, Dv_);
  reserve(std::max<int64_t>(1, capacity));
}

void KVCache::reserve(int64_t positions) {
  if (positions <= capacity_) return;
  int64_t cap = std::max<int64_t>(capacity_, 1);
  while (cap < positions) cap *= 2;
  Tensor k = Tensor::empty(Shape{cap, rows_, H_, stored(D_)}, dtype_),
         v = Tensor::empty(Shape{cap, rows_, H_, stored(Dv_)}, dtype_);
  if (length_ > 0) {  // the prefix is contiguous in both layouts
    std::memcpy(k.raw_data(), k_.raw_data(),
                static_cast<size_t>(length_ * rows_ * H_ * stored(D_)) * dtype_size(dtype_));
    std::memcpy(v.raw_data(), v_.raw_data(),
                static_cast<size_t>(length_ * rows_ * H_ * stored(Dv_)) * dtype_size(dtype_));
  }
  k_ = k, v_ = v, capacity_ = cap;
  slots_.resize(static_cast<size_t>(cap * rows_));
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
  // Position p's batch row b goes to stored row b of p's block (the first B_ of rows_).
  const size_t es = dtype_size(dtype_);
  for (auto [dst, src, width] : {std::tuple{&k_, &k, D_}, std::tuple{&v_, &v, Dv_}}) {
    const size_t block = static_cast<size_t>(rows_ * H_ * stored(width)) * es,
                 used = static_cast<size_t>(B_ * H_ * width) * dtype_size(dtype_);
    char* base = static_cast<char*>(dst->raw_data()) + static_cast<size_t>(length_) * block;
    const char* from = static_cast<const char*>(src->raw_data());
    if (bf16_)  // rounded to nearest even, position by position
      for (int64_t p = 0; p < t; ++p)
        kernels::float_to_bf16(reinterpret_cast<const float*>(from + static_cast<size_t>(p) * used),
                               reinterpret_cast<uint16_t*>(base + static_cast<size_t>(p) * block),
                               B_ * H_ * width);
    else if (B_ == rows_)
      std::memcpy(base, from, static_cast<size_t>(t) * block);
    else
      for (int64_t p = 0; p < t; ++p)
        std::memcpy(base + static_cast<size_t>(p) * block, from + static_cast<size_t>(p) * used,
                    used);
  }
  for (int64_t p = length_; p < length_ + t; ++p)
    for (int64_t b = 0; b < B_; ++b) slots_[static_cast<size_t>(p * rows_ + b)] = b;
  length_ += t;
}

Tensor KVCache::gathered(const Tensor& store, int64_t width) const {
  if (in_place_ && !bf16_) return store.alias(Shape{length_, B_, H_, width});
  Tensor out = Tensor::empty(Shape{length_, B_, H_, width}, dtype_);
  const size_t row = static_cast<size_t>(H_ * width) * dtype_size(dtype_),
               srow = static_cast<size_t>(H_ * stored(width)) * dtype_size(dtype_);
  const char* src = static_cast<const char*>(store.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (int64_t p = 0; p < length_; ++p)
    for (int64_t b = 0; b < B_; ++b) {
      const char* from =
          src + static_cast<size_t>(p * rows_ + slots_[static_cast<size_t>(p * rows_ + b)]) * srow;
      char* to = dst + static_cast<size_t>(p * B_ + b) * row;
      if (!bf16_) {
        std::memcpy(to, from, row);
        continue;
      }
      kernels::bf16_to_float(from, reinterpret_cast<float*>(to), H_ * width);
    }
  return out;
}

Tensor KVCache::keys() const {
  return gathered(k_, D_);
}
Tensor KVCache::values() const {
  return gathered(v_, Dv_);
}

Tensor KVCache::attend(const Tensor& query, HeadsLayout layout, SdpaOptions o) const {
  NoGradGuard no_grad;
  GAZE_CHECK(length_ > 0, StateError,
             "KVCache.attend: the cache is empty; append keys and values first");
  o.layout = layout;
  o.kv_layout = HeadsLayout::tbhd;
  o.is_causal = true;
  o.causal_alignment = CausalAlignment::bottom_right;
  const int64_t Tq = query.dim() == 4 ? query.size(layout == HeadsLayout::bhtd   ? 2
                                                   : layout == HeadsLayout::bthd ? 1
                                                                                 : 0)
                                      : 0;
  // Decoding steps read the cache where it lies: reordered rows through kv_rows, bf16 values
  // widened by the kernel. Other calls, and a float cache still in order, take the standard call on
  // keys() and values().
  const bool step = Tq >= 1 && kv_rows_allowed(o, Tq) && (!bf16_ || query.dtype() == DType::f32);
  if (!step || (in_place_ && !bf16_))
    return scaled_dot_product_attention(query, keys(), values(), o).output;
  o.kv_bf16 = bf16_;
  if (!in_place_) {
    Tensor rows = Tensor::empty(Shape{length_, B_}, DType::i64);
    for (int64_t p = 0; p < length_; ++p)
      std::copy_n(slots_.begin() + p * rows_, B_, rows.data<int64_t>() + p * B_);
    o.kv_rows = rows;
  }
  return scaled_dot_product_attention(query, k_.alias(Shape{length_, rows_, H_, stored(D_)}),
                                      v_.alias(Shape{length_, rows_, H_, stored(Dv_)}), o)
      .output;
}

void KVCache::reorder(const std::vector<int64_t>& idx) {
  GAZE_CHECK(!idx.empty() && static_cast<int64_t>(idx.size()) <= B_, ValueError,
             "KVCache.reorder: expected 1 to {} indices, got {}", B_, idx.size());
  for (int64_t i : idx)
    GAZE_CHECK(i >= 0 && i < B_, IndexError, "KVCache.reorder: index {} out of range [0, {})", i,
               B_);
  const auto B = static_cast<int64_t>(idx.size());
  bool same = B == B_;
  for (int64_t b = 0; b < B && same; ++b) same = idx[static_cast<size_t>(b)] == b;
  if (same) return;
  // Only the table moves: position p's new row b is stored where its old row idx[b] is.
  std::vector<int64_t> row(static_cast<size_t>(B));
  for (int64_t p = 0; p < length_; ++p) {
    int64_t* s = slots_.data() + p * rows_;
    for (int64_t b = 0; b < B; ++b) row[static_cast<size_t>(b)] = s[idx[static_cast<size_t>(b)]];
    std::copy(row.begin(), row.end(), s);
  }
  B_ = B;
  in_place_ = false;
}

}  // namespace gaze::nn
