// Configuration fields: typed variables with defaults, read and written as JSON text, strict about
// unknown keys and wrong types (the message lists the valid keys). Models and YAML configs use
// them.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace gaze::config {

// A field of a configuration struct: its name, its type ("integer", "number", "boolean",
// "string"), the values it allows (strings with a fixed set) and how to read and write it as JSON
// text. `where` prefixes error messages (e.g. "run.yaml:12").
struct Field {
  std::string name;
  std::function<void(const std::string& json_value, const std::string& where)> read;
  std::function<std::string()> write;
  std::string type;
  std::vector<std::string> allowed;
};

Field field(const std::string& name, int64_t& v);
Field field(const std::string& name, double& v);
Field field(const std::string& name, bool& v);
Field field(const std::string& name, std::string& v, std::vector<std::string> allowed = {});
// A field rejecting values below `min` (e.g. sizes that must be positive).
Field field(const std::string& name, int64_t& v, int64_t min);
Field field(const std::string& name, double& v, double min, double max);

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
