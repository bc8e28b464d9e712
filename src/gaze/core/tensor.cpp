#include "gaze/core/tensor.h"

#include <cstring>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"

namespace gaze {

TensorImpl& Tensor::impl() const {
  GAZE_CHECK(impl_ != nullptr, StateError,
             "use of an undefined tensor (e.g. a gradient that was never computed)");
  return *impl_;
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(static_cast<size_t>(shape.numel()) * dtype_size(dtype));
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

namespace {
template <typename T>
void fill_typed(void* p, int64_t n, double v) {
  T* d = static_cast<T*>(p);
  const T x = static_cast<T>(v);
  for (int64_t i = 0; i < n; ++i) d[i] = x;
}
void fill_raw(void* p, int64_t n, DType dtype, double v) {
  switch (dtype) {
    case DType::f32:
      fill_typed<float>(p, n, v);
      break;
    case DType::f64:
      fill_typed<double>(p, n, v);
      break;
    case DType::i64:
      fill_typed<int64_t>(p, n, v);
      break;
    case DType::b8:
      fill_typed<bool>(p, n, v);
      break;
  }
}
}  // namespace

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw_data(), 0, t.nbytes());
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) {
  return full(shape, 1.0, dtype);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  fill_raw(t.raw_data(), t.numel(), dtype, value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype) {
  return full(Shape{}, value, dtype);
}

Tensor Tensor::arange(int64_t n, DType dtype) {
  GAZE_CHECK(n >= 0, ValueError, "arange: expected n >= 0, got {}", n);
  Tensor t = empty(Shape{n}, dtype);
  for (int64_t i = 0; i < n; ++i) {
    switch (dtype) {
      case DType::f32:
        t.data<float>()[i] = static_cast<float>(i);
        break;
      case DType::f64:
        t.data<double>()[i] = static_cast<double>(i);
        break;
      case DType::i64:
        t.data<int64_t>()[i] = i;
        break;
      case DType::b8:
        throw ValueError("arange: bool is not a valid dtype");
    }
  }
  return t;
}

template <typename T>
Tensor Tensor::from_data(const T* data, const Shape& shape) {
  Tensor t = empty(shape, dtype_of<T>());
  if (t.numel() > 0) std::memcpy(t.raw_data(), data, t.nbytes());
  return t;
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& data, const Shape& shape) {
  GAZE_CHECK(static_cast<int64_t>(data.size()) == shape.numel(), ValueError,
             "from_vector: {} values cannot fill shape {} ({} elements)", data.size(), shape.str(),
             shape.numel());
  if constexpr (std::is_same_v<T, bool>) {
    Tensor t = empty(shape, DType::b8);
    for (size_t i = 0; i < data.size(); ++i) t.data<bool>()[i] = data[i];
    return t;
  } else {
    return from_data(data.data(), shape);
  }
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::borrow(data, static_cast<size_t>(shape.numel()) * dtype_size(dtype),
                                  std::move(owner));
  impl->shape = shape;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

template <typename T>
T* Tensor::data() const {
  GAZE_CHECK(dtype() == dtype_of<T>(), ValueError, "tensor of dtype {} accessed as {}",
             dtype_name(dtype()), dtype_name(dtype_of<T>()));
  return static_cast<T*>(raw_data());
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  const T* p = data<T>();
  return std::vector<T>(p, p + numel());
}

template <typename T>
T Tensor::item() const {
  GAZE_CHECK(numel() == 1, ValueError,
             "item: only a tensor with one element can be converted to a scalar, got shape {}",
             shape_str());
  return *data<T>();
}

void Tensor::copy_to(void* dst, size_t n) const {
  GAZE_CHECK(n == nbytes(), ValueError, "copy_to: destination holds {} bytes, tensor {} has {}", n,
             shape_str(), nbytes());
  if (n) std::memcpy(dst, raw_data(), n);
}

bool Tensor::is_whole_storage() const {
  return impl().offset == 0 && impl().storage->nbytes() == nbytes();
}

Tensor Tensor::alias(const Shape& shape, int64_t elem_offset) const {
  const size_t need =
      (static_cast<size_t>(elem_offset) + static_cast<size_t>(shape.numel())) * dtype_size(dtype());
  GAZE_CHECK(elem_offset >= 0 && impl().offset + need <= storage()->nbytes(), IndexError,
             "view of shape {} at offset {} does not fit in a storage of {} bytes", shape.str(),
             elem_offset, storage()->nbytes());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = storage();
  impl->offset = impl_->offset + static_cast<size_t>(elem_offset) * dtype_size(dtype());
  impl->shape = shape;
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

Tensor Tensor::clone_data() const {
  Tensor t = empty(shape(), dtype());
  if (nbytes()) std::memcpy(t.raw_data(), raw_data(), nbytes());
  return t;
}

namespace {
template <typename From>
void convert_from(const From* src, Tensor& dst) {
  const int64_t n = dst.numel();
  switch (dst.dtype()) {
    case DType::f32:
      for (int64_t i = 0; i < n; ++i) dst.data<float>()[i] = static_cast<float>(src[i]);
      break;
    case DType::f64:
      for (int64_t i = 0; i < n; ++i) dst.data<double>()[i] = static_cast<double>(src[i]);
      break;
    case DType::i64:
      for (int64_t i = 0; i < n; ++i) dst.data<int64_t>()[i] = static_cast<int64_t>(src[i]);
      break;
    case DType::b8:
      for (int64_t i = 0; i < n; ++i) dst.data<bool>()[i] = src[i] != From(0);
      break;
  }
}
}  // namespace

Tensor Tensor::to_dtype(DType to) const {
  if (to == dtype()) return clone_data();
  Tensor out = empty(shape(), to);
  switch (dtype()) {
    case DType::f32:
      convert_from(data<float>(), out);
      break;
    case DType::f64:
      convert_from(data<double>(), out);
      break;
    case DType::i64:
      convert_from(data<int64_t>(), out);
      break;
    case DType::b8:
      convert_from(data<bool>(), out);
      break;
  }
  return out;
}

Tensor& Tensor::set_requires_grad(bool on) {
  GAZE_CHECK(is_leaf(), StateError,
             "requires_grad can only be changed on leaf tensors; use detach() to get a leaf from a "
             "computed tensor");
  GAZE_CHECK(!on || is_floating(dtype()), ValueError,
             "only floating-point tensors can require gradients, got {}", dtype_name(dtype()));
  impl().requires_grad = on;
  return *this;
}

void Tensor::set_grad(const Tensor& g) const {
  if (!g.defined()) {
    impl().grad.reset();
    return;
  }
  GAZE_CHECK(g.shape() == shape() && g.dtype() == dtype(), ValueError,
             "grad must match the tensor: expected {} {}, got {} {}", dtype_name(dtype()),
             shape_str(), dtype_name(g.dtype()), g.shape_str());
  impl().grad = g.impl_ptr();
}

void Tensor::set_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const {
  GAZE_CHECK(is_leaf() && requires_grad(), ValueError,
             "a post-accumulate-grad hook needs a leaf tensor that requires grad");
  impl().post_accumulate_grad_hook = std::move(hook);
}

Tensor Tensor::detach() const {
  Tensor t = alias(shape());
  return t;
}

namespace {
void check_inplace(const Tensor& t, const char* op) {
  GAZE_CHECK(!(autograd::grad_mode_enabled() && t.requires_grad()), StateError,
             "{}: in-place write to a tensor that requires grad while grad mode is on; wrap the "
             "write in NoGradGuard (gaze.no_grad() in Python) or write to a detached copy",
             op);
}
}  // namespace

Tensor& Tensor::fill_(double value) {
  check_inplace(*this, "fill_");
  fill_raw(raw_data(), numel(), dtype(), value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace(*this, "copy_");
  GAZE_CHECK(src.shape() == shape() && src.dtype() == dtype(), ValueError,
             "copy_: source {} {} does not match destination {} {}", dtype_name(src.dtype()),
             src.shape_str(), dtype_name(dtype()), shape_str());
  if (nbytes() && src.raw_data() != raw_data()) std::memmove(raw_data(), src.raw_data(), nbytes());
  storage()->bump_version();
  return *this;
}

std::string Tensor::str() const {
  if (!defined()) return "Tensor(undefined)";
  std::string s = fmt::format("Tensor(shape={}, dtype={}", shape_str(), dtype_name(dtype()));
  if (numel() <= 16) {
    std::vector<std::string> vals;
    for (int64_t i = 0; i < numel(); ++i) {
      switch (dtype()) {
        case DType::f32:
          vals.push_back(fmt::format("{:.6g}", data<float>()[i]));
          break;
        case DType::f64:
          vals.push_back(fmt::format("{:.10g}", data<double>()[i]));
          break;
        case DType::i64:
          vals.push_back(fmt::format("{}", data<int64_t>()[i]));
          break;
        case DType::b8:
          vals.push_back(data<bool>()[i] ? "true" : "false");
          break;
      }
    }
    s += fmt::format(", values=[{}]", fmt::join(vals, ", "));
  }
  if (requires_grad()) s += ", requires_grad=true";
  return s + ")";
}

#define GAZE_INSTANTIATE(T)                                                    \
  template Tensor Tensor::from_data<T>(const T*, const Shape&);                \
  template Tensor Tensor::from_vector<T>(const std::vector<T>&, const Shape&); \
  template T* Tensor::data<T>() const;                                         \
  template std::vector<T> Tensor::to_vector<T>() const;                        \
  template T Tensor::item<T>() const;
GAZE_INSTANTIATE(float)
GAZE_INSTANTIATE(double)
GAZE_INSTANTIATE(int64_t)
template Tensor Tensor::from_vector<bool>(const std::vector<bool>&, const Shape&);
template bool* Tensor::data<bool>() const;
template bool Tensor::item<bool>() const;
#undef GAZE_INSTANTIATE

}  // namespace gaze
