#include "gaze/ops/checks.h"

#include "gaze/core/error.h"

namespace gaze::ops_detail {

void check_defined(const Tensor& t, std::string_view op, std::string_view arg) {
  GAZE_CHECK(t.defined(), ValueError, "{}: argument '{}' is an undefined tensor", op, arg);
}

void check_floating(const Tensor& t, std::string_view op, std::string_view arg) {
  check_defined(t, op, arg);
  GAZE_CHECK(
      is_floating(t.dtype()), ValueError,
      "{}: expected '{}' to be a floating-point tensor (float32 or float64), got {} of shape {}",
      op, arg, dtype_name(t.dtype()), t.shape_str());
}

void check_same_dtype(const Tensor& a, const Tensor& b, std::string_view op) {
  GAZE_CHECK(a.dtype() == b.dtype(), ValueError,
             "{}: dtypes differ ({} {} vs {} {}); convert one with .to(dtype) first", op,
             dtype_name(a.dtype()), a.shape_str(), dtype_name(b.dtype()), b.shape_str());
}

void check_dtype(const Tensor& t, DType want, std::string_view op, std::string_view arg) {
  check_defined(t, op, arg);
  GAZE_CHECK(t.dtype() == want, ValueError, "{}: expected '{}' to be {}, got {} of shape {}", op,
             arg, dtype_name(want), dtype_name(t.dtype()), t.shape_str());
}

Axis split_at(const Shape& s, int dim) {
  Axis a;
  for (int i = 0; i < s.ndim(); ++i) {
    if (i < dim)
      a.outer *= s[i];
    else if (i == dim)
      a.n = s[i];
    else
      a.inner *= s[i];
  }
  return a;
}

}  // namespace gaze::ops_detail
