// Command-line flags made from an options declaration (config::Fields): field beam_size becomes
// --beam-size with the field's help and allowed values. Values are kept as typed and applied after
// the model is loaded, onto options that start from the model's own, so a flag left out keeps the
// model's setting and a new option needs no edit here.
#pragma once

#include <CLI/CLI.hpp>

#include <map>
#include <optional>
#include <string>

#include "gaze/io/config.h"

namespace gaze::cli {

class FieldFlags {
 public:
  // A flag per field (booleans as switches, integer lists as "0,2"); `scope` prefixes the help
  // ("translation: "). Fields whose flag is already registered are skipped.
  void add(CLI::App& app, const config::Fields& fields, const std::string& scope = "");
  // Reads every given flag into the field of the same name; a given flag with no field in `fields`
  // is a DataError ("--unknown-tags does not apply to <what>").
  void apply(const config::Fields& fields, const std::string& what) const;
  bool any() const { return !given_.empty(); }
  bool given(const std::string& field) const { return given_.count(field) > 0; }

 private:
  std::map<std::string, std::string> given_;  // field name -> the value as typed
};

// --beam-size for field beam_size.
std::string flag_name(const std::string& field);

// An option taking an enum's names (or, for a vector, a comma-separated list of them); only the
// names are accepted, as CLI::IsMember checks them.
template <NamedEnum E, typename Set>
CLI::Option* add_one_enum_option(CLI::App& app, const std::string& flag, Set set,
                                 const std::string& help) {
  return app
      .add_option_function<std::string>(
          flag, [set](const std::string& s) { set(*enum_from_name<E>(s)); }, help)
      ->check(CLI::IsMember(enum_name_list<E>()));
}
template <NamedEnum E>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, E& v,
                             const std::string& help) {
  return add_one_enum_option<E>(
      app, flag, [&v](E e) { v = e; }, help);
}
template <NamedEnum E>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, std::optional<E>& v,
                             const std::string& help) {
  return add_one_enum_option<E>(
      app, flag, [&v](E e) { v = e; }, help);
}
template <NamedEnum E>
CLI::Option* add_enum_option(CLI::App& app, const std::string& flag, std::vector<E>& v,
                             const std::string& help) {
  return app
      .add_option_function<std::vector<std::string>>(
          flag,
          [&v](const std::vector<std::string>& names) {
            v.clear();
            for (const auto& s : names) v.push_back(*enum_from_name<E>(s));
          },
          help)
      ->check(CLI::IsMember(enum_name_list<E>()))
      ->delimiter(',');
}

}  // namespace gaze::cli
