// nn::Module: the base of every layer and model, as torch.nn.Module: named parameters, buffers and
// submodules (dotted state-dict keys), train/eval, state_dict / load_state_dict with strict checks.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gaze/core/named_tensors.h"
#include "gaze/core/tensor.h"

namespace gaze::nn {

class Module {
 public:
  explicit Module(std::string type_name) : type_(std::move(type_name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  const std::string& type_name() const { return type_; }

  NamedTensors named_parameters(bool recurse = true) const;
  std::vector<Tensor> parameters(bool recurse = true) const;
  NamedTensors named_buffers(bool recurse = true) const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }

  // Parameters and buffers under their dotted names (e.g. "out_proj.weight"), as torch: detached
  // views sharing the data (keep_vars = true gives the parameters themselves).
  NamedTensors state_dict(bool keep_vars = false) const;
  // Copies values in (shapes must match). strict: every key must be present and known; all problems
  // are reported at once (missing, unexpected, mis-shaped keys). assign (torch's assign=True): a
  // parameter or buffer takes the given tensor's storage instead of a copy where the dtypes match
  // and the tensor is its whole storage (not a view of a larger one), so the module then shares
  // memory with `state` (what loading a checkpoint wants: no second copy of the weights).
  void load_state_dict(const NamedTensors& state, bool strict = true, bool assign = false);

  // Training mode (dropout on) for this module and every submodule.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Converts every parameter and buffer to `dtype` in place (the tensors keep their identity, so
  // references held by layers stay valid), as torch's module.to(dtype) / .double().
  void to(DType dtype);

  // Registration, public as in torch (also for modules assembled from outside, e.g. from Python).
  // Registers a parameter (requires_grad is set) and returns the stored handle.
  Tensor register_parameter(const std::string& name, Tensor t);
  Tensor register_buffer(const std::string& name, Tensor t);
  // Marks a parameter (of this module or a submodule) as a matrix inputs are multiplied by (x W^T):
  // what reduced-precision inference converts (nn/precision.h). Embedding tables and norms
  // stay float32 unless a module multiplies by them (a tied output projection).
  void mark_matmul_weight(const Tensor& param) { matmul_weights_.push_back(param); }
  // The marked parameters under their dotted names, each once, in named_parameters() order.
  NamedTensors named_matmul_weights() const;
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    // As torch's setattr: a submodule of the same name is replaced, keeping its place.
    for (auto& [n, child] : children_)
      if (n == name) {
        child = m;
        return m;
      }
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, bool recurse, NamedTensors& out) const;

  std::string type_;
  NamedTensors params_, buffers_;
  std::vector<Tensor> matmul_weights_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace gaze::nn
