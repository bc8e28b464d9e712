#include "gaze/optim/optimizer.h"

#include <cmath>

#include "gaze/core/error.h"
#include "gaze/core/grad_mode.h"
#include "gaze/kernels/optim.h"

namespace gaze::optim {
namespace {
// The per-parameter state kinds gaze's optimizers keep (SGD's momentum, Adam's moments).
bool known_state(const std::string& kind) {
  return kind == "momentum_buffer" || kind == "exp_avg" || kind == "exp_avg_sq";
}
}  // namespace

Optimizer::Optimizer(std::string name, std::vector<Tensor> params, double lr)
    : name_(std::move(name)), params_(std::move(params)), lr_(lr), param_steps_(params_.size(), 0) {
  GAZE_CHECK(lr >= 0, ValueError, "{}: invalid learning rate {}", name_, lr);
  for (size_t i = 0; i < params_.size(); ++i)
    GAZE_CHECK(
        params_[i].defined() && params_[i].dtype() == DType::f32 && params_[i].requires_grad(),
        ValueError, "{}: parameter {} must be a float32 tensor that requires grad", name_, i);
}

void Optimizer::set_lr_scales(std::vector<double> scales) {
  GAZE_CHECK(scales.empty() || scales.size() == params_.size(), ValueError,
             "{}: {} learning-rate scales for {} parameters", name_, scales.size(), params_.size());
  for (const double s : scales)
    GAZE_CHECK(std::isfinite(s) && s >= 0, ValueError, "{}: invalid learning-rate scale {}", name_,
               s);
  scales_ = std::move(scales);
}

void Optimizer::step() {
  NoGradGuard no_grad;
  ++steps_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    ++param_steps_[i];
    update(i, params_[i], g);
    params_[i].storage()->bump_version();
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

bool Optimizer::has_state(const std::string& kind, size_t i) const {
  const std::string key = kind + "." + std::to_string(i);
  for (const auto& [k, v] : state_)
    if (k == key) return true;
  return false;
}

Tensor& Optimizer::state(const std::string& kind, size_t i) {
  const std::string key = kind + "." + std::to_string(i);
  for (auto& [k, v] : state_)
    if (k == key) return v;
  state_.emplace_back(key, Tensor::zeros(params_[i].shape(), DType::f32));
  return state_.back().second;
}

NamedTensors Optimizer::state_tensors() const {
  NamedTensors out = state_;
  out.emplace_back(
      "param_steps",
      Tensor::from_vector(param_steps_, Shape{static_cast<int64_t>(param_steps_.size())}));
  return out;
}

void Optimizer::load_state(const NamedTensors& tensors, int64_t steps) {
  GAZE_CHECK(steps >= 0, ValueError, "{}: invalid step count {}", name_, steps);
  std::vector<std::pair<std::string, Tensor>> fresh;
  std::vector<int64_t> counts(params_.size(), steps);
  for (const auto& [k, v] : tensors) {
    if (k == "param_steps") {
      GAZE_CHECK(v.dtype() == DType::i64 && v.numel() == static_cast<int64_t>(params_.size()),
                 ValueError, "{}: 'param_steps' must be int64 [{}], got {} {}", name_,
                 params_.size(), dtype_name(v.dtype()), v.shape_str());
      counts = v.to_vector<int64_t>();
      continue;
    }
    const auto dot = k.rfind('.');
    // Only this optimizer's own kinds (e.g. a weight average's "average.<i>" is not one).
    GAZE_CHECK(dot != std::string::npos && known_state(k.substr(0, dot)), ValueError,
               "{}: unexpected optimizer state key '{}'", name_, k);
    size_t i = 0;
    try {
      i = std::stoul(k.substr(dot + 1));
    } catch (...) {
      throw ValueError(fmt::format("{}: unexpected optimizer state key '{}'", name_, k));
    }
    GAZE_CHECK(dot != std::string::npos && i < params_.size(), ValueError,
               "{}: optimizer state '{}' refers to parameter {} but there are {}", name_, k, i,
               params_.size());
    GAZE_CHECK(v.shape() == params_[i].shape() && v.dtype() == DType::f32, ValueError,
               "{}: optimizer state '{}' has shape {}, expected {} like parameter {}", name_, k,
               v.shape_str(), params_[i].shape_str(), i);
    fresh.emplace_back(k, v.clone_data());
  }
  state_ = std::move(fresh);
  steps_ = steps;
  param_steps_ = counts;
}

SGD::SGD(std::vector<Tensor> params, const SgdOptions& o)
    : Optimizer("SGD", std::move(params), o.lr), options(o) {
  GAZE_CHECK(o.momentum >= 0 && o.weight_decay >= 0, ValueError,
             "SGD: momentum and weight_decay must be >= 0");
  GAZE_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), ValueError,
             "SGD: nesterov momentum requires a momentum and zero dampening");
}

void SGD::update(size_t i, Tensor& p, const Tensor& g) {
  const bool first = options.momentum != 0 && !has_state("momentum_buffer", i);
  float* buf = options.momentum != 0 ? state("momentum_buffer", i).data<float>() : nullptr;
  kernels::sgd_update(p.data<float>(), g.data<float>(), buf, p.numel(),
                      {static_cast<float>(lr(i)), static_cast<float>(options.momentum),
                       static_cast<float>(1 - options.dampening),
                       static_cast<float>(options.weight_decay), options.nesterov, first});
}

Adam::Adam(std::vector<Tensor> params, const AdamOptions& o, bool dec)
    : Optimizer(dec ? "AdamW" : "Adam", std::move(params), o.lr), options(o), decoupled(dec) {
  GAZE_CHECK(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, ValueError,
             "{}: betas must be in [0, 1), got ({}, {})", name(), o.beta1, o.beta2);
  GAZE_CHECK(o.eps >= 0 && o.weight_decay >= 0, ValueError, "{}: eps and weight_decay must be >= 0",
             name());
}

void Adam::update(size_t i, Tensor& p, const Tensor& g) {
  const double t = static_cast<double>(param_steps(i));
  const auto f = [](double x) { return static_cast<float>(x); };
  kernels::AdamStep s{f(lr(i)),
                      f(options.beta1),
                      f(options.beta2),
                      f(1 - options.beta1),
                      f(1 - options.beta2),
                      f(options.eps),
                      f(options.weight_decay),
                      f(1 - std::pow(options.beta1, t)),
                      f(1 - std::pow(options.beta2, t)),
                      f(1 - lr(i) * options.weight_decay),
                      decoupled};
  kernels::adam_update(p.data<float>(), g.data<float>(), state("exp_avg", i).data<float>(),
                       state("exp_avg_sq", i).data<float>(), p.numel(), s);
}

AdamOptions adamw_defaults() {
  AdamOptions o;
  o.weight_decay = 0.01;
  return o;
}

AdamW::AdamW(std::vector<Tensor> params, AdamOptions o) : Adam(std::move(params), o, true) {}

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm) {
  GAZE_CHECK(max_norm > 0, ValueError, "clip_grad_norm_: max_norm must be positive, got {}",
             max_norm);
  double sq = 0;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (g.defined()) sq += kernels::sum_squares(g.data<float>(), g.numel());
  }
  const double norm = std::sqrt(sq);
  const double coef = std::min(1.0, max_norm / (norm + 1e-6));
  if (coef < 1.0) {
    NoGradGuard no_grad;
    for (const Tensor& p : params) {
      Tensor g = p.grad();
      if (!g.defined()) continue;
      float* d = g.data<float>();
      const float c = static_cast<float>(coef);
      for (int64_t i = 0; i < g.numel(); ++i) d[i] *= c;
    }
  }
  return norm;
}

}  // namespace gaze::optim
