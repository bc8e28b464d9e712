#include "gaze/core/named_tensors.h"

namespace gaze {

Tensor find(const NamedTensors& d, const std::string& name) {
  for (const auto& [k, v] : d)
    if (k == name) return v;
  return Tensor();
}

}  // namespace gaze
