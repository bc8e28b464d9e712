// Element types of gaze tensors: float32 (the default), float64 (gradient checks), int64 (indices)
// and bool (masks). Kernels are written for the floating types; the others carry data.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "gaze/core/error.h"

namespace gaze {

enum class DType : uint8_t { f32, f64, i64, b8 };

constexpr size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32:
      return 4;
    case DType::f64:
      return 8;
    case DType::i64:
      return 8;
    case DType::b8:
      return 1;
  }
  return 0;
}

// PyTorch's names, so messages read the same as torch's.
constexpr std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::f32:
      return "float32";
    case DType::f64:
      return "float64";
    case DType::i64:
      return "int64";
    case DType::b8:
      return "bool";
  }
  return "?";
}

constexpr bool is_floating(DType t) {
  return t == DType::f32 || t == DType::f64;
}

template <typename T>
constexpr DType dtype_of();
template <>
constexpr DType dtype_of<float>() {
  return DType::f32;
}
template <>
constexpr DType dtype_of<double>() {
  return DType::f64;
}
template <>
constexpr DType dtype_of<int64_t>() {
  return DType::i64;
}
template <>
constexpr DType dtype_of<bool>() {
  return DType::b8;
}

// Calls f.template operator()<T>() with T the C++ type of a floating dtype; other dtypes are an
// error.
template <typename F>
decltype(auto) dispatch_floating(DType t, std::string_view op, F&& f) {
  switch (t) {
    case DType::f32:
      return f.template operator()<float>();
    case DType::f64:
      return f.template operator()<double>();
    default:
      throw ValueError(fmt::format(
          "{}: expected a floating-point tensor (float32 or float64), got {}", op, dtype_name(t)));
  }
}

}  // namespace gaze
