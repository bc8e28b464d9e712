#include "serve/metrics.h"

#include <fmt/format.h>

#include <algorithm>

namespace gaze::serve {
namespace {

const std::vector<double> kSeconds = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,   1,      2.5,   5,    10,    30,   60};
const std::vector<double> kInputs = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
const std::vector<double> kTokens = {16, 64, 256, 1024, 4096, 16384, 65536};

// A label value with \, " and newline escaped, as the format asks.
std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

Histogram& slot(std::map<std::string, Histogram>& m, const std::string& key,
                const std::vector<double>& bounds) {
  return m.try_emplace(key, &bounds).first->second;
}

}  // namespace

void Histogram::observe(double v) {
  const auto it = std::lower_bound(bounds_->begin(), bounds_->end(), v);
  if (it != bounds_->end()) ++counts_[static_cast<size_t>(it - bounds_->begin())];
  sum_ += v;
  ++count_;
}

void Histogram::write(std::string& out, const std::string& name, const std::string& labels) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_->size(); ++i) {
    cumulative += counts_[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, (*bounds_)[i],
                       cumulative);
  }
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n", name, labels, sep, count_);
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_sum{} {}\n{}_count{} {}\n", name, braces, sum_, name, braces, count_);
}

Metrics::Metrics(std::vector<std::string> models) : models_(std::move(models)) {
  for (const auto& m : models_) depth_[m] = 0;
}

void Metrics::request(const std::string& model, const std::string& endpoint, int status,
                      double seconds, int64_t inputs) {
  const std::lock_guard lock(mu_);
  ++requests_[{model, endpoint, status}];
  latency_.try_emplace({model, endpoint}, &kSeconds).first->second.observe(seconds);
  if (!model.empty() && status < 300) inputs_[model] += static_cast<uint64_t>(inputs);
}

void Metrics::batch(const std::string& model, int64_t inputs, int64_t tokens, double seconds) {
  const std::lock_guard lock(mu_);
  slot(batch_inputs_, model, kInputs).observe(static_cast<double>(inputs));
  slot(batch_tokens_, model, kTokens).observe(static_cast<double>(tokens));
  slot(inference_, model, kSeconds).observe(seconds);
  tokens_[model] += static_cast<uint64_t>(tokens);
  ++batches_[model];
}

void Metrics::queued(const std::string& model, double seconds) {
  const std::lock_guard lock(mu_);
  slot(queue_wait_, model, kSeconds).observe(seconds);
}

void Metrics::set_queue_depth(const std::string& model, int64_t inputs) {
  const std::lock_guard lock(mu_);
  depth_[model] = inputs;
}

void Metrics::connection_opened() {
  const std::lock_guard lock(mu_);
  ++connections_;
}

void Metrics::connection_closed() {
  const std::lock_guard lock(mu_);
  --connections_;
}

void Metrics::connection_refused() {
  const std::lock_guard lock(mu_);
  ++refused_;
}

void Metrics::set_ready(bool ready) {
  const std::lock_guard lock(mu_);
  ready_ = ready;
}

std::string Metrics::text() const {
  const std::lock_guard lock(mu_);
  std::string out;
  header(out, "gaze_requests_total", "counter",
         "HTTP requests answered, by model, endpoint and status");
  for (const auto& [key, n] : requests_) {
    const auto& [model, endpoint, status] = key;
    out += fmt::format("gaze_requests_total{{model=\"{}\",endpoint=\"{}\",status=\"{}\"}} {}\n",
                       escape(model), endpoint, status, n);
  }
  header(out, "gaze_request_duration_seconds", "histogram",
         "time from a request's arrival to its answer, by model and endpoint");
  for (const auto& [key, h] : latency_)
    h.write(out, "gaze_request_duration_seconds",
            fmt::format("model=\"{}\",endpoint=\"{}\"", escape(key.first), key.second));
  auto per_model = [&](const char* name, const char* type, const char* help, const auto& map) {
    header(out, name, type, help);
    for (const auto& [model, v] : map) {
      if constexpr (std::is_same_v<std::decay_t<decltype(v)>, Histogram>)
        v.write(out, name, fmt::format("model=\"{}\"", escape(model)));
      else
        out += fmt::format("{}{{model=\"{}\"}} {}\n", name, escape(model), v);
    }
  };
  per_model("gaze_queue_depth", "gauge", "inputs waiting for a batch", depth_);
  per_model("gaze_queue_wait_seconds", "histogram", "time a request waited before its batch ran",
            queue_wait_);
  per_model("gaze_batch_inputs", "histogram", "inputs per batch", batch_inputs_);
  per_model("gaze_batch_tokens", "histogram", "tokens per batch (what the model read)",
            batch_tokens_);
  per_model("gaze_inference_seconds", "histogram", "time the model spent on a batch", inference_);
  per_model("gaze_batches_total", "counter", "batches run", batches_);
  per_model("gaze_tokens_total", "counter", "tokens the model read", tokens_);
  per_model("gaze_inputs_total", "counter", "inputs answered successfully", inputs_);
  header(out, "gaze_open_connections", "gauge", "open HTTP connections");
  out += fmt::format("gaze_open_connections {}\n", connections_);
  header(out, "gaze_refused_connections_total", "counter",
         "connections refused over --max-connections");
  out += fmt::format("gaze_refused_connections_total {}\n", refused_);
  header(out, "gaze_ready", "gauge",
         "1 while the models are loaded and the server is not draining");
  out += fmt::format("gaze_ready {}\n", ready_ ? 1 : 0);
  return out;
}

}  // namespace gaze::serve
