// Configuration fields: typed variables with defaults, read and written as JSON text, strict about
// unknown keys and wrong types (the message lists the valid keys). Models and YAML configs use
// them.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gaze/core/enums.h"

namespace gaze::config {

// A field's JSON type: integers (a list of integers) and object (nested fields) never come from
// YAML scalars.
enum class FieldType { integer, number, boolean, string, integers, object, names };
GAZE_ENUM_NAMES(FieldType, {FieldType::integer, "integer"}, {FieldType::number, "number"},
                {FieldType::boolean, "boolean"}, {FieldType::string, "string"},
                {FieldType::integers, "integers"}, {FieldType::object, "object"},
                {FieldType::names, "names"})

// A field of a configuration struct: its name, its type, the values it allows (strings with a
// fixed set) and how to read and write it as JSON text. `where` prefixes error messages (e.g.
// "run.yaml:12").
struct Field {
  std::string name;
  std::function<void(const std::string& json_value, const std::string& where)> read;
  std::function<std::string()> write;
  FieldType type = FieldType::string;
  std::vector<std::string> allowed;
  std::string help{};  // one line for --help and the docs ({}: initialisers may leave it out)

  Field&& describe(std::string text) && {
    help = std::move(text);
    return std::move(*this);
  }
};
using Fields = std::vector<Field>;

Field field(const std::string& name, int64_t& v);
Field field(const std::string& name, double& v);
Field field(const std::string& name, bool& v);
Field field(const std::string& name, std::string& v, std::vector<std::string> allowed = {});
// A field rejecting values below `min` (e.g. sizes that must be positive).
Field field(const std::string& name, int64_t& v, int64_t min);
// A field rejecting values outside [min, max].
Field field(const std::string& name, int64_t& v, int64_t min, int64_t max);
// The upper bound of model sizes (dimensions, vocabularies, layers, positions, lengths): far above
// any real model, low enough that a typo or a hostile config.json fails here with a clear message
// rather than in an allocation of exabytes.
inline constexpr int64_t kMaxSize = int64_t{1} << 24;
// The upper bound of layer counts (each layer is a module of its own, built before any weight is
// read: 2^24 of them would take minutes and gigabytes to refuse).
inline constexpr int64_t kMaxLayers = 1024;
Field field(const std::string& name, double& v, double min, double max);

// A list of integers (type "integers"; JSON arrays, CLI "0,2").
Field field(const std::string& name, std::vector<int64_t>& v);
// A mapping of strings to strings (type "names"; a YAML mapping or JSON object, e.g. label names:
// {"0": "negative", "1": "positive"}); at most `max_entries` of them.
Field field(const std::string& name, std::map<std::string, std::string>& v,
            size_t max_entries = 1 << 16);
// A nested JSON object of `fields` (type "object"; task.json's "decode").
Field object_field(const std::string& name, std::vector<Field> fields);

// A string field restricted to `allowed`, stored through set/get (enums use it).
Field named_field(const std::string& name, std::function<void(const std::string&)> set,
                  std::function<std::string()> get, std::vector<std::string> allowed);
// An enumerated field, read and written by name; `allowed` narrows the values (default: all).
template <NamedEnum E>
Field field(const std::string& name, E& v, const std::vector<E>& allowed = {}) {
  return named_field(
      name, [&v](const std::string& s) { v = *enum_from_name<E>(s); },
      [&v] { return enum_name(v); }, enum_name_list<E>(allowed));
}

// The field called `name`, or null.
const Field* find_field(const Fields& fields, const std::string& name);

// The fields named in `names`, in that order (a subset of a declaration, e.g. what task.json
// keeps).
Fields select(const Fields& all, const std::vector<std::string>& names);
// `fields` with `more` appended.
Fields join(Fields fields, const Fields& more);

// A JSON object of the fields, and its reverse: missing keys keep their values; unknown keys are
// errors (with the valid keys) unless ignore_unknown. `where` starts messages.
std::string write_object(const Fields& fields);
void read_object(const std::string& json, const Fields& fields, const std::string& where,
                 bool ignore_unknown = false);

// Fills the fields from a JSON object (missing keys keep their defaults); `model_type` must match.
void read(const std::string& json, const std::string& model_type, const std::vector<Field>& fields);
// {"model_type": ..., fields...}
std::string write(const std::string& model_type, const std::vector<Field>& fields);

// A configuration struct C through its config_fields(C&) (found by argument-dependent lookup).
template <class C>
std::string write_config(const std::string& model_type, C c) {
  return write(model_type, config_fields(c));
}
template <class C>
C read_config(const std::string& json, const std::string& model_type) {
  C c;
  read(json, model_type, config_fields(c));
  return c;
}
// The "model_type" of a configuration.
std::string model_type(const std::string& json);

}  // namespace gaze::config
