#include "serve/router.h"

#include <algorithm>
#include <cctype>

#include "serve/openapi.h"
#include "serve/request.h"

namespace gaze::serve {
namespace {

using json = nlohmann::json;

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Whether a Content-Type is `type` (parameters such as charset aside), case-insensitively.
bool is_media_type(const std::string& header, const std::string& type) {
  std::string t = lower(header.substr(0, header.find(';')));
  const auto first = t.find_first_not_of(" \t"), last = t.find_last_not_of(" \t");
  return first != std::string::npos && t.substr(first, last - first + 1) == type;
}

// Whether an Accept header lists `type` among its media ranges.
bool accepts(const std::string& header, const std::string& type) {
  size_t at = 0;
  while (at <= header.size()) {
    const size_t comma = std::min(header.find(',', at), header.size());
    if (is_media_type(header.substr(at, comma - at), type)) return true;
    at = comma + 1;
  }
  return false;
}

std::vector<std::string> split_path(const std::string& target) {
  const std::string path = target.substr(0, target.find_first_of("?#"));
  std::vector<std::string> parts;
  size_t at = 0;
  while (at < path.size()) {
    const size_t slash = path.find('/', at);
    const size_t end = slash == std::string::npos ? path.size() : slash;
    if (end > at) parts.push_back(path.substr(at, end - at));
    at = end + 1;
  }
  return parts;
}

HttpResponse json_response(int status, const json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

HttpResponse method_not_allowed(const std::string& allow) {
  HttpResponse r = error_response(405, "method_not_allowed", "this path answers " + allow);
  r.headers.emplace_back("Allow", allow);
  return r;
}

std::string join_indices(const std::vector<int64_t>& v) {
  std::string s;
  for (const int64_t i : v) s += (s.empty() ? "" : ",") + std::to_string(i);
  return s;
}

}  // namespace

HttpResponse error_response(int status, const std::string& type, const std::string& message) {
  HttpResponse r = json_response(status, {{"error", message}, {"type", type}});
  if (status == 429 || status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

Router::Router(Engine& engine, Metrics& metrics, const ServeOptions& options)
    : engine_(engine), metrics_(metrics), options_(options) {}

json Router::model_info(size_t m) const {
  const ServedModel& model = engine_.models()[m];
  json j = {{"name", model.name}};
  j.update(model.predictor->describe());
  const tasks::TaskKind task = model.predictor->kind();
  json endpoints = {"predict", "explain"};
  if (task == tasks::TaskKind::classify || task == tasks::TaskKind::embed)
    endpoints.push_back("embed");
  j["endpoints"] = endpoints;
  return j;
}

void Router::handle(const HttpRequest& req, const Respond& respond, std::shared_ptr<Job>* queued) {
  const std::vector<std::string> parts = split_path(req.target);
  const bool get = req.method == "GET" || req.method == "HEAD";
  auto answer = [&](HttpResponse r, const char* endpoint) {
    r.endpoint = endpoint;
    respond(std::move(r));
  };
  if (parts.size() == 1 && parts[0] == "healthz") {
    if (!get) return answer(method_not_allowed("GET"), "healthz");
    return answer(json_response(200, {{"status", "ok"}}), "healthz");
  }
  if (parts.size() == 1 && parts[0] == "readyz") {
    if (!get) return answer(method_not_allowed("GET"), "readyz");
    return answer(draining_ ? error_response(503, "unavailable", "draining: shutting down")
                            : json_response(200, {{"status", "ready"}}),
                  "readyz");
  }
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (!get) return answer(method_not_allowed("GET"), "metrics");
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.text();
    return answer(std::move(r), "metrics");
  }
  if (parts.size() == 1 && parts[0] == "openapi.json") {
    if (!get) return answer(method_not_allowed("GET"), "openapi");
    return answer(json_response(200, openapi_document()), "openapi");
  }
  if (parts.size() >= 2 && parts[0] == "v1" && parts[1] == "models") {
    if (parts.size() == 2) {
      if (!get) return answer(method_not_allowed("GET"), "models");
      json list = json::array();
      for (size_t m = 0; m < engine_.models().size(); ++m) list.push_back(model_info(m));
      return answer(json_response(200, {{"models", list}}), "models");
    }
    const int m = engine_.find(parts[2]);
    if (m < 0) {
      std::vector<std::string> names;
      for (const auto& model : engine_.models()) names.push_back(model.name);
      return answer(error_response(404, "not_found",
                                   fmt::format("no model called '{}'; this server has: {}",
                                               parts[2].substr(0, 200), fmt::join(names, ", "))),
                    parts.size() == 4 ? "model" : "models");
    }
    const auto model = static_cast<size_t>(m);
    if (parts.size() == 3) {
      if (!get) return answer(method_not_allowed("GET"), "models");
      HttpResponse r = json_response(200, model_info(model));
      r.model = engine_.models()[model].name;
      return answer(std::move(r), "models");
    }
    if (parts.size() == 4) {
      if (const auto endpoint = enum_from_name<Endpoint>(parts[3])) {
        if (req.method != "POST") {
          HttpResponse r = method_not_allowed("POST");
          r.model = engine_.models()[model].name;
          return answer(std::move(r), parts[3].c_str());
        }
        return model_endpoint(req, model, *endpoint, respond, queued);
      }
    }
  }
  answer(error_response(404, "not_found",
                        "no such endpoint; GET /openapi.json lists them (POST "
                        "/v1/models/NAME/predict, /explain, /embed; GET /v1/models, /healthz, "
                        "/readyz, /metrics)"),
         "other");
}

void Router::model_endpoint(const HttpRequest& req, size_t m, Endpoint endpoint,
                            const Respond& respond, std::shared_ptr<Job>* queued) {
  const ServedModel& model = engine_.models()[m];
  const std::string endpoint_name = enum_name(endpoint);
  auto fail = [&](const HttpError& e, int64_t inputs) {
    HttpResponse r = error_response(e.status, e.type, e.what());
    r.model = model.name;
    r.endpoint = endpoint_name;
    r.inputs = inputs;
    respond(std::move(r));
  };
  if (!is_media_type(req.content_type, "application/json"))
    return fail(HttpError(415, "unsupported_media_type",
                          fmt::format("the body must be JSON sent with Content-Type: "
                                      "application/json (got '{}')",
                                      req.content_type.substr(0, 100))),
                0);
  const tasks::TaskKind task = model.predictor->kind();
  if (endpoint == Endpoint::embed && task != tasks::TaskKind::classify &&
      task != tasks::TaskKind::embed)
    return fail(HttpError(404, "not_found",
                          fmt::format("model '{}' is a {} model: it has no sentence embeddings "
                                      "(sentence encoders and classifiers have)",
                                      model.name, enum_name(task))),
                0);
  ParsedRequest parsed;
  try {
    parsed = parse_request(req.body, endpoint, *model.predictor, options_.max_inputs,
                           endpoint == Endpoint::explain && accepts(req.accept, "text/html"));
  } catch (const HttpError& e) {
    return fail(e, 0);
  }
  parsed.job->model = model.name;
  const auto inputs = std::ssize(parsed.job->texts);
  const bool single = parsed.single;
  Done done = [respond, single, inputs, name = model.name, endpoint_name](Outcome o) {
    HttpResponse r =
        o.status != 200 ? error_response(o.status, o.error_type, o.error) : HttpResponse{};
    r.model = name;
    r.endpoint = endpoint_name;
    r.inputs = inputs;
    if (o.status == 200 && !o.document.empty()) {
      r.body = std::move(o.document);
      if (o.html) r.content_type = "text/html; charset=utf-8";
    } else if (o.status == 200) {
      r.json_body = single ? json(std::move(o.outputs.at(0))) : json(std::move(o.outputs));
    }
    if (!o.truncated.empty())
      r.headers.emplace_back("X-Truncated-Inputs", join_indices(o.truncated));
    respond(std::move(r));
  };
  try {
    engine_.submit(m, parsed.job, std::move(done));
  } catch (const HttpError& e) {
    return fail(e, inputs);
  }
  *queued = parsed.job;
}

}  // namespace gaze::serve
