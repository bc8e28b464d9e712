#include "gaze/data/text_file.h"

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/utf8.h"

namespace gaze::data {

TextFile::TextFile(const std::string& path) : path_(path), content_(io::read_file(path)) {
  std::string_view all(content_);
  if (all.substr(0, 3) == "\xEF\xBB\xBF") all.remove_prefix(3);
  GAZE_CHECK(all.find_first_not_of(" \t\r\n") != std::string_view::npos, DataError,
             "{}: the file is empty", path);
  int64_t number = 1;
  while (!all.empty()) {
    const size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const size_t bad = text::find_invalid_utf8(line);
    GAZE_CHECK(bad == std::string_view::npos, DataError,
               "{}:{}: invalid UTF-8 at byte {} of the line (the file must be UTF-8 text)", path,
               number, bad + 1);
    lines_.push_back({line, number++});
    if (nl == std::string_view::npos) break;
    all.remove_prefix(nl + 1);
  }
}

std::string TextFile::where(int64_t line) const {
  return path_ + ":" + std::to_string(line);
}

}  // namespace gaze::data
