#include "gaze/data/conll.h"

#include "gaze/core/error.h"
#include "gaze/data/text_file.h"
#include "gaze/text/utf8.h"

namespace gaze::data {
namespace {

std::vector<std::string_view> columns(std::string_view line) {
  std::vector<std::string_view> out;
  const bool tabs = line.find('\t') != std::string_view::npos;
  size_t i = 0;
  while (i <= line.size()) {
    if (tabs) {
      const size_t tab = line.find('\t', i);
      out.push_back(
          line.substr(i, tab == std::string_view::npos ? std::string_view::npos : tab - i));
      if (tab == std::string_view::npos) break;
      i = tab + 1;
    } else {
      while (i < line.size() && line[i] == ' ') ++i;
      if (i == line.size()) break;
      const size_t sp = line.find(' ', i);
      out.push_back(line.substr(i, sp == std::string_view::npos ? std::string_view::npos : sp - i));
      if (sp == std::string_view::npos) break;
      i = sp;
    }
  }
  return out;
}

int64_t resolve(int64_t column, size_t n) {
  return column < 0 ? static_cast<int64_t>(n) + column : column;
}

}  // namespace

std::vector<TaggedSentence> read_conll(const std::string& path, const ConllFormat& format,
                                       bool require_tags) {
  const TextFile f(path);
  std::vector<TaggedSentence> out;
  TaggedSentence cur;
  size_t width = 0;
  int64_t width_line = 0;
  auto flush = [&] {
    if (!cur.words.empty()) out.push_back(std::move(cur));
    cur = TaggedSentence();
  };
  for (const Line& l : f.lines()) {
    if (is_blank(l.text)) {
      flush();
      continue;
    }
    if (l.text == "#" || l.text.starts_with("# ") || l.text.starts_with("-DOCSTART-")) continue;
    const auto cols = columns(l.text);
    if (width == 0) width = cols.size(), width_line = l.number;
    GAZE_CHECK(cols.size() == width, DataError,
               "{}: {} columns, expected {} (as on line {}); every token line needs the same "
               "columns",
               f.where(l.number), cols.size(), width, width_line);
    const int64_t ti = resolve(format.token_column, cols.size());
    const int64_t gi = resolve(format.tag_column, cols.size());
    GAZE_CHECK(ti >= 0 && ti < static_cast<int64_t>(cols.size()), DataError,
               "{}: no token column {} (the line has {} columns; set data.token_column)",
               f.where(l.number), format.token_column, cols.size());
    const bool has_tag = gi >= 0 && gi < static_cast<int64_t>(cols.size()) && gi != ti;
    GAZE_CHECK(has_tag || !require_tags, DataError,
               "{}: no tag column {} (the line has {} columns; set data.tag_column)",
               f.where(l.number), format.tag_column, cols.size());
    const auto token = cols[static_cast<size_t>(ti)];
    GAZE_CHECK(!is_blank(token), DataError, "{}: the token (column {}) is empty", f.where(l.number),
               ti);
    if (cur.words.empty()) cur.line = l.number;
    cur.words.emplace_back(token);
    cur.lines.push_back(l.number);
    if (has_tag) {
      const auto tag = cols[static_cast<size_t>(gi)];
      GAZE_CHECK(!is_blank(tag), DataError, "{}: the tag (column {}) is empty", f.where(l.number),
                 gi);
      cur.tags.emplace_back(tag);
    }
  }
  flush();
  GAZE_CHECK(!out.empty(), DataError,
             "{}: no sentences (expected token lines, a blank line "
             "between sentences)",
             path);
  return out;
}

std::vector<WordSpan> split_words(const std::string& line) {
  std::vector<WordSpan> out;
  int64_t pos = 0;
  WordSpan cur;
  bool in_word = false;
  for (const std::string& ch : text::split_chars(line)) {
    const bool space = text::is_space(text::decode_utf8(ch)[0]);
    if (space && in_word) {
      cur.end = pos;
      out.push_back(std::move(cur));
      cur = WordSpan();
      in_word = false;
    } else if (!space) {
      if (!in_word) cur.start = pos, in_word = true;
      cur.word += ch;
    }
    ++pos;
  }
  if (in_word) {
    cur.end = pos;
    out.push_back(std::move(cur));
  }
  return out;
}

}  // namespace gaze::data
