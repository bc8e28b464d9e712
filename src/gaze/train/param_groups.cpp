#include "gaze/train/param_groups.h"

#include <cmath>
#include <regex>

#include "gaze/core/error.h"
#include "gaze/train/trainer.h"

namespace gaze::train {
namespace {

constexpr int64_t kHead = -3, kTop = -2, kBottom = -1;

// Where a parameter sits: the head, a backbone layer (its index), the backbone's top (a pooler)
// or its bottom (embeddings, positions, character encoders).
int64_t depth_of(const std::string& name) {
  if (name.rfind("head.", 0) == 0 || name.rfind("crf.", 0) == 0) return kHead;
  if (name.rfind("pooler.", 0) == 0) return kTop;
  static const std::regex layer(R"(^encoder\.layers\.(\d+)\.)"),
      lstm(R"(^lstm\.\w+_l(\d+)(_reverse)?$)");
  std::smatch m;
  if (std::regex_search(name, m, layer) || std::regex_match(name, m, lstm))
    return std::stoll(m[1].str());
  return kBottom;
}

}  // namespace

ParamPlan plan_parameters(const NamedTensors& named, const TrainOptions& o) {
  ParamPlan plan;
  std::vector<int64_t> depth;
  for (const auto& [name, t] : named) {
    depth.push_back(depth_of(name));
    plan.layers = std::max(plan.layers, depth.back() + 1);
  }
  GAZE_CHECK(o.freeze_layers <= plan.layers, ValueError,
             "train.freeze_layers is {} but the backbone has {} layers", o.freeze_layers,
             plan.layers);
  const double base = o.backbone_lr > 0 ? o.backbone_lr / o.lr : 1.0;
  for (size_t i = 0; i < named.size(); ++i) {
    Tensor t = named[i].second;
    const int64_t d = depth[i];
    if (d != kHead && t.requires_grad() &&
        (o.freeze_backbone ||
         (o.freeze_layers > 0 && (d == kBottom || (d >= 0 && d < o.freeze_layers))))) {
      t.set_requires_grad(false);
      ++plan.frozen;
    }
    if (!t.requires_grad()) continue;
    double scale = 1.0;
    if (d != kHead) {
      const int64_t below_top = d == kTop ? 0 : d == kBottom ? plan.layers : plan.layers - 1 - d;
      scale = base * std::pow(o.layer_lr_decay, static_cast<double>(below_top));
    }
    plan.params.push_back(t);
    plan.scales.push_back(scale);
  }
  return plan;
}

}  // namespace gaze::train
