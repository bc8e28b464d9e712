// gaze serve: the trained models behind an HTTP endpoint, with dynamic batching (serve/).
#include <sys/resource.h>

#include <algorithm>
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
  std::optional<Precision> precision;
  FieldFlags options;  // serve::ServeOptions
};

std::vector<serve::ModelSpec> model_specs(const std::vector<std::string>& args) {
  static const std::regex name_re("[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
  std::vector<serve::ModelSpec> out;
  for (const auto& a : args) {
    const size_t eq = a.find('=');
    GAZE_CHECK(eq != std::string::npos && eq + 1 < a.size(), DataError,
               "--model {}: expected NAME=DIR (e.g. --model sentiment=runs/sentiment)", a);
    serve::ModelSpec s;
    s.name = a.substr(0, eq), s.dir = a.substr(eq + 1);
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

// --max-connections within the file descriptors the process may open: the soft limit is raised to
// the hard one, and the connections get what remains after model files, pipes and the like (64).
int64_t fit_connections(int64_t wanted) {
  rlimit r{};
  if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return wanted;
  if (r.rlim_cur < r.rlim_max) {
    rlimit raised = r;
    raised.rlim_cur = r.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) r = raised;
  }
  const auto room = static_cast<int64_t>(std::min<rlim_t>(r.rlim_cur, 1 << 30)) - 64;
  if (wanted <= room) return wanted;
  const int64_t fit = std::max<int64_t>(1, room);
  std::fprintf(
      stderr,
      "gaze serve: note: --max-connections %lld lowered to %lld (the process may open %lld "
      "files; raise `ulimit -n` or LimitNOFILE for more)\n",
      static_cast<long long>(wanted), static_cast<long long>(fit),
      static_cast<long long>(r.rlim_cur));
  return fit;
}

int run_serve(const ServeArgs& a) {
  serve::ServeOptions o;
  a.options.apply(serve::config_fields(o), "gaze serve");
  std::vector<serve::ModelSpec> specs = model_specs(a.models);
  for (auto& s : specs) s.load.precision = a.precision;
  std::vector<std::string> names;
  for (const auto& s : specs) names.push_back(s.name);
  serve::Metrics metrics(names);
  serve::Engine engine(
      [&] { return serve::load_models(specs); },
      {a.threads, o.max_batch_tokens, o.max_batch_inputs, o.max_wait_ms, o.max_queue}, metrics);
  serve::Router router(engine, metrics, o);
  o.max_connections = fit_connections(o.max_connections);
  serve::HttpServer server(router, metrics, o);
  std::fprintf(stderr, "gaze serve: listening on http://%s:%d (models: %s)\n", o.host.c_str(),
               server.port(), fmt::format("{}", fmt::join(names, ", ")).c_str());
  try {
    server.run();
  } catch (...) {
    engine.stop();  // settles every job while the connections they answer still exist
    throw;
  }
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
  add_precision_option(app, a->precision);
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
