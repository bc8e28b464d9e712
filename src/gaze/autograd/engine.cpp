#include "gaze/autograd/engine.h"

#include <unordered_map>
#include <vector>

#include "gaze/autograd/node.h"
#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/kernels/elementwise.h"

namespace gaze::autograd {

void accumulate_into(Tensor& dst, const Tensor& src) {
  GAZE_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), StateError,
             "gradient accumulation: got a gradient of {} {} for a tensor of {} {}",
             dtype_name(src.dtype()), src.shape_str(), dtype_name(dst.dtype()), dst.shape_str());
  dispatch_floating(dst.dtype(), "gradient accumulation", [&]<typename T>() {
    kernels::add_inplace(dst.data<T>(), src.data<T>(), dst.numel());
  });
  dst.storage()->bump_version();
}

namespace {
// Whether g is the only handle on its buffer, so that it may be taken or summed into in place.
bool sole_holder(const Tensor& g) {
  return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1;
}
}  // namespace

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>& grad_outputs) {
  auto leaf = leaf_.lock();
  if (!leaf || !grad_outputs[0].defined()) return {};
  Tensor g = std::move(grad_outputs[0]);
  if (!leaf->grad) {
    // Take the buffer when nothing else holds it; otherwise it may be shared with another leaf's
    // gradient (a + b hands both the same tensor) and must be copied.
    leaf->grad = sole_holder(g) ? g.impl_ptr() : g.clone_data().impl_ptr();
  } else {
    Tensor acc(leaf->grad);
    accumulate_into(acc, g);
  }
  // The engine runs a leaf's accumulator once per backward, with every use summed.
  if (leaf->post_accumulate_grad_hook) leaf->post_accumulate_grad_hook(Tensor(leaf));
  return {};
}

namespace {

void check_grad_output(const Tensor& root, const Tensor& g) {
  GAZE_CHECK(g.shape() == root.shape(), ValueError,
             "backward: grad_output has shape {} but the tensor has shape {}", g.shape_str(),
             root.shape_str());
  GAZE_CHECK(g.dtype() == root.dtype(), ValueError,
             "backward: grad_output has dtype {} but the tensor has dtype {}",
             dtype_name(g.dtype()), dtype_name(root.dtype()));
}

}  // namespace

void backward(const Tensor& root, const Tensor& grad_output, bool retain_graph) {
  GAZE_CHECK(root.requires_grad(), StateError,
             "backward: the tensor does not require grad and has no grad_fn (did you compute it "
             "under NoGradGuard, or from tensors without requires_grad?)");
  Tensor g0 = grad_output;
  if (!g0.defined()) {
    GAZE_CHECK(root.numel() == 1, ValueError,
               "backward: grad can be implicitly created only for tensors with one element; got "
               "shape {}, pass grad_output explicitly",
               root.shape_str());
    g0 = Tensor::ones(root.shape(), root.dtype());
  } else {
    check_grad_output(root, g0);
  }

  NoGradGuard no_grad;  // gradients are computed, not recorded (no double backward)
  std::shared_ptr<Node> root_fn = root.grad_fn();
  if (!root_fn) {  // backward on a leaf itself
    std::vector<Tensor> gs{g0};
    AccumulateGrad(root.impl_ptr()).apply(gs);
    return;
  }

  // Count, for every node reachable from the root, how many edges lead into it.
  std::unordered_map<Node*, int> deps;
  std::vector<Node*> stack{root_fn.get()};
  deps[root_fn.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (Edge& e : n->next_edges()) {
      if (!e.fn) continue;
      auto [it, inserted] = deps.try_emplace(e.fn.get(), 0);
      ++it->second;
      if (inserted) stack.push_back(e.fn.get());
    }
  }

  // Gradients waiting for each node's outputs; a node runs when its count reaches zero.
  std::unordered_map<Node*, std::vector<Tensor>> pending;
  pending[root_fn.get()].resize(root_fn->num_outputs());
  pending[root_fn.get()][root.output_nr()] = g0;
  std::vector<std::shared_ptr<Node>> ready{root_fn};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    std::vector<Tensor> grads = std::move(pending[node.get()]);
    pending.erase(node.get());
    grads.resize(
        node->num_outputs());  // outputs that got no gradient stay undefined: zeros on demand

    std::vector<Tensor> grad_inputs = node->apply(grads);
    grads.clear();
    if (!retain_graph) node->release_saved();

    auto& edges = node->next_edges();
    for (size_t i = 0; i < edges.size(); ++i) {
      Edge& e = edges[i];
      if (!e.fn) continue;
      if (i < grad_inputs.size() && grad_inputs[i].defined()) {
        auto& slot = pending[e.fn.get()];
        slot.resize(e.fn->num_outputs());
        Tensor& dst = slot[e.output_nr];
        const auto& meta = e.fn->outputs()[e.output_nr];
        GAZE_CHECK(grad_inputs[i].shape() == meta.shape, StateError,
                   "{} backward returned a gradient of shape {} for an input of shape {} (internal "
                   "error)",
                   node->name(), grad_inputs[i].shape_str(), meta.shape.str());
        if (!dst.defined()) {
          dst = std::move(grad_inputs[i]);
        } else if (sole_holder(dst) && dst.is_whole_storage()) {
          // Nothing else holds the first gradient: sum into it. (Copying it first, one thread's
          // memcpy per residual connection, was 1-2 % of a training step.)
          accumulate_into(dst, grad_inputs[i]);
        } else {
          // The first gradient may alias another node's buffer; sum into a fresh one.
          Tensor sum = dst.clone_data();
          accumulate_into(sum, grad_inputs[i]);
          dst = std::move(sum);
        }
      }
      if (--deps[e.fn.get()] == 0) ready.push_back(e.fn);
    }
  }
}

}  // namespace gaze::autograd

namespace gaze {
void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  autograd::backward(*this, grad_output, retain_graph);
}
}  // namespace gaze
