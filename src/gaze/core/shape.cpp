#include "gaze/core/shape.h"

#include <fmt/format.h>

#include "gaze/core/error.h"

namespace gaze {

Shape::Shape(std::initializer_list<int64_t> dims)
    : Shape(std::span<const int64_t>(dims.begin(), dims.size())) {}

Shape::Shape(std::span<const int64_t> dims) {
  GAZE_CHECK(dims.size() <= kMaxDims, ValueError, "tensors have at most {} dimensions, got {}",
             kMaxDims, dims.size());
  for (int64_t d : dims) push_back(d);
}

int64_t Shape::size(int dim) const {
  return d_[wrap_dim(dim, n_, "size")];
}

void Shape::push_back(int64_t v) {
  GAZE_CHECK(n_ < kMaxDims, ValueError, "tensors have at most {} dimensions", kMaxDims);
  GAZE_CHECK(v >= 0, ValueError, "negative dimension {} in shape", v);
  // Checked here, once, so that numel() and every byte count after it cannot overflow. A zero
  // dimension makes any shape empty, however large the others.
  int64_t n = v;
  bool zero = v == 0;
  for (int i = 0; i < n_; ++i) {
    zero = zero || d_[i] == 0;
    if (!zero && (__builtin_mul_overflow(n, d_[i], &n) || n > kMaxNumel)) n = kMaxNumel + 1;
  }
  GAZE_CHECK(zero || n <= kMaxNumel, ValueError,
             "shape {}{}{} has more than 2^48 elements (a tensor that large cannot be allocated)",
             str().substr(0, str().size() - 1), n_ > 0 ? ", " : "", fmt::format("{}]", v));
  d_[n_++] = v;
}

void Shape::insert(int pos, int64_t v) {
  push_back(v);
  for (int i = n_ - 1; i > pos; --i) d_[i] = d_[i - 1];
  d_[pos] = v;
}

void Shape::erase(int pos) {
  for (int i = pos; i + 1 < n_; ++i) d_[i] = d_[i + 1];
  --n_;
}

std::string Shape::str() const {
  return fmt::format("[{}]", fmt::join(begin(), end(), ", "));
}

bool Shape::operator==(const Shape& o) const {
  if (n_ != o.n_) return false;
  for (int i = 0; i < n_; ++i)
    if (d_[i] != o.d_[i]) return false;
  return true;
}

int wrap_dim(int64_t dim, int ndim, std::string_view op) {
  // PyTorch treats a 0-d tensor as having one addressable dim (-1 or 0).
  const int n = ndim == 0 ? 1 : ndim;
  GAZE_CHECK(dim >= -n && dim < n, IndexError,
             "{}: dimension out of range (expected to be in range of [{}, {}], but got {})", op, -n,
             n - 1, dim);
  return static_cast<int>(dim < 0 ? dim + n : dim);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op) {
  const int n = std::max(a.ndim(), b.ndim());
  std::array<int64_t, Shape::kMaxDims> out{};
  for (int i = 0; i < n; ++i) {
    const int ia = a.ndim() - n + i, ib = b.ndim() - n + i;
    const int64_t da = ia >= 0 ? a[ia] : 1, db = ib >= 0 ? b[ib] : 1;
    GAZE_CHECK(
        da == db || da == 1 || db == 1, ValueError,
        "{}: shapes {} and {} cannot be broadcast: size {} vs {} at dimension {} (sizes must "
        "match or one of them be 1)",
        op, a.str(), b.str(), da, db, i - n);
    out[i] = da == 1 ? db : da;
  }
  return Shape(std::span<const int64_t>(out.data(), n));
}

std::array<int64_t, Shape::kMaxDims> contiguous_strides(const Shape& s) {
  std::array<int64_t, Shape::kMaxDims> st{};
  int64_t acc = 1;
  for (int i = s.ndim() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

}  // namespace gaze
