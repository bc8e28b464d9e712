#include "gaze/text/utf8.h"

#include <algorithm>

#include <locale.h>
#include <wctype.h>

#include "gaze/core/error.h"

namespace gaze::text {
namespace {

// The C.UTF-8 locale, loaded once and never modified: a constant, not mutable state.
locale_t utf8_locale() {
  static const locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", static_cast<locale_t>(nullptr));
    return l ? l : newlocale(LC_CTYPE_MASK, "C", static_cast<locale_t>(nullptr));
  }();
  return loc;
}

// Length of the sequence starting at s[i] and its code point, or 0 if invalid.
size_t decode_one(std::string_view s, size_t i, char32_t& cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) {
    cp = c;
    return 1;
  }
  size_t n;
  char32_t min;
  if ((c & 0xE0) == 0xC0) {
    n = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F, min = 0x800;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

size_t find_invalid_utf8(std::string_view s) {
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = decode_one(s, i, cp);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string_view clip_utf8(std::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t n = max_bytes;
  // Back off continuation bytes (10xxxxxx) to the start of the character that would be split.
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

std::string_view clip_for_tokens(std::string_view text, int64_t max_tokens, bool* cut) {
  constexpr int64_t kBytesPerToken = 64, kSlack = 1024;
  const int64_t tokens = std::clamp<int64_t>(max_tokens, 0, int64_t{1} << 32);
  const auto budget = static_cast<size_t>(tokens * kBytesPerToken + kSlack);
  if (text.size() <= budget) return text;
  std::string_view head = clip_utf8(text, budget);
  const size_t space = head.find_last_of(" \t\n", head.size() - 1);
  if (space != std::string_view::npos && space + kSlack >= head.size())
    head = head.substr(0, space);
  if (cut) *cut = true;
  return head;
}

std::vector<char32_t> decode_utf8(std::string_view s) {
  std::vector<char32_t> out;
  out.reserve(s.size());
  char32_t cp;
  for (size_t i = 0; i < s.size();) {
    const size_t n = decode_one(s, i, cp);
    GAZE_CHECK(n > 0, DataError, "invalid UTF-8 at byte {}", i);
    out.push_back(cp);
    i += n;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::vector<std::string> split_chars(std::string_view s) {
  std::vector<std::string> out;
  for (const char32_t c : decode_utf8(s)) {
    out.emplace_back();
    append_utf8(out.back(), c);
  }
  return out;
}

std::string to_lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (const char32_t c : decode_utf8(s))
    append_utf8(out, static_cast<char32_t>(towlower_l(static_cast<wint_t>(c), utf8_locale())));
  return out;
}

bool is_space(char32_t c) {
  return iswspace_l(static_cast<wint_t>(c), utf8_locale()) != 0;
}

bool is_blank_text(std::string_view s) {
  if (s.find_first_not_of(" \t\r\n\v\f") == std::string_view::npos) return true;
  if (find_invalid_utf8(s) != std::string_view::npos) return false;
  for (const char32_t c : decode_utf8(s))
    if (!is_space(c) && c != 0xA0 && c != 0x2007 && c != 0x202F && c != 0xFEFF) return false;
  return true;
}

bool is_punct(char32_t c) {
  return iswpunct_l(static_cast<wint_t>(c), utf8_locale()) != 0;
}

}  // namespace gaze::text
