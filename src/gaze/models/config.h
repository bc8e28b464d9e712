// Reading and writing model configurations: typed fields with defaults, strict about unknown keys
// and wrong types (the message lists the valid keys), via nlohmann-json in the .cpp files only.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace gaze::models::config {

// A field of a configuration struct: its name and how to read and write it as JSON text.
struct Field {
  std::string name;
  std::function<void(const std::string& json_value, const std::string& where)> read;
  std::function<std::string()> write;
};

Field field(const std::string& name, int64_t& v);
Field field(const std::string& name, double& v);
Field field(const std::string& name, bool& v);
Field field(const std::string& name, std::string& v, std::vector<std::string> allowed = {});

// Fills the fields from a JSON object (missing keys keep their defaults); `model_type` must match.
void read(const std::string& json, const std::string& model_type, const std::vector<Field>& fields);
// {"model_type": ..., fields...}
std::string write(const std::string& model_type, const std::vector<Field>& fields);
// The "model_type" of a configuration.
std::string model_type(const std::string& json);

}  // namespace gaze::models::config
