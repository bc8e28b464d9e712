// Named tensors in order, as torch's OrderedDict state dicts: what modules, optimizers, checkpoints
// and safetensors files exchange.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "gaze/core/tensor.h"

namespace gaze {

// Ordered (registration or file order) name -> tensor pairs.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The tensor stored under `name`, or an undefined tensor.
Tensor find(const NamedTensors& d, const std::string& name);

}  // namespace gaze
