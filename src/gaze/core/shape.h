// Shape: the sizes of a tensor, stored inline (at most 8 dimensions) so that building one never
// allocates. Helpers for PyTorch-style negative dimensions and NumPy broadcasting live here too.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace gaze {

class Shape {
 public:
  static constexpr int kMaxDims = 8;
  // The most elements a shape may describe (2^48, a petabyte of floats): every element and byte
  // count derived from a shape then fits in int64 without overflow. Larger shapes are refused on
  // creation.
  static constexpr int64_t kMaxNumel = int64_t{1} << 48;

  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  explicit Shape(std::span<const int64_t> dims);
  explicit Shape(const std::vector<int64_t>& dims) : Shape(std::span<const int64_t>(dims)) {}

  int ndim() const { return n_; }
  int64_t operator[](int i) const { return d_[i]; }
  int64_t& operator[](int i) { return d_[i]; }
  // Size of a dimension given PyTorch-style (possibly negative) index; throws IndexError.
  int64_t size(int dim) const;
  int64_t numel() const {  // inline: loops bounded by numel() must be able to hoist it
    int64_t n = 1;
    for (int i = 0; i < n_; ++i) n *= d_[i];
    return n;
  }
  bool empty() const { return n_ == 0; }

  // These check that the shape stays within kMaxDims and kMaxNumel (ValueError).
  void push_back(int64_t v);
  void insert(int pos, int64_t v);
  void erase(int pos);

  const int64_t* begin() const { return d_.data(); }
  const int64_t* end() const { return d_.data() + n_; }
  std::span<const int64_t> dims() const { return {d_.data(), static_cast<size_t>(n_)}; }
  std::vector<int64_t> vec() const { return {begin(), end()}; }

  std::string str() const;  // "[2, 3]"
  bool operator==(const Shape& o) const;
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  std::array<int64_t, kMaxDims> d_{};
  int n_ = 0;
};

// Maps a PyTorch-style dim in [-ndim, ndim) to [0, ndim); throws IndexError naming `op`.
int wrap_dim(int64_t dim, int ndim, std::string_view op);

// NumPy broadcasting of two shapes; throws ValueError naming `op` and both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);

// Row-major strides of a contiguous tensor of this shape, in elements.
std::array<int64_t, Shape::kMaxDims> contiguous_strides(const Shape& s);

}  // namespace gaze
