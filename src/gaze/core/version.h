// gaze's version and the commit it was built from: what `gaze --version` prints and what
// explanations, checkpoints, run folders and the server's responses record.
#pragma once

#include <string>
#include <string_view>

namespace gaze {

std::string_view version();     // the project's version, e.g. "0.1.0"
std::string_view git_commit();  // `git describe --always --dirty` at build time, or "unknown"
// "0.1.0 (commit 1a2b3c4)", for people.
std::string version_line();

}  // namespace gaze
