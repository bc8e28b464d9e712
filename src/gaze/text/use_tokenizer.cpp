#include "gaze/text/use_tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/utf8.h"

namespace gaze::text {
namespace {

constexpr int64_t kUnknown = 0;   // "\ufffd": characters no piece covers
constexpr int64_t kReserved = 6;  // ids 0..5 (unknown, <s>, </s>, extra tokens) are never matched
const std::string kSpace = "\u2581";

std::string nfkc(std::string_view text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFKCInstance(status);
  GAZE_CHECK(U_SUCCESS(status), StateError, "ICU: NFKC normaliser unavailable ({})",
             u_errorName(status));
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
  const icu::UnicodeString out = n->normalize(in, status);
  GAZE_CHECK(U_SUCCESS(status), ValueError, "NFKC normalisation failed ({})", u_errorName(status));
  std::string s;
  out.toUTF8String(s);
  return s;
}

}  // namespace

UseTokenizer::UseTokenizer(std::vector<std::string> pieces, std::vector<double> scores,
                           int64_t id_space)
    : pieces_(std::move(pieces)), scores_(std::move(scores)), id_space_(id_space) {
  GAZE_CHECK(pieces_.size() == scores_.size() && std::ssize(pieces_) > kReserved, DataError,
             "USE tokenizer: {} pieces with {} scores (expected one score per piece, more than {} "
             "pieces)",
             pieces_.size(), scores_.size(), kReserved);
  GAZE_CHECK(id_space_ > std::ssize(pieces_), DataError,
             "USE tokenizer: the id space ({}) must exceed the {} pieces (its last id pads)",
             id_space_, pieces_.size());
  null_score_.assign(pieces_.size(), false);
  for (size_t i = kReserved; i < pieces_.size(); ++i) {
    const std::vector<char32_t> v = decode_utf8(pieces_[i]);
    const std::u32string cps(v.begin(), v.end());
    if (cps.empty()) continue;
    ids_[cps] = static_cast<int64_t>(i);  // a repeated piece: the last id wins, as in the trie
    longest_ = std::max(longest_, cps.size());
  }
  pad_ = id_space_ - 1, unk_ = kUnknown, bos_ = 1, eos_ = 2;
}

std::unique_ptr<UseTokenizer> UseTokenizer::load(const std::string& path, int64_t id_space) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(io::read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  GAZE_CHECK(j.is_array(), DataError, "{}: expected [[piece, score], ...]", path);
  std::vector<std::string> pieces;
  std::vector<double> scores;
  std::vector<bool> nulls;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = j[i];
    GAZE_CHECK(
        e.is_array() && e.size() == 2 && e[0].is_string() && (e[1].is_number() || e[1].is_null()),
        DataError, "{}: entry {} is not [piece, score]: {}", path, i, e.dump().substr(0, 80));
    pieces.push_back(e[0].get<std::string>());
    scores.push_back(e[1].is_null() ? 0.0 : e[1].get<double>());
    nulls.push_back(e[1].is_null());
  }
  if (id_space == 0) id_space = static_cast<int64_t>(pieces.size()) + 1;
  auto t = std::make_unique<UseTokenizer>(std::move(pieces), std::move(scores), id_space);
  t->null_score_ = std::move(nulls);
  return t;
}

std::vector<int64_t> UseTokenizer::encode(std::string_view text) const {
  std::string s = nfkc(text);
  if (s.empty()) return {};
  // "▁" before the text and in place of every U+0020 (tabs and newlines stay, as unknowns).
  std::string marked = kSpace;
  for (const char c : s) c == ' ' ? marked += kSpace : marked += c;
  const std::vector<char32_t> sym = decode_utf8(marked);
  const size_t n = sym.size();
  // Every piece ending at each position, by start (ascending): the lattice.
  struct Candidate {
    size_t start;
    int64_t id;
    double score;
  };
  std::vector<std::vector<Candidate>> ending(n + 1);
  for (size_t i = 0; i < n; ++i) {
    bool any = false;
    std::u32string key;
    for (size_t k = 1; k <= longest_ && i + k <= n; ++k) {
      key.push_back(sym[i + k - 1]);
      const auto it = ids_.find(key);
      if (it == ids_.end()) continue;
      ending[i + k].push_back({i, it->second, scores_[static_cast<size_t>(it->second)]});
      any = true;
    }
    if (!any) ending[i + 1].push_back({i, kUnknown, 0.0});
  }
  // The package's search: 0 means "unset" (so a path scoring exactly 0 loses to any later one),
  // and ties go to the later candidate (the larger start).
  std::vector<double> best(n + 1, 0.0);
  std::vector<int64_t> word(n + 1, 0);
  std::vector<size_t> from(n + 1, 0);
  for (size_t end = 1; end <= n; ++end) {
    auto& cands = ending[end];
    std::stable_sort(cands.begin(), cands.end(),
                     [](const Candidate& a, const Candidate& b) { return a.start < b.start; });
    for (const Candidate& c : cands) {
      const double sc = c.score + best[c.start];
      if (best[end] == 0 || sc >= best[end]) best[end] = sc, word[end] = c.id, from[end] = c.start;
    }
  }
  std::vector<int64_t> out;
  for (size_t at = n; at > 0; at = from[at]) {
    // Runs of unknown characters become one unknown.
    if (word[at] == kUnknown && !out.empty() && out.back() == kUnknown) continue;
    out.push_back(word[at]);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

std::string UseTokenizer::decode(std::span<const int64_t> ids) const {
  std::string out;
  for (const int64_t id : ids) {
    if (id < kReserved || id >= std::ssize(pieces_)) continue;
    out += pieces_[static_cast<size_t>(id)];
  }
  std::string text;
  for (size_t i = 0; i < out.size();) {
    if (out.compare(i, kSpace.size(), kSpace) == 0) {
      if (!text.empty()) text += ' ';
      i += kSpace.size();
    } else {
      text += out[i++];
    }
  }
  return text;
}

std::string UseTokenizer::id_to_piece(int64_t id) const {
  if (id == pad_) return "<pad>";
  if (id < 0 || id >= std::ssize(pieces_)) return "<unused>";
  return pieces_[static_cast<size_t>(id)];
}

void UseTokenizer::save(const std::string& dir) const {
  nlohmann::json vocab = nlohmann::json::array();
  for (size_t i = 0; i < pieces_.size(); ++i)
    vocab.push_back({pieces_[i], null_score_[i] ? nlohmann::json() : nlohmann::json(scores_[i])});
  const std::filesystem::path d(dir);
  io::write_file_atomic((d / "vocab.json").string(), vocab.dump());
  io::write_file_atomic(
      (d / "tokenizer.json").string(),
      nlohmann::json{{"kind", "use_lite"}, {"vocab", "vocab.json"}, {"id_space", id_space_}}.dump(
          2) +
          "\n");
}

}  // namespace gaze::text
