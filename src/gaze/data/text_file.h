// Line-oriented text files as the data readers see them: the whole file in memory, a UTF-8 BOM and
// CR line ends removed, every line checked to be valid UTF-8, and `file:line:` on every error.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gaze::data {

// Whether a line (or field) holds nothing but spaces and tabs.
inline bool is_blank(std::string_view s) {
  return s.find_first_not_of(" \t") == std::string_view::npos;
}

struct Line {
  std::string_view text;
  int64_t number;  // 1-based
};

class TextFile {
 public:
  // Reads `path`; DataError if it cannot be read, is empty, or has invalid UTF-8 (with the line).
  explicit TextFile(const std::string& path);
  const std::string& path() const { return path_; }
  const std::vector<Line>& lines() const { return lines_; }
  // "path:line"
  std::string where(int64_t line) const;

 private:
  std::string path_, content_;
  std::vector<Line> lines_;
};

}  // namespace gaze::data
