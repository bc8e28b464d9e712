// Whole-file reads and atomic writes: a write goes to a temporary file beside the target, is
// flushed to disk and renamed over it, so a crash never leaves a partial file.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace gaze::io {

// Writes the byte ranges `parts`, in order, to `path` atomically; DataError names the path.
void write_atomic(const std::string& path,
                  const std::vector<std::pair<const void*, size_t>>& parts);
void write_file_atomic(const std::string& path, const std::string& text);
// The whole file; DataError ("path: cannot open (reason)") if it cannot be read.
std::string read_file(const std::string& path);

}  // namespace gaze::io
