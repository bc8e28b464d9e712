#include "gaze/kernels/copy.h"

#include <cstring>

#include "gaze/core/threads.h"

namespace gaze::kernels {
namespace {

constexpr int64_t kGrainBytes = 1 << 17;
constexpr int64_t kTile = 32;

template <typename E>
void permute_typed(const E* src, const Shape& ss, const int* perm, E* dst) {
  const int nd = ss.ndim();
  const auto sst = contiguous_strides(ss);
  // Output sizes and the source stride of each output dim; drop size-1 dims and merge output dims
  // that are also adjacent (and in order) in the source.
  int64_t size[Shape::kMaxDims], st[Shape::kMaxDims];
  int m = 0;
  for (int i = 0; i < nd; ++i) {
    const int64_t sz = ss[perm[i]], s = sst[perm[i]];
    if (sz == 1) continue;
    if (m > 0 && st[m - 1] == s * sz) {
      size[m - 1] *= sz;
      st[m - 1] = s;
    } else {
      size[m] = sz;
      st[m] = s;
      ++m;
    }
  }
  const int64_t total = ss.numel();
  if (total == 0) return;
  if (m <= 1) {  // the permutation keeps memory order
    std::memcpy(dst, src, sizeof(E) * total);
    return;
  }
  // A 2-D tile transpose when the innermost output dim is strided in the source and the dim that is
  // contiguous in the source (stride 1) is another output dim `c`: walk 32 x 32 tiles of (c,
  // inner).
  int c = -1;
  for (int i = 0; i < m - 1; ++i)
    if (st[i] == 1) c = i;
  const int64_t inner = size[m - 1], sin = st[m - 1];
  if (c >= 0 && sin != 1) {
    // Output strides of each merged dim.
    int64_t ost[Shape::kMaxDims];
    ost[m - 1] = 1;
    for (int i = m - 2; i >= 0; --i) ost[i] = ost[i + 1] * size[i + 1];
    // Iterate over every dim except c and inner ("rest"), and tiles of (c, inner).
    int64_t rest = total / (size[c] * inner);
    const int64_t tiles_c = (size[c] + kTile - 1) / kTile, tiles_i = (inner + kTile - 1) / kTile;
    parallel_for(0, rest * tiles_c * tiles_i,
                 std::max<int64_t>(1, kGrainBytes / (kTile * kTile * sizeof(E))),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t it = lo; it < hi; ++it) {
                     int64_t r = it / (tiles_c * tiles_i);
                     const int64_t t = it % (tiles_c * tiles_i);
                     const int64_t c0 = (t / tiles_i) * kTile, i0 = (t % tiles_i) * kTile;
                     int64_t so = 0, doff = 0;
                     for (int k = m - 2; k >= 0; --k) {
                       if (k == c) continue;
                       const int64_t ik = r % size[k];
                       r /= size[k];
                       so += ik * st[k];
                       doff += ik * ost[k];
                     }
                     const int64_t c1 = std::min(size[c], c0 + kTile),
                                   i1 = std::min(inner, i0 + kTile);
                     for (int64_t cc = c0; cc < c1; ++cc)
                       for (int64_t ii = i0; ii < i1; ++ii)
                         dst[doff + cc * ost[c] + ii] = src[so + cc + ii * sin];
                   }
                 });
    return;
  }
  // General case: odometer over the outer output dims, strided inner loop.
  const int64_t outer = total / inner;
  parallel_for(0, outer, std::max<int64_t>(1, kGrainBytes / (inner * sizeof(E))),
               [&](int64_t lo, int64_t hi) {
                 int64_t idx[Shape::kMaxDims] = {};
                 int64_t off = 0, o = lo;
                 for (int k = m - 2; k >= 0; --k) {
                   idx[k] = o % size[k];
                   o /= size[k];
                   off += idx[k] * st[k];
                 }
                 for (int64_t row = lo; row < hi; ++row) {
                   E* d = dst + row * inner;
                   const E* s = src + off;
                   if (sin == 1) {
                     std::memcpy(d, s, sizeof(E) * inner);
                   } else {
                     for (int64_t j = 0; j < inner; ++j) d[j] = s[j * sin];
                   }
                   for (int k = m - 2; k >= 0; --k) {
                     off += st[k];
                     if (++idx[k] < size[k]) break;
                     off -= st[k] * size[k];
                     idx[k] = 0;
                   }
                 }
               });
}

}  // namespace

void permute(const void* src, const Shape& src_shape, const int* perm, void* dst,
             size_t elem_size) {
  switch (elem_size) {
    case 1:
      return permute_typed(static_cast<const uint8_t*>(src), src_shape, perm,
                           static_cast<uint8_t*>(dst));
    case 2:
      return permute_typed(static_cast<const uint16_t*>(src), src_shape, perm,
                           static_cast<uint16_t*>(dst));
    case 4:
      return permute_typed(static_cast<const uint32_t*>(src), src_shape, perm,
                           static_cast<uint32_t*>(dst));
    case 8:
      return permute_typed(static_cast<const uint64_t*>(src), src_shape, perm,
                           static_cast<uint64_t*>(dst));
  }
}

void copy_rows(const void* src, int64_t src_stride, void* dst, int64_t dst_stride, int64_t rows,
               size_t row_bytes) {
  if (rows == 0 || row_bytes == 0) return;
  const auto* s = static_cast<const char*>(src);
  auto* d = static_cast<char*>(dst);
  parallel_for(0, rows, std::max<int64_t>(1, kGrainBytes / static_cast<int64_t>(row_bytes)),
               [&](int64_t lo, int64_t hi) {
                 for (int64_t r = lo; r < hi; ++r)
                   std::memcpy(d + r * dst_stride, s + r * src_stride, row_bytes);
               });
}

}  // namespace gaze::kernels
