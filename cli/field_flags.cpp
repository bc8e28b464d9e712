#include "cli/field_flags.h"

#include <nlohmann/json.hpp>

#include <charconv>

#include "gaze/core/error.h"

namespace gaze::cli {
namespace {

// The typed value as JSON text, with a message naming the flag when it is not of the field's type.
std::string to_json(const config::Field& f, const std::string& value) {
  const std::string flag = flag_name(f.name);
  if (f.type == config::FieldType::integer) {
    int64_t x = 0;
    const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), x);
    GAZE_CHECK(ec == std::errc() && end == value.data() + value.size(), DataError,
               "{}: expected an integer, got '{}'", flag, value);
    return std::to_string(x);
  }
  if (f.type == config::FieldType::number) {
    size_t used = 0;
    double x = 0;
    try {
      x = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    GAZE_CHECK(used > 0 && used == value.size() && std::isfinite(x), DataError,
               "{}: expected a number, got '{}'", flag, value);
    return nlohmann::json(x).dump();
  }
  return nlohmann::json(value).dump();
}

}  // namespace

std::string flag_name(const std::string& field) {
  std::string out = "--" + field;
  std::replace(out.begin(), out.end(), '_', '-');
  return out;
}

void FieldFlags::add(CLI::App& app, const config::Fields& fields, const std::string& scope) {
  for (const config::Field& f : fields) {
    const std::string flag = flag_name(f.name);
    if (app.get_option_no_throw(flag)) continue;
    const std::string help = scope + f.help;
    const std::string name = f.name;
    if (f.type == config::FieldType::boolean) {
      app.add_flag_callback(
          flag, [this, name] { given_[name] = "true"; }, help);
    } else if (f.type == config::FieldType::integers) {
      app.add_option_function<std::vector<int64_t>>(
             flag,
             [this, name](const std::vector<int64_t>& v) {
               given_[name] = nlohmann::json(v).dump();
             },
             help)
          ->delimiter(',')
          ->type_name("INT");
    } else {
      auto* o = app.add_option_function<std::string>(
          flag, [this, name](const std::string& v) { given_[name] = v; }, help);
      if (!f.allowed.empty())
        o->check(CLI::IsMember(f.allowed));
      else
        o->type_name(f.type == config::FieldType::integer  ? "INT"
                     : f.type == config::FieldType::number ? "NUMBER"
                                                           : "TEXT");
    }
  }
}

void FieldFlags::apply(const config::Fields& fields, const std::string& what) const {
  for (const auto& [name, value] : given_) {
    const config::Field* f = config::find_field(fields, name);
    GAZE_CHECK(f, DataError, "{} does not apply to {}", flag_name(name), what);
    // Switches and lists were stored as JSON; the rest as typed.
    const bool json =
        f->type == config::FieldType::boolean || f->type == config::FieldType::integers;
    f->read(json ? value : to_json(*f, value), flag_name(name));
  }
}

}  // namespace gaze::cli
