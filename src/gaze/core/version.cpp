#include "gaze/core/version.h"

#include "gaze_git_commit.h"  // generated at every build (cmake/git_commit.cmake)

namespace gaze {

std::string_view version() {
  return GAZE_VERSION;
}

std::string_view git_commit() {
  return GAZE_GIT_COMMIT;
}

std::string version_line() {
  return std::string(version()) + " (commit " + std::string(git_commit()) + ")";
}

}  // namespace gaze
