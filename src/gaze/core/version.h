// gaze's version and the commit it was built from: the provenance explanations (and, later, run
// and model folders) record.
#pragma once

#include <string_view>

namespace gaze {

std::string_view version();     // the project's version, e.g. "0.1.0"
std::string_view git_commit();  // `git describe --always --dirty` at build time, or "unknown"

}  // namespace gaze
