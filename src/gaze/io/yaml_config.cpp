#include "gaze/io/yaml_config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "gaze/core/error.h"
#include "gaze/io/files.h"

namespace gaze::config {
namespace {

std::string quote_json(const std::string& s) {
  std::string out = "\"";
  for (const unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A YAML scalar as JSON text, resolved by YAML 1.2's core schema (quoted scalars and string fields
// stay strings).
std::string scalar_json(const std::string& value, bool quoted, const Field& f) {
  if (quoted || f.type == FieldType::string) return quote_json(value);
  static const std::regex integer("[-+]?[0-9]+");
  static const std::regex number("[-+]?(\\.[0-9]+|[0-9]+(\\.[0-9]*)?)([eE][-+]?[0-9]+)?");
  if (std::regex_match(value, integer)) return value[0] == '+' ? value.substr(1) : value;
  if (std::regex_match(value, number)) {
    // JSON wants a digit on both sides of the point.
    std::string v = value[0] == '+' ? value.substr(1) : value;
    if (v[0] == '.') v = "0" + v;
    if (v.size() > 1 && v[0] == '-' && v[1] == '.') v = "-0" + v.substr(1);
    const size_t dot = v.find('.');
    if (dot != std::string::npos && (dot + 1 == v.size() || !std::isdigit(v[dot + 1])))
      v.insert(dot + 1, "0");
    return v;
  }
  if (value == "true" || value == "True" || value == "TRUE") return "true";
  if (value == "false" || value == "False" || value == "FALSE") return "false";
  if (value.empty() || value == "~" || value == "null" || value == "Null" || value == "NULL")
    return "null";
  return quote_json(value);
}

// A YAML mapping of scalars as a JSON object of strings (label names: 0: negative).
std::string mapping_json(const YAML::Node& node, const std::string& at, const std::string& key) {
  std::string out = "{";
  for (const auto& kv : node) {
    GAZE_CHECK(kv.first.IsScalar() && kv.second.IsScalar(), DataError,
               "{}: '{}' maps names to names (e.g. 0: negative), not to lists or mappings", at,
               key);
    if (out.size() > 1) out += ",";
    out += quote_json(kv.first.Scalar()) + ":" + quote_json(kv.second.Scalar());
  }
  return out + "}";
}

std::string where(const std::string& source, const YAML::Node& n) {
  return fmt::format("{}:{}", source, n.Mark().line + 1);
}

std::vector<std::string> valid_keys(const Section& s) {
  std::vector<std::string> keys;
  for (const Field& f : s.fields) keys.push_back(f.name);
  for (const Section& c : s.sections) keys.push_back(c.name);
  return keys;
}

std::string section_name(const std::string& path) {
  return path.empty() ? "the top level" : path;
}

void read_section(const YAML::Node& node, const std::string& source, const Section& s,
                  const std::string& path) {
  if (node.IsNull()) return;  // "train:" with nothing under it
  GAZE_CHECK(node.IsMap(), DataError, "{}: {} must be a mapping of keys to values",
             where(source, node), section_name(path));
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string key = kv.first.as<std::string>();
    const std::string at = where(source, kv.first);
    GAZE_CHECK(seen.insert(key).second, DataError, "{}: '{}' appears twice in {}", at, key,
               section_name(path));
    const std::string full = path.empty() ? key : path + "." + key;
    if (const Field* f = find_field(s.fields, key)) {
      if (f->type == FieldType::names && kv.second.IsMap()) {
        f->read(mapping_json(kv.second, at, full), at);
        continue;
      }
      GAZE_CHECK(kv.second.IsScalar() || kv.second.IsNull(), DataError,
                 "{}: '{}' must be a single value ({}), not a list or mapping", at, full,
                 enum_name(f->type));
      const bool quoted = kv.second.IsScalar() && kv.second.Tag() == "!";
      f->read(scalar_json(kv.second.IsScalar() ? kv.second.Scalar() : "", quoted, *f), at);
      continue;
    }
    auto c = std::find_if(s.sections.begin(), s.sections.end(),
                          [&](const Section& x) { return x.name == key; });
    GAZE_CHECK(c != s.sections.end(), DataError, "{}: unknown key '{}' in {}; valid keys: {}", at,
               key, section_name(path), fmt::join(valid_keys(s), ", "));
    read_section(kv.second, source, *c, full);
  }
}

void dump_section(const Section& s, int indent, std::ostringstream& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const Field& f : s.fields) out << pad << f.name << ": " << f.write() << "\n";
  for (const Section& c : s.sections) {
    out << pad << c.name << ":\n";
    dump_section(c, indent + 2, out);
  }
}

void collect_paths(const Section& s, const std::string& prefix, std::vector<std::string>& out) {
  for (const Field& f : s.fields) out.push_back(prefix + f.name);
  for (const Section& c : s.sections) collect_paths(c, prefix + c.name + ".", out);
}

}  // namespace

void read_yaml(const std::string& text, const std::string& source, const Section& root) {
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw DataError(fmt::format("{}:{}: not valid YAML: {}", source, e.mark.line + 1, e.msg));
  }
  try {
    read_section(doc, source, root, "");
  } catch (const YAML::Exception& e) {  // e.g. a key that is itself a mapping
    throw DataError(fmt::format("{}:{}: {}", source, e.mark.line + 1, e.msg));
  }
}

void read_yaml_file(const std::string& path, const Section& root) {
  read_yaml(io::read_file(path, io::kMaxMetadataBytes), path, root);
}

void apply_override(const Section& root, const std::string& assignment) {
  const std::string where = fmt::format("--set {}", assignment);
  const size_t eq = assignment.find('=');
  GAZE_CHECK(eq != std::string::npos && eq > 0, DataError,
             "{}: expected key=value, e.g. train.lr=0.001", where);
  const std::string key = assignment.substr(0, eq), value = assignment.substr(eq + 1);
  const Section* s = &root;
  std::string rest = key, path;
  for (size_t dot; (dot = rest.find('.')) != std::string::npos; rest = rest.substr(dot + 1)) {
    const std::string part = rest.substr(0, dot);
    auto c = std::find_if(s->sections.begin(), s->sections.end(),
                          [&](const Section& x) { return x.name == part; });
    GAZE_CHECK(c != s->sections.end(), DataError, "{}: unknown section '{}' in {}; valid keys: {}",
               where, part, section_name(path), fmt::join(valid_keys(*s), ", "));
    path = path.empty() ? part : path + "." + part;
    s = &*c;
  }
  const Field* f = find_field(s->fields, rest);
  GAZE_CHECK(f, DataError, "{}: unknown key '{}' in {}; valid keys: {}", where, rest,
             section_name(path), fmt::join(valid_keys(*s), ", "));
  // The value is a YAML scalar: "a b", 'x', 3, true.
  YAML::Node n;
  try {
    n = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw DataError(fmt::format("{}: not a valid YAML value: {}", where, e.msg));
  }
  if (f->type == FieldType::names && n.IsMap()) {  // --set data.label_names={0: neg, 1: pos}
    f->read(mapping_json(n, where, key), where);
    return;
  }
  GAZE_CHECK(n.IsScalar() || n.IsNull(), DataError, "{}: '{}' takes a single value", where, key);
  f->read(scalar_json(n.IsScalar() ? n.Scalar() : "", n.IsScalar() && n.Tag() == "!", *f), where);
}

std::string dump_yaml(const Section& root) {
  std::ostringstream out;
  dump_section(root, 0, out);
  return out.str();
}

std::vector<std::string> field_paths(const Section& root) {
  std::vector<std::string> out;
  collect_paths(root, "", out);
  return out;
}

}  // namespace gaze::config
