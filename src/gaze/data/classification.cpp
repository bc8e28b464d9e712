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

// A table's records: the header first, each with the line it starts on.
struct Record {
  std::vector<std::string> fields;
  int64_t line;
};

std::vector<Record> tsv_records(const TextFile& f) {
  std::vector<Record> out;
  for (const Line& l : f.lines()) {
    if (!out.empty() && is_blank(l.text)) continue;
    Record r{{}, l.number};
    for (const auto& x : split_tabs(l.text)) r.fields.emplace_back(x);
    out.push_back(std::move(r));
  }
  return out;
}

// RFC 4180: fields separated by commas; a field in double quotes may hold commas, line breaks and
// "" for a quote. Blank lines between records are skipped.
std::vector<Record> csv_records(const TextFile& f) {
  std::vector<Record> out;
  const auto& lines = f.lines();
  Record rec{{}, 0};
  std::string field;
  bool quoted = false, closed = false;
  int64_t quote_line = 0;
  auto end_field = [&] {
    rec.fields.push_back(std::move(field));
    field.clear();
    closed = false;
  };
  for (size_t li = 0; li < lines.size(); ++li) {
    const std::string_view text = lines[li].text;
    if (!quoted) {
      if (is_blank(text) && !out.empty()) continue;
      rec = Record{{}, lines[li].number};
    }
    for (size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if (quoted) {
        if (c != '"') {
          field += c;
        } else if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          quoted = false, closed = true;
        }
      } else if (c == ',') {
        end_field();
      } else if (c == '"' && field.empty() && !closed) {
        quoted = true, quote_line = lines[li].number;
      } else {
        GAZE_CHECK(!closed, DataError,
                   "{}: text after the closing quote of a field (a quote inside a quoted field is "
                   "written \"\")",
                   f.where(lines[li].number));
        field += c;
      }
    }
    if (quoted) {
      field += '\n';  // a line break inside a quoted field
      continue;
    }
    end_field();
    out.push_back(std::move(rec));
  }
  GAZE_CHECK(!quoted, DataError, "{}: a quoted field is never closed", f.where(quote_line));
  return out;
}

std::vector<LabeledText> from_records(const TextFile& f, const std::vector<Record>& records,
                                      const ClassificationFormat& fmt, bool require_labels,
                                      const char* separated) {
  const std::vector<std::string>& header = records[0].fields;
  auto column = [&](const std::string& name) -> int64_t {
    auto it = std::find(header.begin(), header.end(), name);
    return it == header.end() ? -1 : it - header.begin();
  };
  const int64_t ti = column(fmt.text_column), li = column(fmt.label_column);
  // A comma-separated file read as TSV has one column whose name holds the commas.
  GAZE_CHECK(ti >= 0 || std::string(separated) != "tab" || header.size() != 1 ||
                 header[0].find(',') == std::string::npos,
             DataError,
             "{}: this looks like comma-separated data (commas, no tabs, in the header row); name "
             "the file .csv or set data.format: csv (--format csv for gaze eval)",
             f.where(records[0].line));
  GAZE_CHECK(ti >= 0, DataError,
             "{}: no column '{}' for the text; the header row has: {} (set data.text_column; gaze "
             "eval: --text-column)",
             f.where(records[0].line), fmt.text_column, fmt::join(header, ", "));
  GAZE_CHECK(li >= 0 || !require_labels, DataError,
             "{}: no column '{}' for the label; the header row has: {} (set data.label_column; "
             "gaze eval: --label-column)",
             f.where(records[0].line), fmt.label_column, fmt::join(header, ", "));
  std::vector<LabeledText> out;
  for (size_t i = 1; i < records.size(); ++i) {
    const Record& r = records[i];
    if (r.fields.size() == 1 && is_blank(r.fields[0])) continue;
    GAZE_CHECK(r.fields.size() == header.size(), DataError,
               "{}: expected {} {}-separated fields (as in the header), found {}", f.where(r.line),
               header.size(), separated, r.fields.size());
    LabeledText ex{r.fields[static_cast<size_t>(ti)],
                   li >= 0 ? r.fields[static_cast<size_t>(li)] : std::string(), r.line};
    GAZE_CHECK(!is_blank(ex.text), DataError, "{}: the text ('{}' column) is empty",
               f.where(r.line), fmt.text_column);
    GAZE_CHECK(!require_labels || !is_blank(ex.label), DataError,
               "{}: the label ('{}' column) is empty", f.where(r.line), fmt.label_column);
    out.push_back(std::move(ex));
  }
  GAZE_CHECK(!out.empty(), DataError, "{}: no examples after the header row", f.path());
  return out;
}

std::vector<LabeledText> read_table(const TextFile& f, FileFormat format,
                                    const ClassificationFormat& fmt, bool require_labels) {
  return format == FileFormat::csv ? from_records(f, csv_records(f), fmt, require_labels, "comma")
                                   : from_records(f, tsv_records(f), fmt, require_labels, "tab");
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
               "{}: no field '{}' for the text (set data.text_column; gaze eval: --text-column)",
               where, fmt.text_column);
    LabeledText ex{json_string(j[fmt.text_column], where, fmt.text_column), "", l.number};
    if (j.contains(fmt.label_column) && !j[fmt.label_column].is_null())
      ex.label = json_string(j[fmt.label_column], where, fmt.label_column);
    GAZE_CHECK(!is_blank(ex.text), DataError, "{}: the text ('{}' field) is empty", where,
               fmt.text_column);
    GAZE_CHECK(!require_labels || !is_blank(ex.label), DataError,
               "{}: no label ('{}' field; set data.label_column; gaze eval: --label-column)", where,
               fmt.label_column);
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
  if (ends(".jsonl") || ends(".json")) return FileFormat::jsonl;
  return ends(".csv") || ends(".CSV") ? FileFormat::csv : FileFormat::tsv;
}

std::vector<LabeledText> read_classification(const std::string& path,
                                             const ClassificationFormat& format,
                                             bool require_labels) {
  const TextFile f(path);
  const FileFormat kind = resolve_format(path, format.format);
  return kind == FileFormat::jsonl ? read_jsonl(f, format, require_labels)
                                   : read_table(f, kind, format, require_labels);
}

std::vector<LabeledText> read_texts(const std::string& path, const ClassificationFormat& format) {
  const TextFile f(path);
  const FileFormat kind = resolve_format(path, format.format);
  if (kind == FileFormat::jsonl) return read_jsonl(f, format, false);
  if (kind == FileFormat::csv) return read_table(f, kind, format, false);
  // A TSV whose header row names the text column, else plain text: one example per line.
  const auto header = split_tabs(f.lines()[0].text);
  if (std::find(header.begin(), header.end(), format.text_column) != header.end())
    return read_table(f, kind, format, false);
  std::vector<LabeledText> out;
  // Blank lines too: predictions keep one output per input line.
  for (const Line& l : f.lines()) out.push_back({std::string(l.text), "", l.number});
  return out;
}

}  // namespace gaze::data
