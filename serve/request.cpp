#include "serve/request.h"

#include "gaze/core/error.h"
#include "gaze/io/config.h"

namespace gaze::serve {
namespace {

using json = nlohmann::json;
constexpr int kMaxDepth = 64;

HttpError bad(const std::string& message) {
  return HttpError(400, "validation", message);
}

// The parameters a model of this task takes on this endpoint, besides "truncation".
config::Fields parameter_fields(Job& job, Endpoint endpoint, tasks::TaskKind task) {
  switch (endpoint) {
    case Endpoint::predict:
      return tasks::predict_fields(job.predict, task);
    case Endpoint::explain:
      return tasks::explain_fields(job.explain, task);
    case Endpoint::embed:
      break;
  }
  return {};
}

std::vector<std::string> names(const config::Fields& fields) {
  std::vector<std::string> out;
  for (const auto& f : fields) out.push_back(f.name);
  out.emplace_back("truncation");
  return out;
}

}  // namespace

namespace {

// A first pass over the body that builds nothing: it checks the syntax, the nesting and the number
// of values, so that a body of a million tiny values is refused before its tree (about 35 bytes
// of memory per byte of such a body) is built.
class Shape : public json::json_sax_t {
 public:
  explicit Shape(size_t max_values) : max_values_(max_values) {}
  bool null() override { return value(); }
  bool boolean(bool) override { return value(); }
  bool number_integer(json::number_integer_t) override { return value(); }
  bool number_unsigned(json::number_unsigned_t) override { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) override { return value(); }
  bool string(json::string_t&) override { return value(); }
  bool binary(json::binary_t&) override { return value(); }
  bool start_object(size_t) override { return open(); }
  bool key(json::string_t&) override { return true; }
  bool end_object() override { return close(); }
  bool start_array(size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool parse_error(size_t, const std::string&, const nlohmann::detail::exception& e) override {
    throw bad(fmt::format("the body is not valid JSON: {}", e.what()));
  }
  bool too_many() const { return values_ > max_values_; }

 private:
  bool value() { return ++values_ <= max_values_; }
  bool open() {
    if (++depth_ > kMaxDepth)
      throw bad(fmt::format("the JSON body nests deeper than {} levels", kMaxDepth));
    return value();
  }
  bool close() {
    --depth_;
    return true;
  }
  size_t max_values_, values_ = 0;
  int depth_ = 0;
};

}  // namespace

json parse_json(std::string_view body, size_t max_values) {
  Shape shape(max_values);
  json::sax_parse(body.begin(), body.end(), &shape);
  if (shape.too_many())
    throw HttpError(422, "validation",
                    fmt::format("the body holds more than {} JSON values; a request takes at most "
                                "--max-inputs inputs and a few parameters",
                                max_values));
  try {
    return json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {
    throw bad(fmt::format("the body is not valid JSON: {}", e.what()));
  }
}

ParsedRequest parse_request(std::string_view body, Endpoint endpoint,
                            const tasks::Predictor& predictor, int64_t max_inputs, bool html) {
  // Inputs, their list and the body, and room for any parameters.
  const json j = parse_json(body, static_cast<size_t>(max_inputs) + 1024);
  if (!j.is_object()) throw bad("the body must be a JSON object: {\"inputs\": ...}");
  for (const auto& [key, value] : j.items())
    if (key != "inputs" && key != "parameters")
      throw bad(fmt::format("unknown field '{}'; the body has \"inputs\" and \"parameters\"", key));
  const auto in = j.find("inputs");
  if (in == j.end()) throw bad("the body has no \"inputs\" (a string or a list of strings)");

  ParsedRequest r;
  r.job = std::make_shared<Job>();
  Job& job = *r.job;
  job.endpoint = endpoint;
  if (in->is_string()) {
    r.single = true;
    job.texts.push_back(in->get<std::string>());
  } else if (in->is_array()) {
    if (in->empty()) throw bad("\"inputs\" is an empty list");
    if (std::ssize(*in) > max_inputs)
      throw HttpError(422, "validation",
                      fmt::format("{} inputs in one request; the limit is {} (--max-inputs)",
                                  in->size(), max_inputs));
    for (size_t i = 0; i < in->size(); ++i) {
      if (!(*in)[i].is_string())
        throw bad(fmt::format("inputs[{}] is a {}, not a string", i, (*in)[i].type_name()));
      job.texts.push_back((*in)[i].get<std::string>());
    }
  } else {
    throw bad(fmt::format("\"inputs\" is a {}; it must be a string or a list of strings",
                          in->type_name()));
  }
  if (endpoint == Endpoint::explain && job.texts.size() != 1)
    throw HttpError(422, "validation", "explain takes one input text per request");

  const tasks::TaskKind task = predictor.kind();
  job.predict = predictor.predict_defaults();
  job.explain = predictor.explain_defaults();
  job.html = html;
  config::Fields fields = parameter_fields(job, endpoint, task);
  if (const auto params = j.find("parameters"); params != j.end() && !params->is_null()) {
    if (!params->is_object()) throw bad("\"parameters\" must be an object");
    json rest = *params;
    if (const auto t = rest.find("truncation"); t != rest.end()) {
      if (!t->is_boolean()) throw bad("parameters.truncation must be true or false");
      job.truncation = t->get<bool>();
      rest.erase(t);
    }
    for (const auto& [key, value] : rest.items())
      if (!config::find_field(fields, key))
        throw bad(fmt::format("parameter '{}' does not apply to {} on a {} model; it takes: {}",
                              key, enum_name(endpoint), enum_name(task),
                              fmt::join(names(fields), ", ")));
    try {
      config::read_object(rest.dump(), fields, "parameters");
    } catch (const Error& e) {
      throw bad(e.what());
    }
  }
  decode::widen_beam(job.predict.search);
  decode::widen_beam(job.explain.search);
  // Requests batch together only with the same endpoint and options; explanations never do.
  job.batch_key = endpoint == Endpoint::explain
                      ? fmt::format("explain:{}", static_cast<const void*>(&job))
                      : enum_name(endpoint) + config::write_object(fields);
  return r;
}

}  // namespace gaze::serve
