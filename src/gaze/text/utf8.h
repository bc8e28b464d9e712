// UTF-8 text: validation (with the byte offset of the first bad sequence), splitting into code
// points, and Unicode-aware lower-casing and character classes for the word tokenizer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gaze::text {

// Returns the offset of the first invalid byte sequence (overlong forms, surrogates and code points
// past U+10FFFF are invalid), or npos if `s` is valid UTF-8.
size_t find_invalid_utf8(std::string_view s);

// The longest prefix of `s` of at most max_bytes bytes that ends on a character boundary (for
// valid UTF-8: never half a character).
std::string_view clip_utf8(std::string_view s, size_t max_bytes);

// The part of `text` a tokenizer needs to produce max_tokens tokens: its first 64 bytes per token
// (plus 1 KiB), cut after a space where one is near. Tokenizing a 50 MB line whole costs gigabytes
// and ends in std::bad_alloc; no tokenizer gaze uses makes a token of more than 64 bytes that a
// model reads past max_tokens anyway. `cut` (optional) is set when text was dropped.
std::string_view clip_for_tokens(std::string_view text, int64_t max_tokens, bool* cut = nullptr);

// Decodes valid UTF-8 into code points.
std::vector<char32_t> decode_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t c);

// One string per code point.
std::vector<std::string> split_chars(std::string_view s);

// Unicode simple lower-casing (the C.UTF-8 locale's tables).
std::string to_lower(std::string_view s);

bool is_space(char32_t c);
// Whether `s` holds nothing but white space: Unicode spaces (tab, CR, VT, FF, U+3000, ...) and
// no-break spaces. False for invalid UTF-8.
bool is_blank_text(std::string_view s);
// Punctuation and symbols: split off as tokens of their own by the word tokenizer.
bool is_punct(char32_t c);

}  // namespace gaze::text
