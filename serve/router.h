// What the server answers, independent of the HTTP library: the routes, their checks and errors
// ({"error", "type"} bodies), and the hand-over of model work to the batching engine.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "serve/engine.h"
#include "serve/metrics.h"
#include "serve/options.h"

namespace gaze::serve {

struct HttpRequest {
  std::string method, target, content_type, accept, body;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json", body;
  std::vector<std::pair<std::string, std::string>> headers;
  // A JSON body still to serialise: the connection's thread does it, not the inference thread.
  std::optional<nlohmann::json> json_body;
  // For the access log and the metrics.
  std::string model, endpoint = "other";
  int64_t inputs = 0;
};
// Hands a response to its connection; callable from any thread, once.
using Respond = std::function<void(HttpResponse)>;

// An error response: {"error": message, "type": type} (429 and 503 with Retry-After).
HttpResponse error_response(int status, const std::string& type, const std::string& message);

class Router {
 public:
  Router(Engine& engine, Metrics& metrics, const ServeOptions& options);

  // Answers at once, or queues the work and answers from the inference thread; then *queued is
  // the job, which the caller cancels if the client's time runs out.
  void handle(const HttpRequest& request, const Respond& respond, std::shared_ptr<Job>* queued);
  // The server is shutting down: /readyz answers 503, new model requests 503, and queued batches
  // run at once.
  void set_draining() {
    draining_ = true;
    engine_.flush();
  }
  bool draining() const { return draining_; }

 private:
  void model_endpoint(const HttpRequest& request, size_t model, Endpoint endpoint,
                      const Respond& respond, std::shared_ptr<Job>* queued);
  nlohmann::json model_info(size_t model) const;

  Engine& engine_;
  Metrics& metrics_;
  ServeOptions options_;
  std::atomic<bool> draining_{false};
};

}  // namespace gaze::serve
