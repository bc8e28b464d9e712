// The server's counters in the Prometheus text format (version 0.0.4): requests by model, endpoint
// and status, latency, queue depth, batch sizes, tokens and inference time.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace gaze::serve {

// A histogram's cumulative buckets (upper bounds), sum and count.
class Histogram {
 public:
  explicit Histogram(const std::vector<double>* bounds)
      : bounds_(bounds), counts_(bounds->size()) {}
  void observe(double v);
  // `name{labels,le="..."} n` lines, then _sum and _count.
  void write(std::string& out, const std::string& name, const std::string& labels) const;

 private:
  const std::vector<double>* bounds_;
  std::vector<uint64_t> counts_;
  double sum_ = 0;
  uint64_t count_ = 0;
};

// Label values are bounded sets (the served models' names, the endpoints, the statuses gaze sends),
// so memory stays bounded whatever clients send.
class Metrics {
 public:
  explicit Metrics(std::vector<std::string> models);

  // One answered request. model: "" outside a model's endpoints.
  void request(const std::string& model, const std::string& endpoint, int status, double seconds,
               int64_t inputs);
  // One batch run for a model: its inputs, its tokens, and the seconds of inference.
  void batch(const std::string& model, int64_t inputs, int64_t tokens, double seconds);
  // How long a request waited in its model's queue before its batch started.
  void queued(const std::string& model, double seconds);
  void set_queue_depth(const std::string& model, int64_t inputs);
  void connection_opened();
  void connection_closed();
  void connection_refused();  // over max_connections
  void set_ready(bool ready);

  std::string text() const;  // the exposition

 private:
  mutable std::mutex mu_;
  std::vector<std::string> models_;
  std::map<std::tuple<std::string, std::string, int>, uint64_t> requests_;
  std::map<std::pair<std::string, std::string>, Histogram> latency_;
  std::map<std::string, Histogram> batch_inputs_, batch_tokens_, inference_, queue_wait_;
  std::map<std::string, uint64_t> tokens_, inputs_, batches_;
  std::map<std::string, int64_t> depth_;
  int64_t connections_ = 0;
  uint64_t refused_ = 0;
  bool ready_ = false;
};

}  // namespace gaze::serve
