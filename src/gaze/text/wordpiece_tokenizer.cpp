#include "gaze/text/wordpiece_tokenizer.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gaze/core/error.h"
#include "gaze/io/files.h"
#include "gaze/text/utf8.h"

namespace gaze::text {
namespace {

const std::vector<std::string> kNeverSplit = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};

bool is_control(char32_t c) {
  if (c == '\t' || c == '\n' || c == '\r') return false;
  const auto cat = u_charType(static_cast<UChar32>(c));
  return cat == U_CONTROL_CHAR || cat == U_FORMAT_CHAR || cat == U_UNASSIGNED ||
         cat == U_PRIVATE_USE_CHAR || cat == U_SURROGATE;
}

bool is_whitespace(char32_t c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
         u_charType(static_cast<UChar32>(c)) == U_SPACE_SEPARATOR;
}

// What Python's str.split() splits on besides: line and paragraph separators, and the ASCII
// separators 0x1C-0x1F (controls, already dropped).
bool splits_words(char32_t c) {
  const auto cat = u_charType(static_cast<UChar32>(c));
  return c == ' ' || cat == U_LINE_SEPARATOR || cat == U_PARAGRAPH_SEPARATOR;
}

// BERT's punctuation: every ASCII non-letter-non-digit symbol, and Unicode's P* categories.
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
      (c >= 123 && c <= 126))
    return true;
  return u_ispunct(static_cast<UChar32>(c));
}

bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

icu::UnicodeString ustr(const std::string& s) {
  return icu::UnicodeString::fromUTF8(icu::StringPiece(s.data(), static_cast<int32_t>(s.size())));
}

// Hugging Face lower-cases one character at a time (str.lower() of each): full mappings, but no
// context (a final capital sigma becomes σ, never ς).
std::string lower(const std::string& s) {
  std::string out;
  for (const char32_t c : decode_utf8(s)) {
    icu::UnicodeString u(static_cast<UChar32>(c));
    u.toLower(icu::Locale::getRoot());
    u.toUTF8String(out);
  }
  return out;
}

std::string nfc(const std::string& s) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFCInstance(status);
  GAZE_CHECK(U_SUCCESS(status), StateError, "ICU: NFC normaliser unavailable");
  const icu::UnicodeString u = n->normalize(ustr(s), status);
  std::string out;
  u.toUTF8String(out);
  return out;
}

// NFD, then every nonspacing mark (Mn) dropped.
std::string strip_accents(const std::string& s) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* nfd = icu::Normalizer2::getNFDInstance(status);
  GAZE_CHECK(U_SUCCESS(status), StateError, "ICU: NFD normaliser unavailable");
  const icu::UnicodeString d = nfd->normalize(ustr(s), status);
  std::string utf8, out;
  d.toUTF8String(utf8);
  for (const char32_t c : decode_utf8(utf8))
    if (u_charType(static_cast<UChar32>(c)) != U_NON_SPACING_MARK) append_utf8(out, c);
  return out;
}

}  // namespace

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> vocab, const WordPieceOptions& o)
    : vocab_(std::move(vocab)), o_(o) {
  for (size_t i = 0; i < vocab_.size(); ++i) ids_.emplace(vocab_[i], static_cast<int64_t>(i));
  auto need = [&](const char* piece) {
    const auto it = ids_.find(piece);
    GAZE_CHECK(it != ids_.end(), DataError, "WordPiece vocabulary: no {} piece", piece);
    return it->second;
  };
  pad_ = need("[PAD]"), unk_ = need("[UNK]"), cls_ = need("[CLS]"), sep_ = need("[SEP]");
  bos_ = cls_, eos_ = sep_;
  GAZE_CHECK(o_.max_input_chars_per_word >= 1, DataError,
             "WordPiece: max_input_chars_per_word must be >= 1");
}

std::unique_ptr<WordPieceTokenizer> WordPieceTokenizer::load(const std::string& path,
                                                             const WordPieceOptions& o) {
  const std::string text = io::read_file(path);
  std::vector<std::string> vocab;
  if (std::filesystem::path(path).extension() == ".json") {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
      throw DataError(fmt::format("{}: not valid JSON ({})", path, e.what()));
    }
    const auto& m = j.contains("model") ? j["model"] : nlohmann::json();
    GAZE_CHECK(m.is_object() && m.value("type", "") == "WordPiece" && m.contains("vocab") &&
                   m["vocab"].is_object(),
               DataError, "{}: not a WordPiece tokenizer.json (model.type must be WordPiece)",
               path);
    vocab.resize(m["vocab"].size());
    for (const auto& [piece, id] : m["vocab"].items()) {
      GAZE_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 &&
                     id.get<size_t>() < vocab.size() && vocab[id.get<size_t>()].empty(),
                 DataError, "{}: piece '{}' has an invalid or repeated id {}", path, piece,
                 id.dump());
      vocab[id.get<size_t>()] = piece;
    }
  } else {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      vocab.push_back(line);
    }
    while (!vocab.empty() && vocab.back().empty()) vocab.pop_back();
  }
  try {
    return std::make_unique<WordPieceTokenizer>(std::move(vocab), o);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: {}", path, e.what()));
  }
}

std::vector<std::string> WordPieceTokenizer::basic_tokens(std::string_view text) const {
  GAZE_CHECK(find_invalid_utf8(text) == std::string::npos, DataError,
             "WordPiece: the text is not valid UTF-8");
  // Special tokens stand alone wherever they are written (as Hugging Face splits them out first).
  std::vector<std::string> out;
  size_t from = 0;
  while (from <= text.size()) {
    size_t at = std::string_view::npos, len = 0;
    for (const auto& sp : kNeverSplit) {
      const size_t i = text.find(sp, from);
      if (i < at) at = i, len = sp.size();
    }
    for (auto& w :
         basic_words(text.substr(from, at == std::string_view::npos ? text.npos : at - from)))
      out.push_back(std::move(w));
    if (at == std::string_view::npos) break;
    out.emplace_back(text.substr(at, len));
    from = at + len;
  }
  return out;
}

std::vector<std::string> WordPieceTokenizer::basic_words(std::string_view text) const {
  // Clean (controls dropped, whitespace as spaces) and space out CJK ideographs.
  std::string clean;
  for (const char32_t c : decode_utf8(text)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      clean += ' ';
    } else if (o_.split_cjk && is_cjk(c)) {
      clean += ' ';
      append_utf8(clean, c);
      clean += ' ';
    } else {
      append_utf8(clean, c);
    }
  }
  const bool strip = o_.strip_accents < 0 ? o_.lowercase : o_.strip_accents == 1;
  std::vector<std::string> out, words(1);
  for (const char32_t c : decode_utf8(nfc(clean))) {
    if (splits_words(c)) {
      if (!words.back().empty()) words.emplace_back();
    } else {
      append_utf8(words.back(), c);
    }
  }
  for (std::string& w : words) {
    if (w.empty()) continue;
    if (o_.lowercase) w = lower(w);
    if (strip) w = strip_accents(w);
    // Punctuation characters stand alone.
    bool fresh = true;
    for (const char32_t c : decode_utf8(w)) {
      if (is_punctuation(c)) {
        out.emplace_back();
        append_utf8(out.back(), c);
        fresh = true;
      } else {
        if (fresh) out.emplace_back();
        append_utf8(out.back(), c);
        fresh = false;
      }
    }
  }
  return out;
}

void WordPieceTokenizer::pieces_of(const std::string& word, std::vector<int64_t>& out) const {
  const std::vector<char32_t> chars = decode_utf8(word);
  if (std::ssize(chars) > o_.max_input_chars_per_word) {
    out.push_back(unk_);
    return;
  }
  std::vector<int64_t> found;
  size_t start = 0;
  while (start < chars.size()) {
    // The longest piece from `start` (continuations carry "##").
    int64_t id = -1;
    size_t end = chars.size();
    for (; end > start; --end) {
      std::string piece = start > 0 ? "##" : "";
      for (size_t i = start; i < end; ++i) append_utf8(piece, chars[i]);
      const auto it = ids_.find(piece);
      if (it != ids_.end()) {
        id = it->second;
        break;
      }
    }
    if (id < 0) {
      out.push_back(unk_);  // the whole word, as BERT does
      return;
    }
    found.push_back(id);
    start = end;
  }
  out.insert(out.end(), found.begin(), found.end());
}

std::vector<int64_t> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  for (const std::string& w : basic_tokens(text)) {
    const auto it = ids_.find(w);
    if (it != ids_.end() &&
        std::find(kNeverSplit.begin(), kNeverSplit.end(), w) != kNeverSplit.end())
      out.push_back(it->second);
    else
      pieces_of(w, out);
  }
  return out;
}

std::string WordPieceTokenizer::decode(std::span<const int64_t> ids) const {
  std::string out;
  for (const int64_t id : ids) {
    if (id == pad_ || id == cls_ || id == sep_ || id < 0 || id >= vocab_size()) continue;
    const std::string& p = vocab_[static_cast<size_t>(id)];
    if (p.rfind("##", 0) == 0) {
      out += p.substr(2);
    } else {
      if (!out.empty()) out += ' ';
      out += p;
    }
  }
  return out;
}

std::string WordPieceTokenizer::id_to_piece(int64_t id) const {
  GAZE_CHECK(id >= 0 && id < vocab_size(), IndexError, "token id {} is outside [0, {})", id,
             vocab_size());
  return vocab_[static_cast<size_t>(id)];
}

void WordPieceTokenizer::save(const std::string& dir) const {
  const std::filesystem::path d(dir);
  std::string vocab;
  for (const std::string& p : vocab_) vocab += p + "\n";
  io::write_file_atomic((d / "vocab.txt").string(), vocab);
  io::write_file_atomic((d / "tokenizer.json").string(),
                        nlohmann::json{{"kind", "wordpiece"},
                                       {"vocab", "vocab.txt"},
                                       {"lowercase", o_.lowercase},
                                       {"strip_accents", o_.strip_accents},
                                       {"split_cjk", o_.split_cjk},
                                       {"max_input_chars_per_word", o_.max_input_chars_per_word}}
                                .dump(2) +
                            "\n");
}

}  // namespace gaze::text
