#include "gaze/data/parallel.h"

#include "gaze/core/error.h"
#include "gaze/data/classification.h"
#include "gaze/data/text_file.h"

namespace gaze::data {
namespace {

// A file's lines, without trailing empty lines at the end of the file.
std::vector<Line> content_lines(const TextFile& f) {
  std::vector<Line> lines = f.lines();
  while (!lines.empty() && lines.back().text.empty()) lines.pop_back();
  return lines;
}

}  // namespace

std::vector<SentencePair> read_parallel(const std::string& path, const ParallelFormat& format) {
  // The classification reader already checks columns, empty fields and JSON: the target plays the
  // part of the label.
  std::vector<SentencePair> out;
  for (auto& e :
       read_classification(path, {format.format, format.source_column, format.target_column}))
    out.push_back({std::move(e.text), std::move(e.label), e.line});
  return out;
}

std::vector<SentencePair> read_parallel(const std::string& source_path,
                                        const std::string& target_path) {
  const TextFile src(source_path), tgt(target_path);
  const auto s = content_lines(src), t = content_lines(tgt);
  GAZE_CHECK(s.size() == t.size(), DataError,
             "{}: {} lines but {} has {}; the two files must be aligned line by line", source_path,
             s.size(), target_path, t.size());
  std::vector<SentencePair> out;
  for (size_t i = 0; i < s.size(); ++i) {
    GAZE_CHECK(!is_blank(s[i].text), DataError, "{}: empty line (every line is a sentence)",
               src.where(s[i].number));
    GAZE_CHECK(!is_blank(t[i].text), DataError, "{}: empty line (every line is a sentence)",
               tgt.where(t[i].number));
    out.push_back({std::string(s[i].text), std::string(t[i].text), s[i].number});
  }
  return out;
}

}  // namespace gaze::data
