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

json parse_json(std::string_view body) {
  const json::parser_callback_t depth_limit = [](int depth, json::parse_event_t, json&) {
    if (depth > kMaxDepth)
      throw HttpError(400, "validation",
                      fmt::format("the JSON body nests deeper than {} levels", kMaxDepth));
    return true;
  };
  try {
    return json::parse(body.begin(), body.end(), depth_limit);
  } catch (const json::exception& e) {
    throw bad(fmt::format("the body is not valid JSON: {}", e.what()));
  }
}

ParsedRequest parse_request(std::string_view body, Endpoint endpoint,
                            const tasks::Predictor& predictor, int64_t max_inputs, bool html) {
  const json j = parse_json(body);
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
