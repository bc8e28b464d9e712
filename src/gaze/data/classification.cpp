#include "gaze/data/classification.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/data/text_file.h"

namespace gaze::data {
namespace {

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> out;
  for (size_t start = 0;;) {
    const size_t tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) return out;
    start = tab + 1;
  }
}

std::vector<LabeledText> read_tsv(const TextFile& f, const ClassificationFormat& fmt,
                                  bool require_labels) {
  const auto& lines = f.lines();
  const std::vector<std::string_view> header = split_tabs(lines[0].text);
  auto column = [&](const std::string& name) -> int64_t {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : it - header.begin();
  };
  const int64_t ti = column(fmt.text_column), li = column(fmt.label_column);
  std::vector<std::string> names(header.begin(), header.end());
  GAZE_CHECK(ti >= 0, DataError,
             "{}: no column '{}' for the text; the header row has: {} (set data.text_column)",
             f.where(1), fmt.text_column, fmt::join(names, ", "));
  GAZE_CHECK(li >= 0 || !require_labels, DataError,
             "{}: no column '{}' for the label; the header row has: {} (set data.label_column)",
             f.where(1), fmt.label_column, fmt::join(names, ", "));
  std::vector<LabeledText> out;
  for (size_t i = 1; i < lines.size(); ++i) {
    const Line& l = lines[i];
    if (is_blank(l.text)) continue;
    const auto fields = split_tabs(l.text);
    GAZE_CHECK(fields.size() == header.size(), DataError,
               "{}: expected {} tab-separated fields (as in the header), found {}",
               f.where(l.number), header.size(), fields.size());
    LabeledText ex{std::string(fields[static_cast<size_t>(ti)]),
                   li >= 0 ? std::string(fields[static_cast<size_t>(li)]) : std::string(),
                   l.number};
    GAZE_CHECK(!is_blank(ex.text), DataError, "{}: the text ('{}' column) is empty",
               f.where(l.number), fmt.text_column);
    GAZE_CHECK(!require_labels || !is_blank(ex.label), DataError,
               "{}: the label ('{}' column) is empty", f.where(l.number), fmt.label_column);
    out.push_back(std::move(ex));
  }
  GAZE_CHECK(!out.empty(), DataError, "{}: no examples after the header row", f.path());
  return out;
}

std::string json_string(const nlohmann::json& v, const std::string& where, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  GAZE_CHECK(v.is_number_integer() || v.is_boolean(), DataError,
             "{}: field '{}' must be a string or an integer, got {}", where, key, v.dump());
  return v.dump();
}

std::vector<LabeledText> read_jsonl(const TextFile& f, const ClassificationFormat& fmt,
                                    bool require_labels) {
  std::vector<LabeledText> out;
  for (const Line& l : f.lines()) {
    if (is_blank(l.text)) continue;
    const std::string where = f.where(l.number);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(l.text);
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: not valid JSON ({})", where, e.what()));
    }
    GAZE_CHECK(j.is_object(), DataError, "{}: expected a JSON object per line", where);
    GAZE_CHECK(j.contains(fmt.text_column), DataError,
               "{}: no field '{}' for the text (set data.text_column)", where, fmt.text_column);
    LabeledText ex{json_string(j[fmt.text_column], where, fmt.text_column), "", l.number};
    if (j.contains(fmt.label_column) && !j[fmt.label_column].is_null())
      ex.label = json_string(j[fmt.label_column], where, fmt.label_column);
    GAZE_CHECK(!is_blank(ex.text), DataError, "{}: the text ('{}' field) is empty", where,
               fmt.text_column);
    GAZE_CHECK(!require_labels || !is_blank(ex.label), DataError,
               "{}: no label ('{}' field; set data.label_column)", where, fmt.label_column);
    out.push_back(std::move(ex));
  }
  GAZE_CHECK(!out.empty(), DataError, "{}: no examples", f.path());
  return out;
}

}  // namespace

FileFormat resolve_format(const std::string& path, FileFormat format) {
  if (format != FileFormat::detect) return format;
  const auto ends = [&](const char* s) {
    const std::string x(s);
    return path.size() >= x.size() && path.compare(path.size() - x.size(), x.size(), x) == 0;
  };
  return ends(".jsonl") || ends(".json") ? FileFormat::jsonl : FileFormat::tsv;
}

std::vector<LabeledText> read_classification(const std::string& path,
                                             const ClassificationFormat& format,
                                             bool require_labels) {
  const TextFile f(path);
  return resolve_format(path, format.format) == FileFormat::jsonl
             ? read_jsonl(f, format, require_labels)
             : read_tsv(f, format, require_labels);
}

std::vector<LabeledText> read_texts(const std::string& path, const ClassificationFormat& format) {
  const TextFile f(path);
  if (resolve_format(path, format.format) == FileFormat::jsonl) return read_jsonl(f, format, false);
  // A TSV whose header row names the text column, else plain text: one example per line.
  const auto header = split_tabs(f.lines()[0].text);
  if (std::find(header.begin(), header.end(), format.text_column) != header.end())
    return read_tsv(f, format, false);
  std::vector<LabeledText> out;
  // Blank lines too: predictions keep one output per input line.
  for (const Line& l : f.lines()) out.push_back({std::string(l.text), "", l.number});
  return out;
}

}  // namespace gaze::data
