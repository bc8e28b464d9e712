#include "gaze/nn/module.h"

#include <set>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"

namespace gaze::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
  GAZE_CHECK(t.defined(), ValueError, "{}: parameter '{}' is undefined", type_, name);
  GAZE_CHECK(!find(params_, name).defined(), ValueError, "{}: parameter '{}' registered twice",
             type_, name);
  t.set_requires_grad(true);
  params_.emplace_back(name, t);
  return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
  buffers_.emplace_back(name, t);
  return t;
}

void Module::collect(const std::string& prefix, bool params, bool recurse,
                     NamedTensors& out) const {
  for (const auto& [k, v] : params ? params_ : buffers_) out.emplace_back(prefix + k, v);
  if (!recurse) return;
  for (const auto& [k, m] : children_) m->collect(prefix + k + ".", params, recurse, out);
}

NamedTensors Module::named_parameters(bool recurse) const {
  NamedTensors out;
  collect("", true, recurse, out);
  return out;
}

std::vector<Tensor> Module::parameters(bool recurse) const {
  std::vector<Tensor> out;
  for (auto& [k, v] : named_parameters(recurse)) out.push_back(v);
  return out;
}

NamedTensors Module::named_matmul_weights() const {
  std::set<const TensorImpl*> marked;
  std::vector<const Module*> todo{this};
  while (!todo.empty()) {
    const Module* m = todo.back();
    todo.pop_back();
    for (const Tensor& t : m->matmul_weights_) marked.insert(&t.impl());
    for (const auto& [k, c] : m->children_) todo.push_back(c.get());
  }
  NamedTensors out;
  for (const auto& [k, v] : named_parameters())
    if (marked.erase(&v.impl())) out.emplace_back(k, v);
  return out;
}

NamedTensors Module::named_buffers(bool recurse) const {
  NamedTensors out;
  collect("", false, recurse, out);
  return out;
}

NamedTensors Module::state_dict(bool keep_vars) const {
  NamedTensors out = named_parameters();
  for (auto& kv : named_buffers()) out.push_back(kv);
  if (!keep_vars)
    for (auto& [k, v] : out) v = v.detach();
  return out;
}

void Module::load_state_dict(const NamedTensors& state, bool strict, bool assign) {
  const NamedTensors mine = state_dict(/*keep_vars=*/true);
  std::set<std::string> known;
  std::vector<std::string> missing, unexpected, mismatched;
  for (const auto& [k, v] : mine) {
    known.insert(k);
    const Tensor src = find(state, k);
    if (!src.defined()) {
      missing.push_back(k);
    } else if (src.shape() != v.shape()) {
      mismatched.push_back(
          fmt::format("{} (expected {}, got {})", k, v.shape_str(), src.shape_str()));
    }
  }
  for (const auto& [k, v] : state)
    if (!known.count(k)) unexpected.push_back(k);
  // A message lists at most 10 keys of each kind: a config.json claiming 100,000 layers must not
  // produce a 46 MB error line.
  auto some = [](const std::vector<std::string>& keys) {
    const size_t n = std::min<size_t>(keys.size(), 10);
    std::string s = fmt::format("{}", fmt::join(keys.begin(), keys.begin() + n, ", "));
    return keys.size() > n ? fmt::format("{} and {} more", s, keys.size() - n) : s;
  };
  std::vector<std::string> problems;
  if (!mismatched.empty())
    problems.push_back(fmt::format("size mismatch for {}", some(mismatched)));
  if (strict && !missing.empty())
    problems.push_back(fmt::format("missing keys: {}", some(missing)));
  if (strict && !unexpected.empty())
    problems.push_back(fmt::format("unexpected keys: {}", some(unexpected)));
  GAZE_CHECK(problems.empty(), ValueError, "load_state_dict ({}): {}", type_,
             fmt::join(problems, "; "));
  NoGradGuard no_grad;
  for (const auto& [k, v] : mine) {
    const Tensor src = find(state, k);
    if (!src.defined()) continue;
    // Only a tensor that is its whole storage is taken: a view of a larger one would leave the
    // parameter a view too, which reduced precision (set_precision) cannot convert.
    if (assign && src.dtype() == v.dtype() && src.is_whole_storage()) {
      // The identity stays (layers hold references to their parameters); the storage changes.
      TensorImpl& impl = Tensor(v).impl();
      impl.storage = src.storage();
      impl.offset = 0;  // whole: the storage is the tensor
      impl.grad.reset();
    } else {
      Tensor(v).copy_(src.dtype() == v.dtype() ? src : src.to_dtype(v.dtype()));
    }
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [k, m] : children_) m->train(on);
}

void Module::to(DType dtype) {
  for (auto* group : {&params_, &buffers_})
    for (auto& [k, t] : *group) {
      if (!t.defined() || t.dtype() == dtype || !is_floating(t.dtype())) continue;
      const Tensor converted = t.to_dtype(dtype);
      TensorImpl& impl = t.impl();
      impl.storage = converted.storage();
      impl.offset = 0;
      impl.dtype = dtype;
      impl.grad.reset();
    }
  for (auto& [k, m] : children_) m->to(dtype);
}

void Module::zero_grad() {
  for (auto& [k, v] : named_parameters()) v.zero_grad();
}

}  // namespace gaze::nn
