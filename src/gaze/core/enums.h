// Enumerated options by name. An enum that users set by name (YAML, JSON, CLI flags, Python) lists
// its names once, beside its declaration, with GAZE_ENUM_NAMES; everything else looks them up.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "gaze/core/error.h"

namespace gaze {

template <class E>
struct EnumName {
  E value;
  const char* name;
};

// An enum with an enum_names(E) overload (found by argument-dependent lookup).
template <class E>
concept NamedEnum = std::is_enum_v<E> && requires(E e) {
  { enum_names(e) } -> std::convertible_to<std::span<const EnumName<E>>>;
};

template <NamedEnum E>
std::string enum_name(E v) {
  for (const auto& n : enum_names(E{}))
    if (n.value == v) return n.name;
  return std::to_string(static_cast<long long>(v));
}

template <NamedEnum E>
std::optional<E> enum_from_name(std::string_view s) {
  for (const auto& n : enum_names(E{}))
    if (s == n.name) return n.value;
  return std::nullopt;
}

// The names of `values`, or of every value when `values` is empty.
template <NamedEnum E>
std::vector<std::string> enum_name_list(const std::vector<E>& values = {}) {
  std::vector<std::string> out;
  for (const auto& n : enum_names(E{})) {
    bool keep = values.empty();
    for (const E v : values) keep = keep || v == n.value;
    if (keep) out.emplace_back(n.name);
  }
  return out;
}

// The value named `s`; ValueError naming `what` and the valid names otherwise.
template <NamedEnum E>
E parse_enum(std::string_view s, std::string_view what) {
  if (const auto v = enum_from_name<E>(s)) return *v;
  std::string names;
  for (const auto& n : enum_names(E{}))
    names += (names.empty() ? "'" : ", '") + std::string(n.name) + "'";
  throw ValueError(std::string(what) + " must be one of " + names + ", got '" + std::string(s) +
                   "'");
}

}  // namespace gaze

// Declares the names of enum E in its namespace: GAZE_ENUM_NAMES(Mode, {Mode::a, "a"}, ...).
#define GAZE_ENUM_NAMES(E, ...)                                    \
  inline std::span<const ::gaze::EnumName<E>> enum_names(E) {      \
    static constexpr ::gaze::EnumName<E> kNames[] = {__VA_ARGS__}; \
    return kNames;                                                 \
  }
