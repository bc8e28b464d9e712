#include "gaze/core/version.h"

#include "gaze_git_commit.h"  // generated at every build (cmake/git_commit.cmake)

namespace gaze {

std::string_view version() {
  return GAZE_VERSION;
}

std::string_view git_commit() {
  return GAZE_GIT_COMMIT;
}

}  // namespace gaze
