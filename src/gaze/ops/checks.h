// Argument checks shared by the ops: each throws a gaze error naming the op, the offending shapes
// or dtypes and what was expected.
#pragma once

#include <string_view>

#include "gaze/core/tensor.h"

namespace gaze::ops_detail {

void check_defined(const Tensor& t, std::string_view op, std::string_view arg);
void check_floating(const Tensor& t, std::string_view op, std::string_view arg = "input");
void check_same_dtype(const Tensor& a, const Tensor& b, std::string_view op);
void check_dtype(const Tensor& t, DType want, std::string_view op, std::string_view arg);

// The tensor viewed as [outer, n, inner] around dimension `dim` (already wrapped).
struct Axis {
  int64_t outer = 1, n = 1, inner = 1;
};
Axis split_at(const Shape& s, int dim);

}  // namespace gaze::ops_detail
