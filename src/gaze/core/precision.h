// Numeric precision of inference: float32 (training's precision, the default), bfloat16 or int8
// matrix products. Chosen per loaded model (--precision, gaze.load(dir, precision=...)).
#pragma once

#include <cstdint>

#include "gaze/core/enums.h"

namespace gaze {

enum class Precision : uint8_t { fp32, bf16, int8 };
GAZE_ENUM_NAMES(Precision, {Precision::fp32, "fp32"}, {Precision::bf16, "bf16"},
                {Precision::int8, "int8"})

}  // namespace gaze
