// Autograd graph nodes. Each recorded op becomes one Node holding what its backward needs; edges
// point to the nodes that produced its inputs (or to the accumulator of a leaf).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gaze/core/grad_mode.h"
#include "gaze/core/tensor.h"

namespace gaze::autograd {

class Node;

// Where the gradient of one input goes: output `output_nr` of `fn`; fn null = no gradient needed.
struct Edge {
  std::shared_ptr<Node> fn;
  int output_nr = 0;
};

class Node {
 public:
  Node(std::string name, int num_outputs);
  // Releases the chain of predecessors iteratively: a deep graph (a long RNN unroll, 100k chained
  // ops) would otherwise be destroyed by recursion and overflow the stack. Nodes and backward
  // closures freed while a release is under way are queued, not destroyed inside it, so tensors
  // captured by closures do not bring the recursion back.
  virtual ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Given the gradients of this node's outputs (undefined = zero), returns one gradient per input
  // edge (undefined = none).
  virtual std::vector<Tensor> apply(std::vector<Tensor>& grad_outputs) = 0;
  // Frees saved tensors once backward has used them (unless the graph is retained).
  virtual void release_saved() {}

  const std::string& name() const { return name_; }
  int num_outputs() const { return static_cast<int>(outputs_.size()); }
  uint64_t sequence_nr() const { return sequence_nr_; }
  std::vector<Edge>& next_edges() { return next_; }

  // Shape and dtype of each output, to build a zero gradient when one output got none.
  struct OutputMeta {
    Shape shape;
    DType dtype = DType::f32;
  };
  std::vector<OutputMeta>& outputs() { return outputs_; }

 private:
  std::string name_;
  uint64_t sequence_nr_;
  std::vector<Edge> next_;
  std::vector<OutputMeta> outputs_;
};

// The sink of a leaf tensor: adds incoming gradients into leaf.grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf);
  std::vector<Tensor> apply(std::vector<Tensor>& grad_outputs) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// A tensor kept for backward. It holds a detached alias (no grad_fn, so no reference cycle through
// outputs) and the storage version at save time, so an in-place write in between is caught.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  // The saved tensor; throws StateError if it was modified in place since it was saved.
  const Tensor& get(const char* op) const;

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

// What a backward function sees: gradients of the op's outputs, which inputs need one, and where
// to put them.
class BackwardContext {
 public:
  BackwardContext(std::vector<Tensor>& grad_outputs, std::vector<Tensor>& grad_inputs, Node& node)
      : gout_(grad_outputs), gin_(grad_inputs), node_(node) {}
  // Gradient of output i; zeros (made on first use) if none flowed into that output.
  const Tensor& grad(int i = 0) const;
  // Whether a gradient flowed into output i (ops may skip work for outputs nobody used).
  bool has_grad(int i) const { return gout_[i].defined() && !zero_filled_(i); }
  int num_outputs() const { return static_cast<int>(gout_.size()); }
  bool needs(int input) const { return node_.next_edges()[input].fn != nullptr; }
  void set(int input, Tensor g) { gin_[input] = std::move(g); }

 private:
  bool zero_filled_(int i) const { return static_cast<size_t>(i) < filled_.size() && filled_[i]; }
  std::vector<Tensor>& gout_;
  std::vector<Tensor>& gin_;
  Node& node_;
  mutable std::vector<bool> filled_;
};

using BackwardFn = std::function<void(BackwardContext&)>;

// A node whose backward is a closure written next to the op's forward. Saved tensors live in the
// closure's captures and are freed with it.
class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, int num_outputs, BackwardFn fn)
      : Node(std::move(name), num_outputs), fn_(std::move(fn)) {}
  ~FunctionNode() override;
  std::vector<Tensor> apply(std::vector<Tensor>& grad_outputs) override;
  void release_saved() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
};

// True when an op on these inputs must record a node: grad mode on and some input requires grad.
bool any_requires_grad(std::initializer_list<const Tensor*> inputs);
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Records a FunctionNode for `outputs` computed from `inputs` (only the differentiable inputs, in
// the order BackwardContext::set uses). Marks the outputs requires_grad. Call only if
// any_requires_grad.
void record(std::string name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn fn);

}  // namespace gaze::autograd
