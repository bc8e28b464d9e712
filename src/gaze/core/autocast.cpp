#include "gaze/core/autocast.h"

#include "gaze/core/error.h"

namespace gaze {
namespace {
thread_local Precision t_autocast = Precision::fp32;
}

Precision autocast_precision() {
  return t_autocast;
}

void set_autocast_precision(Precision p) {
  GAZE_CHECK(p != Precision::int8, ValueError,
             "autocast: int8 is an inference precision (gaze quantize); use fp32 or bf16");
  t_autocast = p;
}

}  // namespace gaze
