// Tensor: a handle to contiguous row-major data in shared Storage, plus the autograd state
// (requires_grad, grad, the node that produced it). Copies of a Tensor share everything.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "gaze/core/dtype.h"
#include "gaze/core/shape.h"
#include "gaze/core/storage.h"

namespace gaze {

namespace autograd {
class Node;
}

class Tensor;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // bytes from the start of storage
  Shape shape;
  DType dtype = DType::f32;

  // Autograd state. A tensor with requires_grad and no grad_fn is a leaf: backward accumulates
  // into its grad. A tensor with a grad_fn is output `output_nr` of that node.
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  int output_nr = 0;
  std::shared_ptr<TensorImpl> grad;
  std::weak_ptr<autograd::Node> grad_accumulator;  // leaves: shared so repeated uses sum once
  // Leaves: called once a backward has accumulated this leaf's gradient (see
  // Tensor::set_post_accumulate_grad_hook).
  std::function<void(const Tensor&)> post_accumulate_grad_hook;
};

class Tensor {
 public:
  Tensor() = default;  // undefined: the "None" of gaze (e.g. a gradient that did not flow)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // --- creation ------------------------------------------------------------------------------
  static Tensor empty(const Shape& shape, DType dtype = DType::f32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32);
  static Tensor ones(const Shape& shape, DType dtype = DType::f32);
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32);
  static Tensor scalar(double value, DType dtype = DType::f32);  // 0-d
  static Tensor arange(int64_t n, DType dtype = DType::i64);
  // Copies `data` (shape.numel() elements of T).
  template <typename T>
  static Tensor from_data(const T* data, const Shape& shape);
  template <typename T>
  static Tensor from_vector(const std::vector<T>& data, const Shape& shape);
  // Wraps external memory without copying; `owner` keeps it alive. The caller vouches that `data`
  // holds shape.numel() elements of dtype, laid out contiguously.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, std::shared_ptr<void> owner);

  // --- metadata ------------------------------------------------------------------------------
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  int64_t size(int dim) const { return impl().shape.size(dim); }
  int dim() const { return impl().shape.ndim(); }
  int64_t numel() const { return impl().shape.numel(); }
  DType dtype() const { return impl().dtype; }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }

  // --- data access ---------------------------------------------------------------------------
  void* raw_data() const { return static_cast<char*>(impl().storage->data()) + impl().offset; }
  template <typename T>
  T* data() const;  // throws ValueError if T does not match dtype()
  template <typename T>
  std::vector<T> to_vector() const;
  template <typename T>
  T item() const;  // the value of a one-element tensor
  void copy_to(void* dst, size_t nbytes) const;
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  // Whether this tensor is all of its storage (no offset, nothing beyond it), as what takes a
  // storage over whole needs: load_state_dict's assign, reduced-precision weights.
  bool is_whole_storage() const;

  // A tensor of `shape` sharing this storage, starting `elem_offset` elements in (no autograd;
  // ops build differentiable views on top of it).
  Tensor alias(const Shape& shape, int64_t elem_offset = 0) const;
  // A new tensor with its own copy of the data (no autograd history).
  Tensor clone_data() const;
  // The same values converted to another dtype (a copy; no autograd history).
  Tensor to_dtype(DType dtype) const;

  // --- autograd ------------------------------------------------------------------------------
  bool requires_grad() const { return impl().requires_grad; }
  // Only leaves (tensors not produced by a recorded op) can change requires_grad.
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }
  int output_nr() const { return impl().output_nr; }
  // The accumulated gradient (undefined until a backward reaches this leaf).
  Tensor grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
  void set_grad(const Tensor& g) const;
  void zero_grad() const { impl().grad.reset(); }
  // Calls `hook` with this leaf each time a backward has finished accumulating its gradient (once
  // per backward, after every use of the leaf has contributed), as torch's
  // register_post_accumulate_grad_hook; data-parallel training starts reducing gradients there.
  // One hook per tensor; an empty function removes it.
  void set_post_accumulate_grad_hook(std::function<void(const Tensor&)> hook) const;
  // Runs backward from this tensor. Without grad_output the tensor must hold one element (gradient
  // 1); otherwise grad_output has this tensor's shape. Saved buffers are freed unless retain_graph.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;
  // Same data, no history, requires_grad false.
  Tensor detach() const;

  // --- in-place writes (refused on tensors that take part in autograd while grad mode is on)
  // ------
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // same shape and dtype

  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }
  std::string str() const;  // shape, dtype and (for small tensors) the values
  std::string shape_str() const { return impl().shape.str(); }

  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace gaze
