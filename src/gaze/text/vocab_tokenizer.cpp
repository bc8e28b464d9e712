#include "gaze/text/vocab_tokenizer.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/utf8.h"

namespace gaze::text {
namespace {
const std::vector<std::string> kSpecials = {"<pad>", "<unk>", "<s>", "</s>"};
}

std::vector<std::string> VocabTokenizer::split(Unit unit, std::string_view text, bool lowercase) {
  const std::string t = lowercase ? to_lower(text) : std::string(text);
  std::vector<std::string> out;
  bool in_word = false;
  for (const char32_t c : decode_utf8(t)) {
    if (is_space(c)) {
      // Characters keep one space between words; words drop it.
      if (unit == Unit::character && !out.empty() && out.back() != " ") out.emplace_back(" ");
      in_word = false;
    } else if (unit == Unit::character || is_punct(c)) {
      out.emplace_back();
      append_utf8(out.back(), c);
      in_word = false;
    } else {
      if (!in_word) out.emplace_back();
      append_utf8(out.back(), c);
      in_word = true;
    }
  }
  if (!out.empty() && out.back() == " ") out.pop_back();
  return out;
}

VocabTokenizer::VocabTokenizer(Unit unit, std::vector<std::string> pieces, bool lowercase)
    : unit_(unit), pieces_(std::move(pieces)), lowercase_(lowercase) {
  GAZE_CHECK(pieces_.size() >= kSpecials.size() &&
                 std::equal(kSpecials.begin(), kSpecials.end(), pieces_.begin()),
             DataError, "vocabulary must start with <pad>, <unk>, <s>, </s>");
  for (size_t i = 0; i < pieces_.size(); ++i) {
    GAZE_CHECK(ids_.emplace(pieces_[i], static_cast<int64_t>(i)).second, DataError,
               "vocabulary line {}: '{}' appears twice", i + 1, pieces_[i]);
  }
}

std::unique_ptr<VocabTokenizer> VocabTokenizer::train(Unit unit, const TokenizerOptions& o,
                                                      const std::vector<std::string>& texts) {
  GAZE_CHECK(o.min_count >= 1 && o.vocab_size >= 0, DataError,
             "tokenizer: min_count must be >= 1 and vocab_size >= 0 (0 = no limit)");
  std::map<std::string, int64_t> counts;
  for (const std::string& t : texts)
    for (std::string& u : split(unit, t, o.lowercase)) ++counts[std::move(u)];
  std::vector<std::pair<std::string, int64_t>> ranked;
  for (auto& [u, n] : counts)
    if (n >= o.min_count && std::find(kSpecials.begin(), kSpecials.end(), u) == kSpecials.end())
      ranked.emplace_back(u, n);
  // Most frequent first; ties in byte order, so the vocabulary does not depend on the text order.
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> pieces = kSpecials;
  for (const auto& [u, n] : ranked) {
    if (o.vocab_size > 0 && static_cast<int64_t>(pieces.size()) >= o.vocab_size) break;
    pieces.push_back(u);
  }
  return std::make_unique<VocabTokenizer>(unit, std::move(pieces), o.lowercase);
}

std::unique_ptr<VocabTokenizer> VocabTokenizer::load(Unit unit, const std::string& path,
                                                     bool lowercase) {
  const std::string text = io::read_file(path);
  std::vector<std::string> pieces;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) pieces.push_back(line);
  try {
    return std::make_unique<VocabTokenizer>(unit, std::move(pieces), lowercase);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", path, e.what()));
  }
}

std::vector<VocabTokenizer::Piece> VocabTokenizer::segment(std::string_view text) const {
  std::vector<Piece> out;
  // Units of `s` as looked up and as written; lower-casing keeps every character's class, so the
  // two line up one to one (should a case mapping ever change that, the looked-up forms stand).
  auto units = [&](std::string_view s) {
    std::vector<std::string> keys = split(unit_, s, lowercase_);
    std::vector<std::string> kept = lowercase_ ? split(unit_, s, false) : keys;
    if (kept.size() != keys.size()) kept = keys;
    for (size_t i = 0; i < keys.size(); ++i) out.push_back({keys[i], kept[i]});
  };
  if (unit_ == Unit::character) {
    units(text);
    return out;
  }
  // Word by word (space-separated chunks): a chunk in the vocabulary is one unit.
  std::string chunk;
  auto flush = [&] {
    if (chunk.empty()) return;
    std::string key = lowercase_ ? to_lower(chunk) : chunk;
    if (ids_.count(key))
      out.push_back({std::move(key), chunk});
    else
      units(chunk);
    chunk.clear();
  };
  for (const char32_t c : decode_utf8(text)) {
    if (is_space(c))
      flush();
    else
      append_utf8(chunk, c);
  }
  flush();
  return out;
}

std::vector<int64_t> VocabTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const Piece& u : segment(text)) {
    auto it = ids_.find(u.key);
    ids.push_back(it == ids_.end() ? unk_ : it->second);
  }
  return ids;
}

std::vector<std::string> VocabTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> out;
  for (Piece& u : segment(text))
    out.push_back(ids_.count(u.key) ? std::move(u.key) : pieces_[static_cast<size_t>(unk_)]);
  return out;
}

std::vector<std::string> VocabTokenizer::surfaces(std::string_view text) const {
  std::vector<std::string> out;
  for (Piece& u : segment(text)) out.push_back(std::move(u.surface));
  return out;
}

std::string VocabTokenizer::decode(std::span<const int64_t> ids) const {
  std::string out;
  for (const int64_t id : ids) {
    if (id == pad_ || id == bos_ || id == eos_ || id < 0 || id >= vocab_size()) continue;
    if (unit_ == Unit::word && !out.empty()) out += ' ';
    out += pieces_[static_cast<size_t>(id)];
  }
  return out;
}

std::string VocabTokenizer::id_to_piece(int64_t id) const {
  GAZE_CHECK(id >= 0 && id < vocab_size(), IndexError, "token id {} is outside [0, {})", id,
             vocab_size());
  return pieces_[static_cast<size_t>(id)];
}

void VocabTokenizer::save(const std::string& dir) const {
  const std::filesystem::path d(dir);
  std::string vocab;
  for (const std::string& p : pieces_) vocab += p + "\n";
  io::write_file_atomic((d / "vocab.txt").string(), vocab);
  const nlohmann::json j = {{"kind", kind()}, {"vocab", "vocab.txt"}, {"lowercase", lowercase_}};
  io::write_file_atomic((d / "tokenizer.json").string(), j.dump(2) + "\n");
}

}  // namespace gaze::text
