#include "gaze/autograd/node.h"

#include <atomic>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"

namespace gaze::autograd {
namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};

// What is left to free of a graph being released on this thread. The outermost ~Node drains it;
// nested destructions (a closure's captured tensor dropping the last reference to its grad_fn) only
// add to it, so the stack depth stays constant however deep the graph is.
struct Release {
  bool draining = false;
  std::vector<std::shared_ptr<Node>> nodes;
  std::vector<BackwardFn> closures;
};
thread_local Release t_release;
}  // namespace

Node::Node(std::string name, int num_outputs)
    : name_(std::move(name)), sequence_nr_(g_next_sequence_nr++), outputs_(num_outputs) {}

Node::~Node() {
  Release& r = t_release;
  // Every edge, not only sole owners: a node reached by several edges (q, k and v of one tensor)
  // would otherwise be freed by the destruction of next_, recursively.
  for (Edge& e : next_)
    if (e.fn) r.nodes.push_back(std::move(e.fn));
  if (r.draining) return;
  r.draining = true;
  // Each step frees one node or closure; whatever that frees in turn lands in the queues.
  while (!r.nodes.empty() || !r.closures.empty()) {
    if (!r.closures.empty()) {
      BackwardFn fn = std::move(r.closures.back());
      r.closures.pop_back();
    } else {
      std::shared_ptr<Node> n = std::move(r.nodes.back());
      r.nodes.pop_back();
    }
  }
  r.draining = false;
}

FunctionNode::~FunctionNode() {
  if (fn_) t_release.closures.push_back(std::move(fn_));
  fn_ = nullptr;
}

AccumulateGrad::AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
    : Node("AccumulateGrad", 1), leaf_(leaf) {
  outputs()[0] = {leaf->shape, leaf->dtype};
}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  t_ = t.detach();
  version_ = t.storage()->version();
}

const Tensor& SavedTensor::get(const char* op) const {
  GAZE_CHECK(!t_.defined() || t_.storage()->version() == version_, StateError,
             "{} backward: a tensor saved for backward was modified in place after it was saved "
             "(version {}, expected {}); compute on a copy instead of writing in place",
             op, t_.storage()->version(), version_);
  return t_;
}

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>& grad_outputs) {
  GAZE_CHECK(fn_ != nullptr, StateError,
             "{}: trying to backward through the graph a second time (its saved tensors were freed "
             "after the first backward); pass retain_graph=true to the first backward if you need "
             "to run it twice",
             name());
  std::vector<Tensor> grad_inputs(next_edges().size());
  BackwardContext ctx(grad_outputs, grad_inputs, *this);
  fn_(ctx);
  return grad_inputs;
}

const Tensor& BackwardContext::grad(int i) const {
  if (!gout_[i].defined()) {
    const auto& meta = node_.outputs()[i];
    gout_[i] = Tensor::zeros(meta.shape, meta.dtype);
    filled_.resize(gout_.size(), false);
    filled_[i] = true;
  }
  return gout_[i];
}

bool any_requires_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor* t : inputs)
    if (t->defined() && t->requires_grad()) return true;
  return false;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

namespace {
Edge edge_for(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return {};
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  // A leaf: share one accumulator between all its uses in the graph.
  TensorImpl& impl = t.impl();
  auto acc = impl.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t.impl_ptr());
    impl.grad_accumulator = acc;
  }
  return {acc, 0};
}
}  // namespace

void record(std::string name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
            BackwardFn fn) {
  auto node = std::make_shared<FunctionNode>(std::move(name), static_cast<int>(outputs.size()),
                                             std::move(fn));
  node->next_edges().reserve(inputs.size());
  for (const Tensor& t : inputs) node->next_edges().push_back(edge_for(t));
  for (size_t i = 0; i < outputs.size(); ++i) {
    TensorImpl& o = outputs[i].impl();
    o.requires_grad = true;
    o.grad_fn = node;
    o.output_nr = static_cast<int>(i);
    node->outputs()[i] = {o.shape, o.dtype};
  }
}

}  // namespace gaze::autograd
