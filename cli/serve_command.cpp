// gaze serve: the trained models behind an HTTP endpoint, with dynamic batching (serve/).
#include <cstdio>
#include <regex>

#include "cli/commands.h"
#include "cli/field_flags.h"
#include "gaze/core/error.h"
#include "serve/engine.h"
#include "serve/http_server.h"
#include "serve/metrics.h"
#include "serve/router.h"

namespace gaze::cli {
namespace {

struct ServeArgs {
  std::vector<std::string> models;  // NAME=DIR
  int threads = 0;
  FieldFlags options;  // serve::ServeOptions
};

std::vector<serve::ModelSpec> model_specs(const std::vector<std::string>& args) {
  static const std::regex name_re("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  std::vector<serve::ModelSpec> out;
  for (const auto& a : args) {
    const size_t eq = a.find('=');
    GAZE_CHECK(eq != std::string::npos && eq + 1 < a.size(), DataError,
               "--model {}: expected NAME=DIR (e.g. --model sentiment=runs/sentiment)", a);
    serve::ModelSpec s{a.substr(0, eq), a.substr(eq + 1)};
    GAZE_CHECK(std::regex_match(s.name, name_re), DataError,
               "--model {}: a model name is 1-64 letters, digits, '.', '_' or '-', starting "
               "with a letter or digit",
               a);
    for (const auto& o : out)
      GAZE_CHECK(o.name != s.name, DataError, "--model: the name '{}' is given twice", s.name);
    out.push_back(std::move(s));
  }
  return out;
}

int run_serve(const ServeArgs& a) {
  serve::ServeOptions o;
  a.options.apply(serve::config_fields(o), "gaze serve");
  const std::vector<serve::ModelSpec> specs = model_specs(a.models);
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  serve::Metrics metrics(names);
  serve::Engine engine(
      [&] { return serve::load_models(specs); },
      {a.threads, o.max_batch_tokens, o.max_batch_inputs, o.max_wait_ms, o.max_queue}, metrics);
  serve::Router router(engine, metrics, o);
  serve::HttpServer server(router, metrics, o);
  std::fprintf(stderr, "gaze serve: listening on http://%s:%d (models: %s)\n", o.host.c_str(),
               server.port(), fmt::format("{}", fmt::join(names, ", ")).c_str());
  server.run();
  engine.stop();  // every answered request is done; this finishes jobs whose clients gave up
  std::fprintf(stderr, "gaze serve: stopped\n");
  return 0;
}

}  // namespace

Action add_serve(CLI::App& app) {
  auto a = std::make_shared<ServeArgs>();
  app.add_option("--model", a->models,
                 "NAME=DIR: serve the model folder DIR (a run folder or its best/) as NAME; "
                 "repeat for several models")
      ->required();
  app.add_option("--threads", a->threads, "inference threads (0: GAZE_NUM_THREADS, else all cores)")
      ->check(CLI::Range(0, 1024));
  serve::ServeOptions proto;
  a->options.add(app, serve::config_fields(proto));
  app.footer(
      "Endpoints (JSON in and out; GET /openapi.json describes them):\n"
      "  POST /v1/models/NAME/predict   {\"inputs\": \"text\" | [\"text\", ...], \"parameters\": "
      "{...}}\n"
      "  POST /v1/models/NAME/explain   attention JSON, or the page with Accept: text/html\n"
      "  POST /v1/models/NAME/embed     sentence embeddings\n"
      "  GET  /v1/models  /healthz  /readyz  /metrics  /openapi.json\n"
      "SIGTERM or Ctrl-C drains: requests already received are answered, then gaze exits 0.\n"
      "Example:\n"
      "  gaze serve --model sentiment=runs/sentiment --port 8080 &\n"
      "  curl -s localhost:8080/v1/models/sentiment/predict -H 'Content-Type: application/json' "
      "\\\n       -d '{\"inputs\": \"Works great!\"}'");
  return [a] { return run_serve(*a); };
}

}  // namespace gaze::cli
