#include "gaze/io/config.h"

#include <nlohmann/json.hpp>

#include <limits>

#include "gaze/core/error.h"

namespace gaze::config {
namespace {
using json = nlohmann::json;

json parse(const std::string& text, const std::string& where) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: not valid JSON ({})", where, e.what()));
  }
}

// A typed field whose values must also lie in [lo, hi].
template <typename T>
Field typed(const std::string& name, T& v, FieldType type, const char* what, T lo, T hi) {
  return {name,
          [&v, name, what, lo, hi](const std::string& text, const std::string& where) {
            const json j = parse(text, where);
            bool ok = false;
            if constexpr (std::is_same_v<T, bool>)
              ok = j.is_boolean();
            else if constexpr (std::is_same_v<T, int64_t>)
              ok = j.is_number_integer();
            else
              ok = j.is_number();
            GAZE_CHECK(ok, DataError, "{}: '{}' must be {}, got {}", where, name, what, j.dump());
            const T x = j.get<T>();
            GAZE_CHECK(x >= lo && x <= hi, DataError, "{}: '{}' must be in [{}, {}], got {}", where,
                       name, lo, hi, x);
            v = x;
          },
          [&v] { return json(v).dump(); },
          type,
          {}};
}
}  // namespace

Field field(const std::string& name, int64_t& v) {
  return typed<int64_t>(name, v, FieldType::integer, "an integer",
                        std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max());
}
Field field(const std::string& name, int64_t& v, int64_t min) {
  return typed<int64_t>(name, v, FieldType::integer, "an integer", min,
                        std::numeric_limits<int64_t>::max());
}
Field field(const std::string& name, int64_t& v, int64_t min, int64_t max) {
  return typed<int64_t>(name, v, FieldType::integer, "an integer", min, max);
}
Field field(const std::string& name, double& v) {
  return typed<double>(name, v, FieldType::number, "a number",
                       -std::numeric_limits<double>::infinity(),
                       std::numeric_limits<double>::infinity());
}
Field field(const std::string& name, double& v, double min, double max) {
  return typed<double>(name, v, FieldType::number, "a number", min, max);
}
Field field(const std::string& name, bool& v) {
  return typed<bool>(name, v, FieldType::boolean, "true or false", false, true);
}

Field field(const std::string& name, std::string& v, std::vector<std::string> allowed) {
  return {name,
          [&v, name, allowed](const std::string& text, const std::string& where) {
            const json j = parse(text, where);
            GAZE_CHECK(j.is_string(), DataError, "{}: '{}' must be a string, got {}", where, name,
                       j.dump());
            const std::string s = j.get<std::string>();
            GAZE_CHECK(
                allowed.empty() || std::find(allowed.begin(), allowed.end(), s) != allowed.end(),
                DataError, "{}: '{}' must be one of {}, got '{}'", where, name,
                fmt::join(allowed, ", "), s);
            v = s;
          },
          [&v] { return json(v).dump(); }, FieldType::string, allowed};
}

Field field(const std::string& name, std::map<std::string, std::string>& v, size_t max_entries) {
  return {name,
          [&v, name, max_entries](const std::string& text, const std::string& where) {
            const json j = parse(text, where);
            GAZE_CHECK(j.is_object() || j.is_null(), DataError,
                       "{}: '{}' must be a mapping of names, e.g. {{\"0\": \"negative\"}}, got {}",
                       where, name, j.dump());
            GAZE_CHECK(j.is_null() || j.size() <= max_entries, DataError,
                       "{}: '{}' has {} entries; at most {}", where, name, j.size(), max_entries);
            std::map<std::string, std::string> m;
            if (j.is_object())
              for (const auto& [key, value] : j.items()) {
                GAZE_CHECK(value.is_string() || value.is_number(), DataError,
                           "{}: '{}': the name of '{}' must be a string, got {}", where, name, key,
                           value.dump());
                m[key] = value.is_string() ? value.get<std::string>() : value.dump();
              }
            v = std::move(m);
          },
          [&v] { return json(v).dump(); },
          FieldType::names,
          {}};
}

Field field(const std::string& name, std::vector<int64_t>& v) {
  return {name,
          [&v, name](const std::string& text, const std::string& where) {
            const json j = parse(text, where);
            bool ok = j.is_array();
            for (const auto& x : j) ok = ok && x.is_number_integer();
            GAZE_CHECK(ok, DataError, "{}: '{}' must be a list of integers, got {}", where, name,
                       j.dump());
            v = j.get<std::vector<int64_t>>();
          },
          [&v] { return json(v).dump(); },
          FieldType::integers,
          {}};
}

Field object_field(const std::string& name, std::vector<Field> fields) {
  return {name,
          [fields, name](const std::string& text, const std::string& where) {
            read_object(text, fields, where + ": " + name);
          },
          [fields] { return write_object(fields); },
          FieldType::object,
          {}};
}

Field named_field(const std::string& name, std::function<void(const std::string&)> set,
                  std::function<std::string()> get, std::vector<std::string> allowed) {
  return {name,
          [set, name, allowed](const std::string& text, const std::string& where) {
            const json j = parse(text, where);
            GAZE_CHECK(j.is_string(), DataError, "{}: '{}' must be one of {}, got {}", where, name,
                       fmt::join(allowed, ", "), j.dump());
            const std::string s = j.get<std::string>();
            GAZE_CHECK(std::find(allowed.begin(), allowed.end(), s) != allowed.end(), DataError,
                       "{}: '{}' must be one of {}, got '{}'", where, name,
                       fmt::join(allowed, ", "), s);
            set(s);
          },
          [get] { return json(get()).dump(); }, FieldType::string, allowed};
}

const Field* find_field(const Fields& fields, const std::string& name) {
  auto f =
      std::find_if(fields.begin(), fields.end(), [&](const Field& x) { return x.name == name; });
  return f == fields.end() ? nullptr : &*f;
}

Fields select(const Fields& all, const std::vector<std::string>& names) {
  Fields out;
  for (const std::string& n : names) {
    const Field* f = find_field(all, n);
    GAZE_CHECK(f, StateError, "config::select: no field '{}'", n);
    out.push_back(*f);
  }
  return out;
}

Fields join(Fields fields, const Fields& more) {
  fields.insert(fields.end(), more.begin(), more.end());
  return fields;
}

std::string write_object(const Fields& fields) {
  json j = json::object();
  for (const Field& f : fields) j[f.name] = json::parse(f.write());
  return j.dump();
}

namespace {
// Reads each member of object j into its field (`skip`: a key handled by the caller).
void read_members(const json& j, const Fields& fields, const std::string& where,
                  bool ignore_unknown, const char* skip = nullptr) {
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (skip && it.key() == skip) continue;
    if (const Field* f = find_field(fields, it.key())) {
      f->read(it.value().dump(), where);
      continue;
    }
    if (ignore_unknown) continue;
    std::vector<std::string> names;
    for (const Field& x : fields) names.push_back(x.name);
    throw DataError(fmt::format("{}: unknown key '{}'; valid keys: {}", where, it.key(),
                                fmt::join(names, ", ")));
  }
}
}  // namespace

void read_object(const std::string& text, const Fields& fields, const std::string& where,
                 bool ignore_unknown) {
  const json j = parse(text, where);
  GAZE_CHECK(j.is_object(), DataError, "{}: expected a JSON object, got {}", where, j.dump());
  read_members(j, fields, where, ignore_unknown);
}

void read(const std::string& text, const std::string& type, const std::vector<Field>& fields) {
  const std::string where = type + " config";
  const json j = parse(text, where);
  GAZE_CHECK(j.is_object(), DataError, "{}: expected a JSON object", where);
  if (j.contains("model_type"))
    GAZE_CHECK(j["model_type"] == type, DataError, "{}: model_type is {}, expected \"{}\"", where,
               j["model_type"].dump(), type);
  read_members(j, fields, where, /*ignore_unknown=*/false, "model_type");
}

std::string write(const std::string& type, const std::vector<Field>& fields) {
  json j = {{"model_type", type}};
  for (const Field& f : fields) j[f.name] = json::parse(f.write());
  return j.dump(2);
}

std::string model_type(const std::string& text) {
  const json j = parse(text, "config");
  GAZE_CHECK(j.is_object() && j.contains("model_type") && j["model_type"].is_string(), DataError,
             "config: missing \"model_type\"");
  return j["model_type"].get<std::string>();
}

}  // namespace gaze::config
