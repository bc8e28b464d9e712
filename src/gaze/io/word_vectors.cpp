#include "gaze/io/word_vectors.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <unordered_set>

#include "gaze/core/error.h"

namespace gaze::io {
namespace {

constexpr size_t kMaxLine = size_t{1} << 20;  // 1 MiB: far above any real row (300-d is ~3 KB)

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool parse_int(std::string_view s, int64_t& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size();
}

}  // namespace

WordVectors read_word_vectors(const std::string& path, int64_t max_words) {
  std::ifstream in(path, std::ios::binary);
  GAZE_CHECK(in.good(), DataError, "{}: cannot open the word vectors", path);
  GAZE_CHECK(max_words >= 0, ValueError, "read_word_vectors: max_words must be >= 0");
  WordVectors out;
  std::vector<float> values;
  std::unordered_set<std::string> seen;
  int64_t dim = -1, declared = -1, number = 0, rows = 0;
  bool limited = false;
  std::string line;
  while (std::getline(in, line)) {
    ++number;
    GAZE_CHECK(line.size() <= kMaxLine, DataError, "{}:{}: line longer than {} bytes", path, number,
               kMaxLine);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto f = fields(line);
    if (f.empty()) continue;
    int64_t count = 0, d = 0;
    if (number == 1 && f.size() == 2 && parse_int(f[0], count) && parse_int(f[1], d)) {
      GAZE_CHECK(count >= 0 && d > 0, DataError, "{}:1: invalid word2vec header '{}'", path, line);
      declared = count, dim = d;  // word2vec's text format
      continue;
    }
    GAZE_CHECK(f.size() >= 2, DataError, "{}:{}: expected a word and its vector", path, number);
    const auto d_here = static_cast<int64_t>(f.size()) - 1;
    if (dim < 0) dim = d_here;
    GAZE_CHECK(d_here == dim, DataError, "{}:{}: {} values, expected {} (as the rows before)", path,
               number, d_here, dim);
    ++rows;
    const std::string word(f[0]);
    if (!seen.insert(word).second) continue;
    for (int64_t k = 1; k <= dim; ++k) {
      float v = 0;
      const auto s = f[static_cast<size_t>(k)];
      const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
      GAZE_CHECK(ec == std::errc() && end == s.data() + s.size() && std::isfinite(v), DataError,
                 "{}:{}: value {} of '{}' is not a finite number: '{}'", path, number, k, word,
                 std::string(s));
      values.push_back(v);
    }
    out.words.push_back(word);
    if (max_words > 0 && static_cast<int64_t>(out.words.size()) == max_words) {
      limited = true;
      break;
    }
  }
  GAZE_CHECK(!in.bad(), DataError, "{}: read failed", path);
  GAZE_CHECK(!out.words.empty(), DataError, "{}: no word vectors", path);
  GAZE_CHECK(declared < 0 || limited || declared == rows, DataError,
             "{}: the word2vec header declares {} vectors but the file has {} (truncated?)", path,
             declared, rows);
  const auto n = static_cast<int64_t>(out.words.size());
  out.vectors = Tensor::from_vector(values, Shape{n, dim});
  return out;
}

}  // namespace gaze::io
