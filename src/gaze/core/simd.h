// SIMD targets: gaze's kernels are compiled for several instruction sets (via Highway) and the best
// one the CPU supports is picked at run time. GAZE_FORCE_SIMD=<name> or force_simd_target() pins
// one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gaze {

// Targets both compiled into gaze and supported by this CPU, best first (e.g. AVX3, AVX2, EMU128).
std::vector<std::string> simd_targets();
// The target kernels currently dispatch to.
std::string simd_target();
// Restricts dispatch to one target from simd_targets(); "" restores the automatic choice.
// Throws ValueError for a name that is not available.
void force_simd_target(std::string_view name);

}  // namespace gaze
