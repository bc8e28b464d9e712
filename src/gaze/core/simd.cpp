#include "gaze/core/simd.h"

#include <cstdio>
#include <cstdlib>

#include "gaze/core/error.h"
#include "hwy/highway.h"
#include "hwy/targets.h"

namespace gaze {
namespace {

std::string g_forced;  // an explicit setting, like the thread count

// Computed once, before any forcing: SupportedAndGeneratedTargets() reflects the current mock.
const std::vector<int64_t>& available() {
  static const std::vector<int64_t> targets = hwy::SupportedAndGeneratedTargets();
  return targets;
}

// Applies GAZE_FORCE_SIMD once, when the library is loaded.
struct EnvForce {
  EnvForce() {
    if (const char* env = std::getenv("GAZE_FORCE_SIMD"); env && *env) {
      try {
        force_simd_target(env);
      } catch (const Error& e) {
        // Loading must not fail over a setting; say so once and keep the automatic choice.
        std::fprintf(stderr, "gaze: GAZE_FORCE_SIMD ignored: %s\n", e.what());
      }
    }
  }
} g_env_force;

}  // namespace

std::vector<std::string> simd_targets() {
  std::vector<std::string> names;
  for (int64_t t : available()) names.emplace_back(hwy::TargetName(t));
  return names;
}

std::string simd_target() {
  return g_forced.empty() ? simd_targets().front() : g_forced;
}

void force_simd_target(std::string_view name) {
  if (name.empty()) {
    hwy::SetSupportedTargetsForTest(0);
    g_forced.clear();
    return;
  }
  for (int64_t t : available()) {
    if (name == hwy::TargetName(t)) {
      hwy::SetSupportedTargetsForTest(t);
      g_forced = std::string(name);
      return;
    }
  }
  throw ValueError(fmt::format("unknown or unsupported SIMD target '{}'; available here: {}", name,
                               fmt::join(simd_targets(), ", ")));
}

}  // namespace gaze
