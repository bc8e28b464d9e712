// Shared by the libFuzzer harnesses: inputs become files (gaze's parsers read paths, as users give
// them), and the errors gaze raises on purpose for bad input are the expected outcome. Anything
// else escaping a parser (another exception type, a crash, a sanitizer report) is a finding.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <string_view>

#include "gaze/core/error.h"

namespace gaze::fuzz {

// A folder of this process's own for the files an input becomes (in memory when /dev/shm exists).
// Removed when the fuzzer exits normally.
inline const std::string& scratch_dir() {
  struct Dir {
    std::string path;
    Dir() {
      const std::string base = std::filesystem::exists("/dev/shm") ? "/dev/shm" : "/tmp";
      path = base + "/gaze-fuzz-" + std::to_string(::getpid());
      std::filesystem::create_directories(path);
    }
    ~Dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Dir dir;
  return dir.path;
}

// Writes `bytes` to scratch_dir()/name and returns the path.
inline std::string write_input(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), f) != bytes.size()) std::abort();
  std::fclose(f);
  return path;
}

// Runs `f`; gaze::Error (bad input, reported with a message) is the expected way to fail.
template <class F>
void expect_gaze_errors_only(F&& f) {
  try {
    f();
  } catch (const gaze::Error&) {
  }
}

}  // namespace gaze::fuzz
